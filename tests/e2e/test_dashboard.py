"""The Grafana dashboard and the alerting rules in manifests/grafana, against what the controller
really exports: the local Prometheus scrapes a controller through a good and a bad release and a Git
sync, and every dashboard query returns data; the rules that should fire do, the others stay quiet."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from canary.kube.client import Kube
from canary.local import stack
from canary.waiting import wait_until
from tests.builders import make_deployment
from tests.e2e.canaries import judged_canary, prometheus_query, release, wait_phase, wait_target_quiet
from tests.e2e.controllers import ControllerProcess
from tests.e2e.gitrepos import Upstream, upstream  # noqa: F401 - a fixture
from tests.e2e.receivers import receiver

pytestmark = pytest.mark.usefixtures("gateway_api_crds")
GRAFANA = Path(__file__).parents[2] / "manifests" / "grafana"
FIRING = {"CanaryRolledBack", "CanaryAlertsDropped"}
QUIET = {"CanaryRunTooLong", "CanaryGitSyncFailing", "CanaryGitSyncStale", "CanaryNoLeader"}


def _dashboard_queries() -> list[tuple[str, str]]:
    dashboard = json.loads((GRAFANA / "canary-delivery.json").read_text())
    return [(panel["title"], target["expr"]) for panel in dashboard["panels"] for target in panel["targets"]]


def _rules() -> dict[str, str]:
    rules = yaml.safe_load((GRAFANA / "prometheus-rules.yaml").read_text())
    return {rule["alert"]: rule["expr"] for group in rules["spec"]["groups"] for rule in group["rules"]}


def _provider(namespace: str, name: str, address: str) -> dict[str, Any]:
    return {"apiVersion": "canary.dev/v1alpha1", "kind": "AlertProvider",
            "metadata": {"name": name, "namespace": namespace}, "spec": {"type": "generic", "address": address}}


def test_every_dashboard_query_returns_data_and_the_rules_fire_as_they_should(
    kube: Kube, namespace: str, local_stack: stack.StackState, canary_crds: list[str], tmp_path: Path,
    upstream: Upstream,  # noqa: F811 - the fixture
) -> None:
    assert set(_rules()) == FIRING | QUIET | {"CanaryTicksFailing"}, "every rule is checked below"
    upstream.commit({"config/settings.yaml": yaml.safe_dump({
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings", "namespace": namespace},
        "data": {"greeting": "hello"}})}, "a config")
    with receiver() as chat:
        kube.create(_provider(namespace, "chat", chat.url("/chat")))
        controller = ControllerProcess(
            local_stack, namespace, tmp_path,
            extra=("--git-url", upstream.bare.as_uri(), "--git-path", "config", "--git-inventory-namespace", namespace,
                   "--git-poll-interval", "1"),
            env={"CANARY_CACHE_DIR": str(tmp_path / "cache")})
        controller.start()
        job = f"controller-{namespace}"
        local_stack.add_target(job=job, address=f"127.0.0.1:{controller.port}")
        try:
            canary = judged_canary(namespace, "gatewayapi", stepWeight=50)
            canary["spec"]["analysis"]["alerts"] = [
                {"name": "chat", "providerRef": {"name": "chat"}},
                {"name": "gone", "providerRef": {"name": "nowhere"}}]  # missing: its alerts are dropped
            kube.create(make_deployment("web", namespace, replicas=2, image="web:1"))
            kube.create(canary)
            wait_phase(kube, namespace, "web", "Initialized")
            release(kube, namespace, "web:2")
            wait_phase(kube, namespace, "web", "Succeeded", timeout=120)
            wait_target_quiet(local_stack.prometheus_url, namespace)
            bad = make_deployment("web", namespace, replicas=2, image="web:3",
                                  annotations={"sim.canary.dev/error-rate": "30"})
            kube.apply(bad, field_manager="test")
            wait_phase(kube, namespace, "web", "Failed", timeout=120)

            prometheus = local_stack.prometheus_url
            failures = f'increase(canary_failures_total{{job="{job}"}}[1h]) > 0'
            wait_until(lambda: prometheus_query(prometheus, failures), bool,
                       what="Prometheus to scrape the rollback", timeout=30)
            empty = [f"{title}: {expr}" for title, expr in _dashboard_queries()
                     if not prometheus_query(prometheus, expr)]
            assert empty == [], "dashboard queries without data"
            rules = _rules()
            for alert in sorted(FIRING):
                assert prometheus_query(prometheus, rules[alert]), f"{alert} should fire: {rules[alert]}"
            for alert in sorted(QUIET):
                assert prometheus_query(prometheus, rules[alert]) == [], f"{alert} should be quiet: {rules[alert]}"
            # Valid PromQL; whether it fires depends on conflicts.
            prometheus_query(prometheus, rules["CanaryTicksFailing"])
        finally:
            local_stack.remove_target(job=job)
            controller.stop()
        assert "/chat" in chat.paths(), "the existing provider heard the releases"
