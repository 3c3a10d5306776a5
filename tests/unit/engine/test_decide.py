from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from canary.engine.decide import Check, CheckResult, next_step_weight
from canary.engine.effects import Alert, PostRolloutHooks, Promote, ScaleTarget, SetStatus
from canary.models.canary import CanaryAnalysis, CanarySpec, MetricResult, Phase, Severity
from canary.workloads.readiness import Readiness
from tests.unit.engine.world import World


def make_spec(**analysis: Any) -> CanarySpec:
    spec: dict[str, Any] = {"targetRef": {"name": "podinfo"}, "service": {"port": 9898},
                            "analysis": {"interval": "1s", "threshold": 3, **analysis}}
    if not {"iterations", "stepWeight", "stepWeights"} & analysis.keys():
        spec["analysis"]["stepWeight"] = 10
    return CanarySpec.model_validate(spec)


def hooks(*types: str) -> list[dict[str, str]]:
    return [{"name": t, "type": t, "url": f"http://hooks/{t}"} for t in types]


def test_initialisation_waits_for_the_primary_then_scales_the_target_down() -> None:
    world = World(make_spec(), primary=Readiness(ready=False, message="0 of 2 ready"))
    assert world.tick().summary == "waiting for the primary: 0 of 2 ready"
    assert world.phase() is Phase.INITIALIZING
    assert world.tick().effects == (), "waiting again writes nothing"

    world.primary = Readiness(ready=True)
    world.tick()
    assert world.phase() is Phase.INITIALIZED
    assert not world.target_up
    assert world.status.last_applied_spec == world.status.last_promoted_spec == "rev-1"
    assert world.status.conditions is not None
    assert world.status.conditions[0].status == "True"
    assert world.alerts[0].message == "New Deployment detected, initialization completed."


def test_an_idle_canary_does_nothing_and_asks_nothing() -> None:
    world = World(make_spec(webhooks=hooks("confirm-rollout", "rollback")))
    world.initialise()
    for _ in range(3):
        assert world.tick().effects == ()
    assert world.asked == []


def test_a_good_release_steps_the_weight_then_promotes_and_finalises() -> None:
    world = World(make_spec(stepWeight=10, maxWeight=50))
    world.initialise()
    world.release("rev-2")

    phases = world.run_until(lambda w: w.phase() is Phase.SUCCEEDED)

    assert world.routes == [(90, 10), (80, 20), (70, 30), (60, 40), (50, 50), (100, 0)]
    assert phases[0] is Phase.PROGRESSING
    assert phases[-3:] == [Phase.PROMOTING, Phase.FINALISING, Phase.SUCCEEDED]
    assert world.primary_revision == "rev-2"
    assert not world.target_up
    assert world.status.last_promoted_spec == "rev-2"
    assert world.status.canary_weight == 0
    assert [a.message for a in world.alerts] == ["New revision detected, progressing canary analysis.",
                                                 "Canary analysis completed successfully, promotion finished."]
    assert world.tick().effects == (), "a promoted revision does not run again"


def test_a_bad_release_is_rolled_back_after_threshold_failed_checks() -> None:
    world = World(make_spec(stepWeight=10, maxWeight=50, threshold=2))
    world.initialise()

    def checks(check: Check, w: World) -> CheckResult:
        if check is not Check.ANALYSIS:
            return CheckResult(passed=check is not Check.ROLLBACK)
        failing = MetricResult(name="request-success-rate", value=80.0, min=99.0, verdict="fail",
                               message="80 < 99", time=w.now)
        return CheckResult(passed=False, message="success rate 80%", metrics=(failing,))

    world.checks = checks
    world.release("rev-2")

    phases = world.run_until(lambda w: w.phase() is Phase.FAILED)

    assert world.routes == [(90, 10), (100, 0)]
    assert phases == [Phase.PROGRESSING, Phase.PROGRESSING, Phase.PROGRESSING, Phase.PROGRESSING, Phase.FAILED]
    assert world.primary_revision == "rev-1", "the primary keeps the old version"
    assert not world.target_up
    assert world.status.failed_checks == 2
    error = [a for a in world.alerts if a.severity is Severity.ERROR]
    assert error[0].message == "Failed checks threshold reached 2: request-success-rate: 80 < 99"
    assert world.status.conditions is not None
    assert world.status.conditions[0].status == "False"
    assert world.tick().effects == (), "a failed revision is not retried by itself"

    world.checks = lambda check, w: CheckResult(passed=check is not Check.ROLLBACK)
    world.release("rev-3")
    world.run_until(lambda w: w.phase() is Phase.SUCCEEDED)
    assert world.primary_revision == "rev-3"


