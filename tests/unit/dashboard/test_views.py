"""What the dashboard's pages show of a Canary: the list row, the chart series, webhooks and Events."""

from __future__ import annotations

import datetime as dt

from canary.dashboard import views
from canary.kube import Obj
from tests.builders import make_canary

T0 = dt.datetime(2026, 11, 29, 12, 0, tzinfo=dt.UTC)


def _at(seconds: int) -> str:
    return (T0 + dt.timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")


def _progressing() -> Obj:
    canary = make_canary("web", "shop", analysis={
        "interval": "2s", "threshold": 2, "stepWeight": 25, "maxWeight": 50,
        "metrics": [{"name": "request-success-rate", "interval": "10s", "thresholdRange": {"min": 99}},
                    {"name": "request-duration", "interval": "10s", "thresholdRange": {"max": 500}}],
        "webhooks": [{"name": "load-test", "type": "pre-rollout", "url": "http://tester/"}]})
    canary["metadata"]["resourceVersion"] = "42"
    canary["status"] = {
        "phase": "Progressing", "canaryWeight": 25, "failedChecks": 1, "lastTransitionTime": _at(30),
        "lastAppliedSpec": "abc123", "lastPromotedSpec": "def456",
        "analysis": [{"name": "request-success-rate", "value": 100, "min": 99, "verdict": "pass", "time": _at(2)},
                     {"name": "request-success-rate", "value": 80, "min": 99, "verdict": "fail", "time": _at(4)}],
        "timeline": {"revision": "abc123", "started": _at(0), "thresholds": {
            "request-success-rate": {"min": 99}, "request-duration": {"max": 500}}, "points": [
            {"time": _at(0), "phase": "Progressing", "canaryWeight": 0},
            {"time": _at(2), "phase": "Progressing", "canaryWeight": 25,
             "metrics": {"request-success-rate": 100, "request-duration": 20}},
            {"time": _at(4), "phase": "Progressing", "canaryWeight": 25, "failedChecks": 1,
             "metrics": {"request-success-rate": 80, "request-duration": None}}]}}
    return canary


def test_a_row_shows_phase_weight_failed_checks_and_since_when() -> None:
    row = views.row(_progressing())
    assert row["key"] == "shop/web"
    assert (row["phase"], row["weight"], row["maxWeight"]) == ("Progressing", 25, 50)
    assert (row["failedChecks"], row["threshold"]) == (1, 2)
    assert row["since"] == _at(30)
    assert row["progress"] == [25, 50]


def test_an_invalid_canary_is_listed_as_invalid_with_the_field_at_fault() -> None:
    canary = _progressing()
    canary["spec"]["analysis"]["stepWeight"] = 150
    row = views.row(canary)
    assert row["phase"] == "Invalid"
    assert "stepWeight" in row["message"]


def test_weights_come_from_the_timeline_step_by_step() -> None:
    canary = views.parse(_progressing())
    assert not isinstance(canary, str)
    assert [(s.canary_weight, s.phase) for s in views.weight_steps(canary)] == [
        (0, "Progressing"), (25, "Progressing"), (25, "Progressing")]


def test_metric_series_come_from_the_timeline_with_their_band_and_a_gap_for_no_data() -> None:
    canary = views.parse(_progressing())
    assert not isinstance(canary, str)
    rate, duration = views.metric_series(canary)
    assert (rate.name, rate.min, rate.max) == ("request-success-rate", 99, None)
    assert [(p.value, p.passed) for p in rate.points] == [(100, True), (80, False)]
    assert (duration.min, duration.max) == (None, 500)
    assert [(p.value, p.passed) for p in duration.points] == [(20, True), (None, False)]


def test_without_a_timeline_metric_series_come_from_the_analysis_history() -> None:
    obj = _progressing()
    del obj["status"]["timeline"]
    canary = views.parse(obj)
    assert not isinstance(canary, str)
    assert views.weight_steps(canary) == []
    rate = views.metric_series(canary)[0]
    assert [(p.value, p.passed) for p in rate.points] == [(100, True), (80, False)]
    assert rate.min == 99


def _event(message: str, at: int, *, warning: bool = False) -> Obj:
    return {"metadata": {"name": f"e{at}"}, "message": message, "lastTimestamp": _at(at), "reason": "Synced",
            "type": "Warning" if warning else "Normal"}


def test_a_webhook_shows_the_newest_event_that_names_it() -> None:
    canary = views.parse(_progressing())
    assert not isinstance(canary, str)
    events = [_event("Halt advancement: pre-rollout load-test failed: 500", 5, warning=True),
              _event("Advance web canary weight 25", 6), _event("pre-rollout load-test failed: timeout", 1)]
    (hook,) = views.webhook_results(canary, events)
    assert (hook["name"], hook["type"]) == ("load-test", "pre-rollout")
    assert hook["result"] == "Halt advancement: pre-rollout load-test failed: 500"
    assert hook["warning"] is True


def test_the_detail_has_revision_git_commit_latest_analysis_and_events_newest_first() -> None:
    events = [_event("first", 1), _event("second", 2)]
    detail = views.detail(_progressing(), events=events, git={"source": "apps", "commit": "c0ffee"})
    assert (detail["revision"], detail["promotedRevision"]) == ("abc123", "def456")
    assert detail["run"] == {"revision": "abc123", "started": _at(0)}
    assert detail["git"] == {"source": "apps", "commit": "c0ffee"}
    assert [m["value"] for m in detail["metrics"]] == [80], "only the latest analysis step"
    assert [e["message"] for e in detail["events"]] == ["second", "first"]
    assert detail["charts"] == ["request-success-rate", "request-duration"]
