"""The metric charts' Prometheus series (a fake Prometheus): asked once per version of a Canary, drawn on its
chart, and a Prometheus that does not answer leaves the chart with the analysis values and the page saying so,
never an error."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any, cast

import pytest
import requests

from canary.dashboard.actions import Guard, Mode
from canary.dashboard.app import Dashboard, create_app
from canary.dashboard.feed import Feed
from canary.dashboard.ranges import FAILURE_KEPT_SECONDS, NoRanges, PrometheusRanges, Ranges
from canary.kube import Obj
from canary.kube.client import Kube
from canary.models.canary import Canary
from canary.telemetry.server import AsgiServer
from tests.builders import make_canary
from tests.httpfakes import Answer, FakeServer, Seen, dead_url

T0 = dt.datetime(2026, 11, 29, 12, 0, tzinfo=dt.UTC)
RATE = "request-success-rate"


def _at(seconds: int) -> str:
    return (T0 + dt.timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")


def _finished(version: str = "42") -> Obj:
    """A run that ended (rolled back), with the success rate at two steps and the duration at one."""
    canary = make_canary("web", "shop", analysis={
        "interval": "2s", "threshold": 2, "stepWeight": 25, "maxWeight": 50,
        "metrics": [{"name": RATE, "interval": "10s", "thresholdRange": {"min": 99}},
                    {"name": "request-duration", "interval": "10s", "thresholdRange": {"max": 500}}]})
    canary["metadata"]["resourceVersion"] = version
    canary["status"] = {"phase": "Failed", "canaryWeight": 0, "failedChecks": 2, "timeline": {
        "revision": "abc123", "started": _at(0), "thresholds": {RATE: {"min": 99}, "request-duration": {"max": 500}},
        "points": [{"time": _at(0), "phase": "Progressing", "canaryWeight": 0},
                   {"time": _at(20), "phase": "Progressing", "canaryWeight": 25,
                    "metrics": {RATE: 100, "request-duration": 20}},
                   {"time": _at(40), "phase": "Failed", "canaryWeight": 0, "failedChecks": 2,
                    "metrics": {RATE: 80, "request-duration": 30}}]}}
    return canary


def _matrix(seen: Seen) -> Answer:
    """Every query's series: three samples over the run, 100 then 90 then 70."""
    values = [[T0.timestamp() + 20 * i, v] for i, v in enumerate(("100", "90", "70"))]
    return Answer(body={"status": "success", "data": {"resultType": "matrix",
                                                      "result": [{"metric": {}, "values": values}]}})


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _ranges(url: str, clock: _Clock | None = None) -> PrometheusRanges:
    return PrometheusRanges(url, mesh_provider="kubernetes", templates=lambda ns, name: None, timeout=1.0,
                            clock=clock or _Clock())


def test_each_metric_gets_its_query_over_the_run_asked_once_per_version_of_the_canary() -> None:
    obj = _finished()
    with FakeServer(_matrix) as prometheus:
        ranges = _ranges(prometheus.url)
        found = ranges.of(obj, Canary.from_object(obj))
        again = ranges.of(obj, Canary.from_object(obj))
        asked = len(prometheus.seen)
    assert found is again
    assert asked == 2, "one range query per metric, and none for the same version again"
    assert found.problem is None
    assert [v for _, v in found.series[RATE]] == [100.0, 90.0, 70.0]
    assert found.series[RATE][0][0] == T0
    starts = {s.query["start"][0] for s in prometheus.seen}
    assert starts == {str(round(T0.timestamp()))}, "from the start of the run"
    assert {s.query["end"][0] for s in prometheus.seen} == {str(round(T0.timestamp()) + 40)}, "to its last step"


def test_a_prometheus_that_does_not_answer_is_named_and_asked_again_a_little_later() -> None:
    obj, clock = _finished(), _Clock()
    ranges = _ranges(dead_url(), clock)
    failed = ranges.of(obj, Canary.from_object(obj))
    assert failed.series == {}
    assert failed.problem is not None
    assert failed.problem.startswith(f"the Prometheus range series could not be read from {ranges.server}: ")
    assert ranges.of(obj, Canary.from_object(obj)) is failed, "kept a few seconds"
    clock.now += FAILURE_KEPT_SECONDS + 1
    assert ranges.of(obj, Canary.from_object(obj)) is not failed, "then asked again"