def test_a_target_reverted_to_the_promoted_revision_after_a_rollback_is_recorded_and_not_released() -> None:
    world = World(make_spec(threshold=1))
    world.initialise()
    world.checks = lambda check, w: CheckResult(passed=check not in (Check.ANALYSIS, Check.ROLLBACK))
    world.release("rev-2")
    world.run_until(lambda w: w.phase() is Phase.FAILED)
    assert world.status.last_applied_spec == "rev-2"

    world.release("rev-1")  # Git reverted the target to what the primary runs
    decision = world.tick()

    assert decision.summary == "target back at the promoted revision"
    assert world.status.last_applied_spec == world.status.last_promoted_spec == "rev-1"
    assert world.phase() is Phase.FAILED, "the last release did fail"
    assert not world.target_up
    assert world.tick().effects == (), "nothing to release"
    world.release("rev-2")
    world.tick()
    assert world.phase() is Phase.PROGRESSING, "pushing the failed revision again is a new release"


def test_a_run_is_stopped_when_the_target_goes_back_to_the_promoted_revision() -> None:
    world = World(make_spec(stepWeight=10, maxWeight=50))
    world.initialise()
    world.release("rev-2")
    world.run_until(lambda w: w.status.canary_weight == 20)

    world.release("rev-1")
    decision = world.tick()

    assert decision.summary == "target back at the promoted revision: run stopped"
    assert world.phase() is Phase.INITIALIZED
    assert world.routes[-1] == (100, 0)
    assert not world.target_up
    assert world.status.last_applied_spec == world.status.last_promoted_spec == "rev-1"
    assert world.primary_revision == "rev-1", "nothing was promoted"
    assert world.tick().effects == ()


def test_step_weights_follow_the_list() -> None:
    world = World(make_spec(stepWeights=[1, 5, 20, 60]))
    world.initialise()
    world.release("rev-2")
    world.run_until(lambda w: w.phase() is Phase.SUCCEEDED)
    assert world.routes == [(99, 1), (95, 5), (80, 20), (40, 60), (100, 0)]


def test_step_weight_promotion_shifts_traffic_back_gradually() -> None:
    world = World(make_spec(stepWeight=25, maxWeight=50, stepWeightPromotion=20))
    world.initialise()
    world.release("rev-2")
    world.run_until(lambda w: w.phase() is Phase.SUCCEEDED)
    assert world.routes == [(75, 25), (50, 50), (70, 30), (90, 10), (100, 0)]


def test_blue_green_without_router_weights_runs_iterations_then_promotes() -> None:
    world = World(make_spec(iterations=3), router_has_weights=False)
    world.initialise()
    world.release("rev-2")
    world.run_until(lambda w: w.phase() is Phase.SUCCEEDED)
    assert world.routes == [], "the kubernetes router has no weights to set"
    assert world.asked.count(Check.ANALYSIS) == 3, "no extra interval for 'all traffic to the canary'"
    assert not any("Routing all traffic to canary" in e.message for e in world.events)
    assert world.primary_revision == "rev-2"


def test_a_revision_that_arrives_while_the_primary_starts_is_released_as_a_run() -> None:
    world = World(make_spec(stepWeight=50), primary=Readiness(ready=False, message="starting"))
    world.primary_revision = "rev-1"  # the primary was made from the target as it was first seen
    world.tick()
    assert world.phase() is Phase.INITIALIZING
    world.revision = "rev-2"  # the image is set while the primary starts
    world.primary = Readiness(ready=True)
    world.tick()
    assert world.phase() is Phase.INITIALIZED
    assert world.status.last_promoted_spec == world.status.last_applied_spec == "rev-1", \
        "status says what the primary runs"
    world.run_until(lambda w: w.phase() is Phase.SUCCEEDED)
    assert world.primary_revision == "rev-2"
    assert world.status.last_promoted_spec == "rev-2"


