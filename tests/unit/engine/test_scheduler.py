from __future__ import annotations

import datetime as dt
import itertools
import threading
from typing import Any

import pytest
from prometheus_client import REGISTRY

from canary.engine.canaries import Canaries
from canary.engine.decide import REQUEST_ANNOTATION
from canary.engine.scheduler import INVALID_RECHECK_SECONDS, MAX_BACKOFF_SECONDS, SETTLE_SECONDS, CanaryScheduler
from canary.errors import TemporaryError
from canary.models.base import API_VERSION
from canary.waiting import wait_until
from tests.builders import make_canary
from tests.fakes import FakeKube, informer

CANARY: dict[str, Any] = make_canary("web", "apps", analysis={"interval": "1m", "stepWeight": 10})
CANARY["metadata"]["generation"] = 1
TARGET: dict[str, Any] = {"metadata": {"namespace": "apps", "name": "web", "generation": 2},
                          "status": {"observedGeneration": 1}}


def test_changes_written_together_are_judged_in_one_tick_shortly_after() -> None:
    ticks: list[dt.datetime] = []
    lock = threading.Lock()

    def tick(namespace: str, name: str) -> str:
        with lock:
            ticks.append(dt.datetime.now(dt.UTC))
        return "ticked"

    scheduler = CanaryScheduler(tick, workers=2, canaries=_canaries(CANARY))
    scheduler.start()
    try:
        scheduler.on_canary("ADDED", CANARY)
        wait_until(lambda: len(ticks), lambda n: n == 1, what="the first tick", timeout=5, interval=0.01)

        changed = dt.datetime.now(dt.UTC)
        scheduler.on_target("MODIFIED", TARGET)  # the Deployment of a commit ...
        scheduler.on_target("MODIFIED", TARGET)  # ... and its ConfigMap, a moment later
        wait_until(lambda: len(ticks), lambda n: n == 2, what="the tick after the change", timeout=5, interval=0.01)

        assert ticks[1] - changed >= dt.timedelta(seconds=SETTLE_SECONDS * 0.9), "it waited for the rest"
        job = scheduler._scheduler.get_job("apps/web")
        assert job.next_run_time - dt.datetime.now(dt.UTC) > dt.timedelta(seconds=50), \
            "no second tick is pending: the next one is the interval's"
    finally:
        scheduler.shutdown()


def _canaries(*objects: dict[str, Any]) -> Canaries:
    return Canaries(informer(FakeKube(*objects), API_VERSION, "Canary"))


@pytest.mark.parametrize(("interval", "seconds"), [
    ("1m30s", 90.0), ("1.5m", 90.0), ("2s", 2.0),
    # The model refuses these; the job must not invent an interval of its own for them.
    ("bogus", INVALID_RECHECK_SECONDS), ("0.5s", INVALID_RECHECK_SECONDS),
])
def test_a_job_ticks_at_the_interval_the_model_reads(interval: str, seconds: float) -> None:
    canary = make_canary("web", "apps", analysis={"interval": interval, "stepWeight": 10})
    scheduler = CanaryScheduler(lambda namespace, name: "ticked", canaries=_canaries(canary))
    scheduler.start(paused=True)
    try:
        scheduler.on_canary("ADDED", canary)
        assert scheduler.interval("apps", "web") == seconds
    finally:
        scheduler.shutdown()


def test_a_manual_request_runs_a_tick_at_once() -> None:
    ticks: list[dt.datetime] = []

    def tick(namespace: str, name: str) -> str:
        ticks.append(dt.datetime.now(dt.UTC))
        return "ticked"

    scheduler = CanaryScheduler(tick, workers=1, canaries=_canaries(CANARY))
    scheduler.start()
    try:
        scheduler.on_canary("ADDED", CANARY)
        wait_until(lambda: len(ticks), lambda n: n == 1, what="the first tick", timeout=5, interval=0.01)
        status_only = {**CANARY, "status": {"phase": "Succeeded"}}
        scheduler.on_canary("MODIFIED", status_only)
        requested = {**CANARY, "metadata": {**CANARY["metadata"], "annotations": {REQUEST_ANNOTATION: "retry/1"}}}
        asked = dt.datetime.now(dt.UTC)
        scheduler.on_canary("MODIFIED", requested)  # an annotation: the generation stays
        wait_until(lambda: len(ticks), lambda n: n == 2, what="the tick for the request", timeout=5, interval=0.01)
        assert ticks[1] - asked < dt.timedelta(seconds=5), "handled long before the 1m interval"
    finally:
        scheduler.shutdown()


def test_a_metric_template_that_appears_runs_the_canaries_that_use_it_at_once() -> None:
    ticks: list[str] = []

    def tick(namespace: str, name: str) -> str:
        ticks.append(name)
        return "ticked"

    user = make_canary("web", "apps", analysis={"interval": "1m", "stepWeight": 10, "metrics": [
        {"name": "latency", "templateRef": {"name": "latency"}, "thresholdRange": {"max": 5}}]})
    other = make_canary("api", "apps", analysis={"interval": "1m", "stepWeight": 10})
    scheduler = CanaryScheduler(tick, workers=1, canaries=_canaries(user, other))
    scheduler.start()
    try:
        scheduler.on_canary("ADDED", user)
        scheduler.on_canary("ADDED", other)
        wait_until(lambda: sorted(ticks), lambda seen: seen == ["api", "web"], what="the first ticks", timeout=5,
                   interval=0.01)
        template = {"apiVersion": API_VERSION, "kind": "MetricTemplate",
                    "metadata": {"name": "latency", "namespace": "apps"}}
        scheduler.on_template("ADDED", template)
        wait_until(lambda: ticks[2:], lambda seen: seen == ["web"], what="the tick of the canary using it",
                   timeout=5, interval=0.01)
    finally:
        scheduler.shutdown()


