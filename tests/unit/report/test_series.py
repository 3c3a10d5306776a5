"""The data of ``canary report``'s picture, from timelines that whole releases wrote."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest

from canary.engine.decide import Check, CheckResult
from canary.errors import PermanentError
from canary.models.canary import Band, Canary, MetricResult, Phase
from canary.report.series import Mark, run_of
from tests.builders import make_canary
from tests.unit.engine.test_decide import hooks, make_spec
from tests.unit.engine.world import World

Checks = Callable[[Check, World], CheckResult]


def metric_checks(rate: float, latency: float | None) -> Checks:
    """Analysis answers: the success rate (at least 99 passes) and the latency (None: no data)."""
    def checks(check: Check, w: World) -> CheckResult:
        if check is not Check.ANALYSIS:
            return CheckResult(passed=check is not Check.ROLLBACK)
        results = (MetricResult(name="request-success-rate", value=rate, min=99, verdict="pass" if rate >= 99 else
                                "fail", message=f"request-success-rate {rate:g} < 99", time=w.now),
                   MetricResult(name="latency", value=latency, max=500, time=w.now,
                                verdict="no-data" if latency is None else "pass"))
        failed = [r for r in results if r.verdict == "fail"]
        return CheckResult(passed=not failed, message="; ".join(r.message or "" for r in failed), metrics=results)
    return checks


def released(world: World, until: Phase) -> Canary:
    """Canary demo/podinfo after its release of rev-2 reached ``until``."""
    world.initialise()
    world.release("rev-2")
    world.run_until(lambda w: w.phase() is until)
    return _canary(world)


def _canary(world: World) -> Canary:
    """Canary demo/podinfo with the world's status; its metrics in the order the pictures show them."""
    canary = Canary.model_validate(make_canary("podinfo", "demo", analysis={
        "interval": "1s", "stepWeight": 10, "metrics": [
            {"name": "request-success-rate", "thresholdRange": {"min": 99}},
            {"name": "latency", "thresholdRange": {"max": 500}, "query": "latency"}]}))
    return canary.model_copy(update={"status": world.status})


def test_a_promoted_run_shows_the_weight_steps_the_metrics_in_their_bands_and_the_promotion() -> None:
    world = World(make_spec(stepWeight=10, maxWeight=30, threshold=2), checks=metric_checks(99.5, 120))

    run = run_of(released(world, Phase.SUCCEEDED))

    assert run.canary == "demo/podinfo"
    assert run.revision == "rev-2"
    assert run.outcome == "promoted"
    assert [w for _, w in run.weights] == [0, 10, 20, 30, 30, 0, 0]
    assert run.duration == timedelta(seconds=6)
    assert run.title == "demo/podinfo · revision rev-2 · promoted · 6s"
    rate, latency = run.metrics
    assert (rate.name, rate.band, rate.values) == ("request-success-rate", Band(min=99), (99.5, 99.5, 99.5))
    assert (latency.name, latency.band, latency.values) == ("latency", Band(max=500), (120, 120, 120))
    assert rate.outside == ()
    assert latency.no_data == ()
    assert [(m.kind, m.label) for m in run.markers] == [(Mark.PROMOTION, "promotion")]
    assert run.why == ""


def test_a_rolled_back_run_shows_the_failing_metric_the_failed_checks_and_why() -> None:
    world = World(make_spec(stepWeight=10, maxWeight=50, threshold=2), checks=metric_checks(70, None))

    run = run_of(released(world, Phase.FAILED))

    assert run.outcome == "rolled back"
    assert [w for _, w in run.weights] == [0, 10, 10, 10, 0]
    rate, latency = run.metrics
    assert [v for _, v in rate.outside] == [70, 70], "the failing metric, at each failed check"
    assert latency.no_data == latency.times, "no data is drawn as such, not as a value"
    assert [m.label for m in run.markers if m.kind is Mark.FAILED_CHECK] == ["failed check 1", "failed check 2"]
    assert run.why.startswith("failed checks threshold reached 2 (request-success-rate: request-success-rate 70 < 99")
    assert run.title.startswith("demo/podinfo · revision rev-2 · rolled back · ")


def test_a_refused_gate_and_a_manual_abort_are_marked() -> None:
    world = World(make_spec(stepWeight=10, webhooks=hooks("confirm-traffic-increase")),
                  checks=lambda check, w: CheckResult(passed=False, hook="traffic-gate")
                  if check is Check.CONFIRM_TRAFFIC_INCREASE else CheckResult(passed=check is not Check.ROLLBACK))
    world.initialise()
    world.release("rev-2")
    world.run_until(lambda w: w.asked.count(Check.CONFIRM_TRAFFIC_INCREASE) >= 2)
    world.request = "abort/1"
    world.tick()
    canary = _canary(world)

    run = run_of(canary)

    assert [(m.kind, m.label) for m in run.markers] == [
        (Mark.GATE, "webhook traffic-gate refused"), (Mark.ROLLBACK, "rollback: aborted on request")]
    assert run.why == "aborted on request"


def test_a_run_under_way_says_so() -> None:
    world = World(make_spec(stepWeight=10, maxWeight=50), checks=metric_checks(99.5, 120))
    world.initialise()
    world.release("rev-2")
    world.run_until(lambda w: w.status.canary_weight == 20)
    canary = _canary(world)

    assert run_of(canary).outcome == "running (Progressing)"


def test_another_revision_than_the_recorded_run_is_refused_naming_the_canary_and_its_revision() -> None:
    canary = released(World(make_spec(stepWeight=50)), Phase.SUCCEEDED)

    assert run_of(canary, revision="rev-2").revision == "rev-2"
    with pytest.raises(PermanentError, match=r"^Canary demo/podinfo: --revision rev-1: the recorded run "
                       r"\(status.timeline\) is of revision rev-2"):
        run_of(canary, revision="rev-1")


def test_a_canary_without_a_recorded_run_is_refused() -> None:
    with pytest.raises(PermanentError, match=r"^Canary demo/podinfo: status\.timeline is empty"):
        run_of(Canary.model_validate(make_canary("podinfo", "demo")))