def test_a_request_the_canary_cannot_act_on_is_recorded_as_refused_with_the_reason() -> None:
    world = World(make_spec(stepWeight=50))
    world.initialise()
    world.request = "promote/1"
    world.tick()
    assert world.status.handled_request == "promote/1"
    assert world.status.request_refused == ("promote refused: the canary is Initialized; promote works while "
                                            "Progressing, Waiting or WaitingPromotion")
    world.release("rev-2")
    world.run_until(lambda w: w.phase() is Phase.PROGRESSING)
    world.request = "promote/2"
    world.tick()
    assert world.status.handled_request == "promote/2"
    assert world.status.request_refused is None
    assert world.phase() is Phase.PROMOTING


def test_blue_green_with_weights_sends_all_traffic_to_the_canary_before_promoting() -> None:
    world = World(make_spec(iterations=2))
    world.initialise()
    world.release("rev-2")
    world.run_until(lambda w: w.phase() is Phase.SUCCEEDED)
    assert world.routes == [(0, 100), (100, 0)]


def test_a_canary_spec_on_a_router_without_weights_becomes_ten_iterations() -> None:
    world = World(make_spec(stepWeight=10), router_has_weights=False)
    world.initialise()
    world.release("rev-2")
    world.run_until(lambda w: w.phase() is Phase.PROMOTING)
    assert world.status.iterations == 10, "ten iterations, and no extra one for a traffic switch it cannot make"


def test_ab_testing_routes_matched_traffic_to_the_canary_each_iteration() -> None:
    world = World(make_spec(iterations=2, match=[{"headers": {"x-canary": {"exact": "insider"}}}]))
    world.initialise()
    world.release("rev-2")
    world.run_until(lambda w: w.phase() is Phase.SUCCEEDED)
    assert world.routes == [(0, 100), (0, 100), (100, 0)]


def test_a_closed_confirm_rollout_gate_waits_without_counting_and_alerts_once() -> None:
    world = World(make_spec(webhooks=hooks("confirm-rollout")))
    world.initialise()
    gate = {"open": False}
    world.checks = lambda check, w: CheckResult(passed=gate["open"] if check is Check.CONFIRM_ROLLOUT else True)
    world.release("rev-2")
    for _ in range(3):
        world.tick()
    assert world.phase() is Phase.WAITING
    assert world.status.failed_checks == 0
    assert [a.message for a in world.alerts] == ["Canary is waiting for approval."]
    assert world.target_up is False

    gate["open"] = True
    world.tick()
    assert world.phase() is Phase.PROGRESSING
    assert world.target_up


def test_a_closed_confirm_promotion_gate_holds_at_max_weight_while_analysis_goes_on() -> None:
    world = World(make_spec(stepWeight=50, webhooks=hooks("confirm-promotion")))
    world.initialise()
    gate = {"open": False}
    world.checks = lambda check, w: CheckResult(passed=gate["open"] if check is Check.CONFIRM_PROMOTION else
                                                check is not Check.ROLLBACK)
    world.release("rev-2")
    world.run_until(lambda w: w.phase() is Phase.WAITING_PROMOTION)
    asked_before = world.asked.count(Check.ANALYSIS)
    world.tick()
    world.tick()
    assert world.phase() is Phase.WAITING_PROMOTION
    assert world.asked.count(Check.ANALYSIS) == asked_before + 2
    assert world.primary_revision == "rev-1"

    gate["open"] = True
    world.run_until(lambda w: w.phase() is Phase.SUCCEEDED)
    assert world.primary_revision == "rev-2"


def test_a_closed_traffic_increase_gate_holds_the_weight() -> None:
    world = World(make_spec(stepWeight=20, webhooks=hooks("confirm-traffic-increase")))
    world.initialise()
    world.checks = lambda check, w: CheckResult(passed=check not in (Check.CONFIRM_TRAFFIC_INCREASE,
                                                                      Check.ROLLBACK))
    world.release("rev-2")
    for _ in range(4):
        world.tick()
    assert world.routes == []
    assert world.phase() is Phase.PROGRESSING
    assert world.status.failed_checks == 0