def test_a_metric_without_a_series_says_why() -> None:
    obj = _finished()
    obj["spec"]["analysis"]["metrics"].append({"name": "error-change", "interval": "10s", "comparison": {}})
    obj["status"]["timeline"]["thresholds"]["error-change"] = {"max": 5}
    with FakeServer(_matrix) as prometheus:
        found = _ranges(prometheus.url).of(obj, Canary.from_object(obj))
    assert found.problem is None
    assert set(found.series) == {RATE, "request-duration"}
    assert found.missing["error-change"].startswith("a comparison")
    assert found.as_json()["missing"] == {"error-change": found.missing["error-change"]}


class _Cluster:
    def __init__(self, canary: Obj) -> None:
        self.canary = canary

    def list_objects(self, api_version: str, kind: str, **selectors: Any) -> list[Obj]:
        return []

    def get(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> Obj | None:
        return None


@pytest.fixture
def serve() -> Iterator[Any]:
    servers: list[AsgiServer] = []

    def start(ranges: Ranges, canary: Obj) -> str:
        cluster = _Cluster(canary)
        dashboard = Dashboard(kube=cast(Kube, cluster), feed=Feed(lambda ns: [canary], namespace=None),
                              get_canary=lambda ns, name: canary if (ns, name) == ("shop", "web") else None,
                              guard=Guard(Mode.LOCAL), git=None, namespace=None, served_by="test", ranges=ranges)
        servers.append(AsgiServer(0, create_app(dashboard), host="127.0.0.1").start())
        return f"http://127.0.0.1:{servers[-1].port}"

    yield start
    for server in servers:
        server.stop()


def test_the_metric_chart_draws_the_prometheus_series_beside_the_analysis_values(serve: Any) -> None:
    with FakeServer(_matrix) as prometheus:
        url = serve(_ranges(prometheus.url), _finished())
        detail = requests.get(url + "/api/canaries/shop/web", timeout=10).json()
        chart = requests.get(url + f"/api/canaries/shop/web/metrics/{RATE}.svg", timeout=10)
    assert detail["prometheus"]["server"] == prometheus.url
    assert detail["prometheus"]["problem"] is None
    assert chart.status_code == 200
    assert f'id="{RATE}-prometheus"' in chart.text
    assert f'id="{RATE}-points-failed"' in chart.text


def test_a_prometheus_that_fails_leaves_the_analysis_values_and_the_page_says_so(serve: Any) -> None:
    down = _ranges(dead_url())
    url = serve(down, _finished())
    detail = requests.get(url + "/api/canaries/shop/web", timeout=10)
    chart = requests.get(url + f"/api/canaries/shop/web/metrics/{RATE}.svg", timeout=10)
    assert detail.status_code == 200
    assert down.server in detail.json()["prometheus"]["problem"]
    assert chart.status_code == 200
    assert f'id="{RATE}-prometheus"' not in chart.text
    assert f'id="{RATE}-points-passed"' in chart.text
    assert f'id="{RATE}-points-failed"' in chart.text


def test_a_prometheus_that_hangs_is_given_up_on_within_the_timeout(serve: Any) -> None:
    with FakeServer(lambda seen: Answer(delay=5.0)) as prometheus:
        url = serve(_ranges(prometheus.url), _finished())
        started = dt.datetime.now(dt.UTC)
        detail = requests.get(url + "/api/canaries/shop/web", timeout=10)
        took = (dt.datetime.now(dt.UTC) - started).total_seconds()
    assert detail.status_code == 200
    assert detail.json()["prometheus"]["problem"] is not None
    assert took < 4, f"the page waited {took:.1f} s for a Prometheus that hangs"


def test_without_a_metrics_server_the_page_says_nothing_of_prometheus(serve: Any) -> None:
    url = serve(NoRanges(), _finished())
    detail = requests.get(url + "/api/canaries/shop/web", timeout=10).json()
    assert detail["prometheus"] == {"server": None, "problem": None, "missing": {}, "metrics": []}
