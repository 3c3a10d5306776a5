"""The check runner with a fake cluster cache and local HTTP back ends: the metric interval reaches
every provider, as the window of its query (PromQL) or of its time range (Datadog, CloudWatch)."""

from __future__ import annotations

import base64
import datetime as dt
from typing import Any

import pytest

from canary.engine.checks import WINDOW_INTERVALS, CheckRunner
from canary.engine.decide import Check
from canary.models.base import API_VERSION
from canary.models.canary import Canary
from canary.webhooks import WebhookCaller
from tests.builders import make_canary
from tests.fakes import FakeKube, informer
from tests.httpfakes import Answer, FakeServer, Seen

NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
PROMETHEUS_ANSWER = {"status": "success", "data": {"resultType": "vector",
                                                   "result": [{"metric": {}, "value": [0, "99.5"]}]}}


def _runner(kube: FakeKube, metrics_server: str) -> CheckRunner:
    return CheckRunner(webhooks=WebhookCaller(), templates=informer(kube, API_VERSION, "MetricTemplate"),
                       secrets=informer(kube, "v1", "Secret"), metrics_server=metrics_server, clock=lambda: NOW)


def _canary(*metrics: dict[str, Any]) -> Canary:
    return Canary.from_object(make_canary("web", "apps", analysis={
        "interval": "30s", "threshold": 2, "stepWeight": 10, "metrics": list(metrics)}))


def _prometheus(seen: Seen) -> Answer:
    return Answer(body=PROMETHEUS_ANSWER)


def test_a_go_interval_such_as_1_5m_reaches_promql_in_its_own_grammar() -> None:
    with FakeServer(_prometheus) as prometheus:
        canary = _canary({"name": "rate", "interval": "1.5m", "query": "sum(rate(hits[{{ interval }}]))",
                          "thresholdRange": {"min": 99}})
        result = _runner(FakeKube(), prometheus.url).run(Check.ANALYSIS, canary, revision="r1", provider="kubernetes")
    assert result.passed, result.message
    assert [seen.query["query"] for seen in prometheus.seen] == [["sum(rate(hits[1m30s]))"]]


def test_providers_with_a_time_range_look_back_ten_metric_intervals() -> None:
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "dd", "namespace": "apps"},
              "data": {k: base64.b64encode(v.encode()).decode() for k, v in
                       {"apiKey": "a", "applicationKey": "b"}.items()}}
    with FakeServer(lambda seen: Answer(body={"status": "ok", "series": [
            {"scope": "s", "pointlist": [[0.0, 1.0]]}]})) as datadog:
        template = {"apiVersion": API_VERSION, "kind": "MetricTemplate",
                    "metadata": {"name": "dd", "namespace": "apps"},
                    "spec": {"provider": {"type": "datadog", "address": datadog.url, "secretRef": {"name": "dd"}},
                             "query": "avg:errors{service:web}"}}
        runner = _runner(FakeKube(secret, template), "http://unused")
        for interval in ("2m", None):
            metric: dict[str, Any] = {"name": "errors", "templateRef": {"name": "dd"}, "thresholdRange": {"max": 5}}
            if interval:
                metric["interval"] = interval
            result = runner.run(Check.ANALYSIS, _canary(metric), revision="r1", provider="kubernetes")
            assert result.passed, result.message
    spans = [int(seen.query["to"][0]) - int(seen.query["from"][0]) for seen in datadog.seen]
    assert spans == [WINDOW_INTERVALS * 120, WINDOW_INTERVALS * 60], "2m, then Flagger's default 1m"


@pytest.mark.parametrize(("policy", "passed", "hold"), [("fail", False, False), ("pause", False, True),
                                                        ("skip", True, False)])
def test_a_comparison_without_data_follows_the_metrics_no_data_policy(policy: str, passed: bool, hold: bool) -> None:
    empty = {"status": "success", "data": {"resultType": "matrix", "result": []}}
    with FakeServer(lambda seen: Answer(body=empty)) as prometheus:
        canary = _canary({"name": "p99-versus-primary", "query": "x", "noData": policy,
                          "comparison": {"direction": "increase"}})
        result = _runner(FakeKube(), prometheus.url).run(Check.ANALYSIS, canary, revision="r1", provider="kubernetes")
    assert (result.passed, result.hold) == (passed, hold), result.message
    (judged,) = result.metrics
    assert judged.verdict == "no-data"


def test_a_metric_template_its_model_refuses_is_a_problem_naming_the_template_and_field_not_an_exception() -> None:
    template = {"apiVersion": API_VERSION, "kind": "MetricTemplate",
                "metadata": {"name": "latency", "namespace": "apps"},
                "spec": {"provider": {"type": "stackdriver"}, "query": "x"}}
    runner = _runner(FakeKube(template), "http://unused")
    canary = _canary({"name": "latency", "templateRef": {"name": "latency"}, "thresholdRange": {"max": 1}})

    [problem] = runner.problems(canary, provider="kubernetes")
    assert problem.startswith("MetricTemplate apps/latency: spec.provider.type: Input should be 'prometheus'")
    result = runner.run(Check.ANALYSIS, canary, revision="r1", provider="kubernetes")
    assert not result.passed
    assert "latency: MetricTemplate apps/latency: spec.provider.type" in (result.message or "")