def test_a_rollback_webhook_rolls_back_at_once() -> None:
    world = World(make_spec(webhooks=hooks("rollback")))
    world.initialise()
    world.release("rev-2")
    world.tick()
    world.tick()
    world.checks = lambda check, w: CheckResult(passed=True)
    world.tick()
    assert world.phase() is Phase.FAILED
    assert world.weights == (100, 0)
    assert world.alerts[-1].message == "Rolling back: manual webhook invoked"


def test_a_failing_pre_rollout_hook_counts_as_a_failed_check() -> None:
    world = World(make_spec(threshold=2, webhooks=hooks("pre-rollout")))
    world.initialise()
    world.checks = lambda check, w: CheckResult(passed=check not in (Check.PRE_ROLLOUT, Check.ROLLBACK),
                                               message="HTTP 500")
    world.release("rev-2")
    world.run_until(lambda w: w.phase() is Phase.FAILED)
    assert world.routes == [(100, 0)]
    assert Check.ANALYSIS not in world.asked
    assert any("pre-rollout check failed: HTTP 500" in e.message for e in world.events)


def test_a_canary_that_never_becomes_ready_fails_at_the_progress_deadline() -> None:
    world = World(make_spec())
    world.initialise()
    world.release("rev-2")
    world.tick()
    world.canary = Readiness(ready=False, message="0 of 2 updated replicas are available")
    assert world.tick().summary == "waiting for the canary: 0 of 2 updated replicas are available"
    world.canary = Readiness(ready=False, message="deployment exceeded its progress deadline", stuck=True)
    world.tick()
    assert world.phase() is Phase.FAILED
    assert world.alerts[-1].message.startswith("Progress deadline exceeded")
    assert not world.target_up


def test_a_restarted_run_whose_new_pods_never_become_ready_fails_at_the_canary_deadline() -> None:
    # Old pods stay available, so the Deployment looks healthy and never reports a deadline of its own.
    spec = make_spec(stepWeight=10).model_copy(update={"progress_deadline_seconds": 30})
    world = World(spec)
    world.initialise()
    world.release("rev-2")
    world.run_until(lambda w: w.weights == (80, 20))
    world.release("rev-3")
    world.tick()
    world.canary = Readiness(ready=False, message="1 of 2 updated replicas available")

    summaries = [world.tick().summary for _ in range(30)]
    assert set(summaries) == {"waiting for the canary: 1 of 2 updated replicas available"}, "waits the deadline"
    world.tick()
    assert world.phase() is Phase.FAILED
    assert world.alerts[-1].message == ("Progress deadline exceeded: canary not ready: 1 of 2 updated replicas "
                                        "available")
    assert world.weights == (100, 0)


def test_a_new_revision_during_analysis_restarts_it() -> None:
    world = World(make_spec(stepWeight=10))
    world.initialise()
    world.release("rev-2")
    for _ in range(3):
        world.tick()
    assert world.weights == (80, 20)
    world.release("rev-3")
    act = world.tick()
    assert act.summary == "revision changed during analysis: restarting"
    assert world.weights == (100, 0)
    assert world.status.last_applied_spec == "rev-3"
    assert world.phase() is Phase.PROGRESSING
    world.run_until(lambda w: w.phase() is Phase.SUCCEEDED)
    assert world.primary_revision == "rev-3"


def test_skip_analysis_promotes_at_once() -> None:
    spec = make_spec().model_copy(update={"skip_analysis": True})
    world = World(spec)
    world.initialise()
    world.release("rev-2")
    world.tick()
    act = world.tick()
    assert any(isinstance(e, Promote) for e in act.effects)
    assert PostRolloutHooks(Phase.SUCCEEDED) in act.effects
    assert ScaleTarget(up=False) in act.effects
    assert world.phase() is Phase.SUCCEEDED
    assert Check.ANALYSIS not in world.asked


