"""The controller reads its Prometheus from the environment `canary local up` prints, and its own variable wins."""

from __future__ import annotations

from collections.abc import Mapping

import pytest
from typer.testing import CliRunner

from canary import cli, controller
from canary.settings import ControllerSettings


def _metrics_server(env: Mapping[str, str | None], *args: str) -> str:
    """The --metrics-server the controller command would run with, without running it."""
    seen: list[ControllerSettings] = []
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(controller, "run", lambda settings, stop, **wiring: seen.append(settings))
        result = CliRunner().invoke(cli.app, ["controller", *args], env={"COLUMNS": "300", **env})
    assert result.exit_code == 0, result.output
    return seen[0].metrics_server


def test_the_controller_uses_prometheus_url_as_canary_local_up_exports_it() -> None:
    env = {"PROMETHEUS_URL": "http://127.0.0.1:9091", "CANARY_METRICS_SERVER": None}
    assert _metrics_server(env) == "http://127.0.0.1:9091"


def test_canary_metrics_server_wins_over_prometheus_url() -> None:
    env = {"PROMETHEUS_URL": "http://127.0.0.1:9091", "CANARY_METRICS_SERVER": "http://prometheus.monitoring:9090"}
    assert _metrics_server(env) == "http://prometheus.monitoring:9090"


def test_the_flag_wins_over_both_variables() -> None:
    env = {"PROMETHEUS_URL": "http://127.0.0.1:9091", "CANARY_METRICS_SERVER": "http://prometheus.monitoring:9090"}
    assert _metrics_server(env, "--metrics-server", "http://127.0.0.1:9999") == "http://127.0.0.1:9999"


def test_without_either_variable_the_default_is_the_in_cluster_prometheus() -> None:
    assert _metrics_server({"PROMETHEUS_URL": None, "CANARY_METRICS_SERVER": None}) == "http://prometheus:9090"


def test_the_help_names_both_variables() -> None:
    result = CliRunner().invoke(cli.app, ["controller", "--help"], env={"COLUMNS": "300"})
    assert "CANARY_METRICS_SERVER" in result.output
    assert "PROMETHEUS_URL" in result.output
