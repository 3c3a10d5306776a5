"""status.timeline as whole releases write it: what ``canary report`` and the dashboard draw."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from canary.engine.decide import Check, CheckResult
from canary.engine.effects import SetStatus
from canary.engine.status import apply_status
from canary.models.canary import TIMELINE_POINTS, Band, CanaryStatus, MetricResult, Phase, Timeline
from tests.unit.engine.test_decide import hooks, make_spec
from tests.unit.engine.world import World

NOW = datetime(2026, 1, 1, 12, 0, 0, 250_123, tzinfo=UTC)


def _rate(value: float | None, w: World) -> MetricResult:
    verdict = "no-data" if value is None else "pass" if value >= 99 else "fail"
    return MetricResult(name="request-success-rate", value=value, min=99.0, verdict=verdict,
                        message=f"{value} < 99" if verdict == "fail" else None, time=w.now)


def _timeline(world: World) -> Timeline:
    assert world.status.timeline is not None, "no timeline written"
    return world.status.timeline


def test_a_good_release_records_each_weight_step_its_metrics_and_the_promotion() -> None:
    world = World(make_spec(stepWeight=20, maxWeight=60),
                  checks=lambda check, w: CheckResult(passed=True, metrics=(_rate(99.912345678, w),))
                  if check is Check.ANALYSIS else CheckResult(passed=check is not Check.ROLLBACK))
    world.initialise()
    assert world.status.timeline is None, "initialisation is not a run"
    started = world.now
    world.release("rev-2")

    world.run_until(lambda w: w.phase() is Phase.SUCCEEDED)

    timeline = _timeline(world)
    assert timeline.revision == "rev-2"
    assert timeline.started == started
    assert [p.canary_weight for p in timeline.points] == [0, 20, 40, 60, 60, 0, 0]
    assert [p.phase for p in timeline.points][-3:] == [Phase.PROMOTING, Phase.FINALISING, Phase.SUCCEEDED]
    assert [p.note for p in timeline.points if p.note] == ["promotion"]
    assert timeline.points[1].metrics is None, "the first step is taken before any analysis"
    assert timeline.points[2].metrics == {"request-success-rate": 99.9123}, "values keep six digits"
    assert timeline.thresholds == {"request-success-rate": Band(min=99.0)}


def test_a_bad_release_records_the_failed_checks_the_failing_values_and_why_it_rolled_back() -> None:
    world = World(make_spec(stepWeight=10, threshold=2))
    world.initialise()
    world.checks = lambda check, w: CheckResult(passed=False, message="80 < 99", metrics=(_rate(80.0, w),)) \
        if check is Check.ANALYSIS else CheckResult(passed=check is not Check.ROLLBACK)
    world.release("rev-2")

    world.run_until(lambda w: w.phase() is Phase.FAILED)

    points = _timeline(world).points
    assert [p.canary_weight for p in points] == [0, 10, 10, 10, 0]
    assert [p.failed_checks for p in points] == [0, 0, 1, 2, 2]
    assert [(p.metrics or {}).get("request-success-rate") for p in points] == [None, None, 80.0, 80.0, None]
    assert points[-1].phase is Phase.FAILED
    assert points[-1].note == "rollback: failed checks threshold reached 2 (request-success-rate: 80.0 < 99)"


def test_the_timeline_is_kept_after_the_run_and_begun_anew_by_the_next() -> None:
    world = World(make_spec(stepWeight=50))
    world.initialise()
    world.release("rev-2")
    world.run_until(lambda w: w.phase() is Phase.SUCCEEDED)
    ended = _timeline(world)

    world.request = "abort/1"  # refused: the status is written, the finished run's record stays
    world.tick()
    assert world.status.request_refused is not None
    assert world.status.timeline == ended

    world.release("rev-3")
    world.tick()
    assert _timeline(world).revision == "rev-3"
    assert [p.phase for p in _timeline(world).points] == [Phase.PROGRESSING]


def test_a_retry_starts_a_new_run_of_the_same_revision() -> None:
    world = World(make_spec(stepWeight=50, threshold=1),
                  checks=lambda check, w: CheckResult(passed=check not in (Check.ANALYSIS, Check.ROLLBACK)))
    world.initialise()
    world.release("rev-2")
    world.run_until(lambda w: w.phase() is Phase.FAILED)
    world.request = "retry/1"

    world.tick()

    timeline = _timeline(world)
    assert timeline.revision == "rev-2"
    assert [(p.phase, p.note) for p in timeline.points] == [(Phase.PROGRESSING, "retry requested")]


def test_a_manual_abort_says_so() -> None:
    world = World(make_spec(stepWeight=10))
    world.initialise()
    world.release("rev-2")
    world.run_until(lambda w: w.status.canary_weight == 20)
    world.request = "abort/1"

    world.tick()

    assert _timeline(world).points[-1].note == "rollback: aborted on request"


def test_a_refused_rollout_gate_is_part_of_the_run_that_follows() -> None:
    world = World(make_spec(stepWeight=50, webhooks=hooks("confirm-rollout")))
    world.initialise()
    world.checks = lambda check, w: CheckResult(passed=False, hook="confirm-rollout") \
        if check is Check.CONFIRM_ROLLOUT else CheckResult(passed=check is not Check.ROLLBACK)
    world.release("rev-2")
    world.tick()
    world.tick()
    assert [(p.phase, p.note) for p in _timeline(world).points] == [(Phase.WAITING, "webhook confirm-rollout refused")]

    world.checks = lambda check, w: CheckResult(passed=check is not Check.ROLLBACK)
    world.run_until(lambda w: w.phase() is Phase.SUCCEEDED)

    timeline = _timeline(world)
    assert timeline.revision == "rev-2"
    assert [p.phase for p in timeline.points][:2] == [Phase.WAITING, Phase.PROGRESSING]


def test_a_refused_traffic_increase_is_noted_once_while_nothing_else_changes() -> None:
    world = World(make_spec(stepWeight=50, webhooks=hooks("confirm-traffic-increase")),
                  checks=lambda check, w: CheckResult(passed=False, hook="gate")
                  if check is Check.CONFIRM_TRAFFIC_INCREASE else CheckResult(passed=check is not Check.ROLLBACK))
    world.initialise()
    world.release("rev-2")
    for _ in range(4):
        world.tick()

    assert [p.note for p in _timeline(world).points] == [None, "webhook gate refused"]


def test_mirrored_steps_are_marked() -> None:
    world = World(make_spec(stepWeight=25, maxWeight=50, mirror=True))
    world.initialise()
    world.release("rev-2")

    world.run_until(lambda w: w.phase() is Phase.SUCCEEDED)

    points = _timeline(world).points
    assert [(p.canary_weight, p.mirror) for p in points][:3] == [(0, None), (0, True), (25, None)]


def test_a_long_run_keeps_its_first_point_and_the_newest() -> None:
    status = apply_status(CanaryStatus(), SetStatus(phase=Phase.PROGRESSING, run="rev-2"), tracked_configs=None,
                          target_kind="Deployment", now=NOW)
    for step in range(1, TIMELINE_POINTS + 30):
        status = apply_status(status, SetStatus(failed_checks=step % 2, analysis=(MetricResult(
            name="latency", value=step, max=500, verdict="pass", time=NOW),)), tracked_configs=None,
            target_kind="Deployment", now=NOW + timedelta(seconds=step))

    assert status.timeline is not None
    points = status.timeline.points
    assert len(points) == TIMELINE_POINTS
    assert points[0].time == NOW.replace(microsecond=250_000), "times keep milliseconds"
    assert points[-1].metrics == {"latency": TIMELINE_POINTS + 29}
    assert points[1].metrics == {"latency": TIMELINE_POINTS + 29 - (TIMELINE_POINTS - 2)}


def test_a_long_note_is_cut_to_fit() -> None:
    status = apply_status(CanaryStatus(), SetStatus(phase=Phase.FAILED, run="rev-2", note="x" * 500),
                          tracked_configs=None, target_kind="Deployment", now=NOW)

    assert status.timeline is not None
    note = status.timeline.points[0].note
    assert note is not None
    assert len(note) == 200
    assert note.endswith("…")


def test_the_timeline_round_trips_through_the_api_shape() -> None:
    world = World(make_spec(stepWeight=50), checks=lambda check, w: CheckResult(
        passed=True, metrics=(_rate(None, w),)) if check is Check.ANALYSIS else CheckResult(
        passed=check is not Check.ROLLBACK))
    world.initialise()
    world.release("rev-2")
    world.run_until(lambda w: w.phase() is Phase.SUCCEEDED)

    wire = world.status.model_dump(by_alias=True, exclude_none=True, mode="json")

    assert wire["timeline"]["points"][2]["metrics"] == {"request-success-rate": None}, "no data stays null"
    assert set(wire["timeline"]["points"][2]) == {"time", "phase", "canaryWeight", "failedChecks", "metrics"}
    assert CanaryStatus.model_validate(wire) == world.status


def test_a_metric_without_data_dropped_by_the_api_server_reads_as_null() -> None:
    stored = {"revision": "rev-2", "started": "2026-01-01T00:00:00Z",
              "thresholds": {"latency": {"max": 500}},
              "points": [{"time": "2026-01-01T00:00:00Z", "phase": "Progressing", "canaryWeight": 0},
                         {"time": "2026-01-01T00:00:05Z", "phase": "Progressing", "canaryWeight": 10,
                          "metrics": {"request-success-rate": 99.5}},
                         {"time": "2026-01-01T00:00:10Z", "phase": "Progressing", "canaryWeight": 20,
                          "metrics": {}}]}

    timeline = Timeline.model_validate(stored)

    assert [p.metrics for p in timeline.points] == [
        None, {"latency": None, "request-success-rate": 99.5}, {"latency": None, "request-success-rate": None}]