def test_a_primary_that_breaks_during_promotion_fails_the_canary_and_keeps_traffic_on_it() -> None:
    world = World(make_spec(stepWeight=50))
    world.initialise()
    world.release("rev-2")
    world.run_until(lambda w: w.phase() is Phase.PROMOTING)
    world.primary = Readiness(ready=False, message="exceeded its progress deadline", stuck=True)
    world.tick()
    assert world.phase() is Phase.FAILED
    assert world.weights == (0, 100)


def test_a_promote_request_skips_the_remaining_analysis_once() -> None:
    world = World(make_spec(stepWeight=10))
    world.initialise()
    world.release("rev-2")
    world.tick()
    world.tick()
    world.request = "promote/1"
    assert world.tick().summary == "promotion requested: skipping the remaining analysis"
    world.run_until(lambda w: w.phase() is Phase.SUCCEEDED)
    assert world.primary_revision == "rev-2"
    assert world.status.handled_request == "promote/1"
    world.release("rev-3")
    world.tick()
    assert world.phase() is Phase.PROGRESSING, "an old request does not promote the next revision"


def test_an_abort_request_rolls_back_and_a_retry_request_runs_the_failed_revision_again() -> None:
    world = World(make_spec(stepWeight=10))
    world.initialise()
    world.release("rev-2")
    world.tick()
    world.tick()
    world.request = "abort/1"
    world.tick()
    assert world.phase() is Phase.FAILED
    assert world.weights == (100, 0)
    assert world.tick().effects == ()

    world.request = "retry/2"
    assert world.tick().summary == "retry requested: starting analysis again"
    world.run_until(lambda w: w.phase() is Phase.SUCCEEDED)
    assert world.primary_revision == "rev-2"


def test_a_request_that_does_not_apply_is_recorded_as_ignored() -> None:
    world = World(make_spec())
    world.initialise()
    world.request = "abort/1"
    act = world.tick()
    assert act.summary == ("abort refused: the canary is Initialized; abort works while Progressing, Waiting or "
                           "WaitingPromotion")
    assert world.status.handled_request == "abort/1"
    assert world.status.request_refused == act.summary
    assert world.tick().effects == ()


@pytest.mark.parametrize(
    ("step_weights", "weight", "expected"),
    [([1, 5, 20], 0, 1), ([1, 5, 20], 1, 4), ([1, 5, 20], 5, 15), ([1, 5, 20], 20, 80), ([10, 100], 100, 1),
     ([30, 50], 40, 60)],
)
def test_next_step_weight_matches_flagger(step_weights: list[int], weight: int, expected: int) -> None:
    analysis = CanaryAnalysis.model_validate({"stepWeights": step_weights})
    assert next_step_weight(analysis, weight) == expected


def test_alerts_come_after_the_status_write_in_every_action() -> None:
    def check(world: World) -> None:
        effects = list(world.last.effects) if world.last else []
        alerts = [i for i, e in enumerate(effects) if isinstance(e, Alert)]
        writes = [i for i, e in enumerate(effects) if isinstance(e, SetStatus)]
        if alerts and writes:
            assert min(alerts) > max(writes), [type(e).__name__ for e in effects]

    def failing(check: Check) -> Callable[[Check, World], CheckResult]:
        return lambda asked, _world: CheckResult(passed=asked not in (check, Check.ROLLBACK))

    for spec, failed in ((make_spec(stepWeight=50), None), (make_spec(threshold=1), Check.ANALYSIS),
                         (make_spec(webhooks=hooks("confirm-rollout")), Check.CONFIRM_ROLLOUT)):
        world = World(spec)
        if failed is not None:
            world.checks = failing(failed)
        for _ in range(12):
            world.tick()
            check(world)
            if world.phase() is Phase.INITIALIZED and world.revision == "rev-1":
                world.release("rev-2")


def _holding(check: Check, world: World) -> CheckResult:
    if check is Check.ANALYSIS:
        return CheckResult(passed=False, hold=True, message="request-success-rate: no values found")
    return CheckResult(passed=check is not Check.ROLLBACK)