def test_a_temporary_failure_is_retried_with_a_growing_pause_and_reported_when_it_persists() -> None:
    now = [0.0]
    calls: list[float] = []
    reports: list[str] = []
    failing = [True]

    def tick(namespace: str, name: str) -> str:
        calls.append(now[0])
        if failing[0]:
            raise TemporaryError("create Service apps/web: HTTP 500: range is full")
        return "ticked"

    scheduler = CanaryScheduler(tick, canaries=_canaries(CANARY), clock=lambda: now[0],
                                on_failure=lambda ns, name, message: reports.append(f"{ns}/{name}: {message}"))
    scheduler.start(paused=True)
    try:
        scheduler.on_canary("ADDED", CANARY)  # interval 1m
        for second in range(0, 1000, 10):  # the job would run every 10 s here, say (events, the interval)
            now[0] = float(second)
            scheduler._run("apps", "web")
        assert calls[:4] == [0.0, 60.0, 180.0, 420.0], "60 s, then 120 s, then 240 s later"
        assert [b - a for a, b in itertools.pairwise(calls)][3:] == [300.0] * (len(calls) - 4), \
            "at most 300 s apart"
        assert len(reports) == len(calls) - 2, "reported from the third failure in a row on"
        assert reports[0] == ("apps/web: failed 3 times in a row, retrying in 240s: create Service apps/web: "
                              "HTTP 500: range is full")

        failing[0] = False
        now[0] += MAX_BACKOFF_SECONDS
        scheduler._run("apps", "web")
        now[0] += 1
        scheduler._run("apps", "web")
        assert calls[-2:] == [now[0] - 1, now[0]], "after a success the canary runs at once again"
    finally:
        scheduler.shutdown()


def test_stalled_says_why_when_every_worker_is_held_and_recovers_when_they_are_freed() -> None:
    held = threading.Event()
    entered = threading.Event()

    def tick(namespace: str, name: str) -> str:
        entered.set()
        held.wait(30)
        return "ticked"

    scheduler = CanaryScheduler(tick, workers=1, canaries=_canaries(CANARY), heartbeat_seconds=0.1)
    scheduler.start()
    try:
        assert scheduler.stalled(1.0) is None
        scheduler.on_canary("ADDED", CANARY)
        assert entered.wait(5)
        problem = wait_until(lambda: scheduler.stalled(1.0), lambda why: why is not None,
                             what="the stall to be seen", timeout=10, interval=0.05)
        assert problem is not None
        assert "apps/web" in problem or "all workers are held" in problem
        held.set()
        wait_until(lambda: scheduler.stalled(1.0), lambda why: why is None, what="progress again", timeout=10,
                   interval=0.05)
        scheduler.pause()
        assert scheduler.stalled(0.0) is None, "a follower (paused) is not stalled"
    finally:
        held.set()
        scheduler.shutdown()


def _lag_samples() -> tuple[float, float]:
    return (REGISTRY.get_sample_value("canary_tick_lag_seconds_count") or 0.0,
            REGISTRY.get_sample_value("canary_tick_lag_seconds_sum") or 0.0)


def test_the_lag_of_a_tick_that_waited_for_a_worker_is_measured() -> None:
    other = make_canary("api", "apps", analysis={"interval": "1m", "stepWeight": 10})
    release, ticks = threading.Event(), []

    def tick(namespace: str, name: str) -> str:
        ticks.append(name)
        if name == "web":
            release.wait(5)  # holds the only worker
        return "ticked"

    scheduler = CanaryScheduler(tick, workers=1, canaries=_canaries(CANARY, other))
    scheduler.start()
    try:
        scheduler.on_canary("ADDED", CANARY)
        wait_until(lambda: ticks, lambda t: t == ["web"], what="web's tick to hold the worker", timeout=5,
                   interval=0.01)
        count, total = _lag_samples()
        scheduler.on_canary("ADDED", other)
        threading.Timer(0.3, release.set).start()
        wait_until(lambda: ticks, lambda t: t == ["web", "api"], what="api's tick", timeout=5, interval=0.01)
        after_count, after_total = _lag_samples()
        assert after_count == count + 1, "one observation for api's tick"
        assert after_total - total >= 0.2, "api waited for web's tick to end"
    finally:
        release.set()
        scheduler.shutdown()


def test_canaries_found_at_once_tick_at_once_then_at_phases_spread_over_their_interval() -> None:
    canaries = [make_canary(f"app-{i}", "apps", analysis={"interval": "10s", "iterations": 2}) for i in range(20)]
    ticks: list[str] = []
    lock = threading.Lock()

    def tick(namespace: str, name: str) -> str:
        with lock:
            ticks.append(name)
        return "ticked"

    scheduler = CanaryScheduler(tick, workers=4, canaries=_canaries(*canaries))
    began = dt.datetime.now(dt.UTC)
    scheduler.start()
    try:
        for canary in canaries:
            scheduler.on_canary("ADDED", canary)
        wait_until(lambda: len(ticks), lambda n: n == 20, what="every canary's first tick", timeout=5, interval=0.01)
        wait_until(lambda: [scheduler._scheduler.get_job(f"apps/app-{i}").next_run_time for i in range(20)],
                   lambda times: all(t < began + dt.timedelta(seconds=10) for t in times),
                   what="every next tick moved to its phase", timeout=5, interval=0.01)
        offsets = sorted((scheduler._scheduler.get_job(f"apps/app-{i}").next_run_time - began).total_seconds()
                         for i in range(20))
        assert offsets[-1] - offsets[0] > 5, f"spread over the interval, not due together: {offsets}"
        assert len(ticks) == 20, "no canary ticked twice meanwhile"
    finally:
        scheduler.shutdown()
