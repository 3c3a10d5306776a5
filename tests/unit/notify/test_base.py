"""Notices and alert routes: what the engine hands over, checked where it is built."""

from __future__ import annotations

import pytest
from structlog.testing import capture_logs

from canary.models.canary import CanaryAlert
from canary.notify.base import AlertRoute, LogNotifier, routes
from tests.unit.notify.notices import NOTICE, notice


def test_routes_come_from_spec_analysis_alerts_with_the_provider_namespace_when_given() -> None:
    alerts = [CanaryAlert.model_validate({"name": "on-call", "severity": "error",
                                          "providerRef": {"name": "pager", "namespace": "ops"}}),
              CanaryAlert.model_validate({"name": "team", "providerRef": {"name": "chat"}})]
    assert routes(alerts) == (AlertRoute(name="on-call", severity="error", provider="pager", provider_namespace="ops"),
                              AlertRoute(name="team", severity=None, provider="chat", provider_namespace=None))


def test_a_canary_without_alerts_has_no_routes() -> None:
    assert routes(None) == ()


def test_a_notice_refuses_an_unknown_severity() -> None:
    with pytest.raises(ValueError, match="Notice shop/web: severity must be one of info, warn, error, got 'fatal'"):
        notice(severity="fatal")


def test_a_route_refuses_an_unknown_severity() -> None:
    with pytest.raises(ValueError, match="alert team: severity must be one of info, warn, error or unset"):
        AlertRoute(name="team", severity="critical", provider="chat")


def test_the_log_notifier_writes_one_line_with_the_details() -> None:
    with capture_logs() as logs:
        LogNotifier().notify(NOTICE)
    [line] = logs
    assert line["event"] == "alert"
    assert line["details"] == {"request-success-rate": "75.2 < 99", "request-duration": "812 > 500"}
    assert (line["canary"], line["severity"], line["revision"]) == ("web", "error", "abc123")