def test_a_paused_metric_holds_the_weight_without_counting_and_resumes_when_data_comes() -> None:
    world = World(make_spec(stepWeight=10))
    world.initialise()
    world.release("rev-2")
    world.tick()
    world.tick()
    assert world.weights == (90, 10)
    world.checks = _holding
    for _ in range(5):
        assert world.tick().summary == "holding: request-success-rate: no values found"
    assert world.weights == (90, 10)
    assert world.status.failed_checks == 0
    assert world.status.no_data_since is not None

    world.checks = lambda check, w: CheckResult(passed=check is not Check.ROLLBACK)
    world.tick()
    assert world.weights == (80, 20)
    assert world.status.no_data_since is None


def test_a_hold_that_outlasts_the_progress_deadline_rolls_back() -> None:
    spec = make_spec(stepWeight=10).model_copy(update={"progress_deadline_seconds": 3})
    world = World(spec)
    world.initialise()
    world.release("rev-2")
    world.tick()
    world.tick()
    world.checks = _holding
    world.run_until(lambda w: w.phase() is Phase.FAILED, limit=10)
    assert world.alerts[-1].message.startswith("Progress deadline exceeded: no data for 3s")
    assert world.weights == (100, 0)


def test_mirroring_runs_one_analysed_step_on_copies_of_the_requests_before_the_canary_answers_any() -> None:
    world = World(make_spec(stepWeight=25, maxWeight=50, mirror=True,
                            webhooks=hooks("pre-rollout", "confirm-traffic-increase")))
    world.initialise()
    world.release("rev-2")
    world.run_until(lambda w: w.phase() is Phase.SUCCEEDED)
    assert world.routes == [(100, 0), (75, 25), (50, 50), (100, 0)]
    assert world.mirrors == [True, False, False, False]
    assert world.asked[:3] == [Check.PRE_ROLLOUT, Check.CONFIRM_TRAFFIC_INCREASE, Check.ANALYSIS], \
        "the mirrored step is analysed"
    assert world.asked.count(Check.CONFIRM_TRAFFIC_INCREASE) == 2, \
        "the mirror step is gated, leaving it is not (as in Flagger)"
    assert any(e.message == "Start traffic mirroring to podinfo" for e in world.events)


def test_a_failing_mirrored_canary_is_rolled_back_before_it_answers_a_request() -> None:
    world = World(make_spec(stepWeight=25, mirror=True), checks=lambda check, w: CheckResult(passed=False))
    world.initialise()
    world.release("rev-2")
    world.run_until(lambda w: w.phase() is Phase.FAILED)
    assert world.routes == [(100, 0), (100, 0)]
    assert world.mirrors == [True, False]


def test_blue_green_mirroring_copies_requests_through_every_iteration_then_switches() -> None:
    world = World(make_spec(iterations=3, mirror=True))
    world.initialise()
    world.release("rev-2")
    world.run_until(lambda w: w.phase() is Phase.SUCCEEDED)
    assert world.routes == [(100, 0), (0, 100), (100, 0)]
    assert world.mirrors == [True, False, False]
    assert world.status.iterations == 0
    assert any(e.message == "Stop traffic mirroring and route all traffic to canary podinfo" for e in world.events)


@pytest.mark.parametrize(("hook", "check", "phase"), [("confirm-rollout", Check.CONFIRM_ROLLOUT, Phase.WAITING),
                                                      ("confirm-promotion", Check.CONFIRM_PROMOTION,
                                                       Phase.WAITING_PROMOTION)])
def test_a_closed_gate_whose_hook_has_mute_alert_waits_without_an_alert(hook: str, check: Check,
                                                                         phase: Phase) -> None:
    world = World(make_spec(stepWeight=50, webhooks=hooks(hook)))
    world.initialise()
    alerts_before = len(world.alerts)
    world.checks = lambda asked, w: CheckResult(passed=False, muted=True) if asked is check else \
        CheckResult(passed=asked is not Check.ROLLBACK)
    world.release("rev-2")
    world.run_until(lambda w: w.phase() is phase)
    assert [a.message for a in world.alerts[alerts_before:]
            if "waiting" in a.message] == [], "muteAlert: true silences the waiting alert (Flagger's)"
    assert any("waiting" in e.message for e in world.events), "the Event is still recorded"
