"""The decision of one tick, as a pure function: (spec, status, observations) -> what to do.

Alerts always come last in an action: the status write before them is the commit point, so a
controller that dies in between does not repeat the transition, nor its alert, when it restarts.

The order of checks is Flagger's (pkg/controller/scheduler.go, ``advanceCanary``): initialise,
decide whether to advance, primary readiness, confirm-rollout and start, restart on a new
revision, canary readiness and the progress deadline, skipAnalysis, rollback hooks, promotion
traffic shift, finalise, the failed-checks threshold, pre-rollout hooks or analysis, then the
strategy's step.

Webhooks and metric checks are I/O and are only run when the decision reaches them, so
``decide`` does not call them: it returns ``Need(check)``, and ``resolve`` (used by the
reconciler and by the tests' release player alike) runs the check and decides again with the
result added, until the answer is ``Act(effects)``. Each call of ``decide`` is pure.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum

from canary.engine.effects import (
    Alert,
    Effect,
    Event,
    PostRolloutHooks,
    Promote,
    ScaleTarget,
    SetRoutes,
    SetStatus,
)
from canary.models.canary import (
    TOTAL_WEIGHT,
    CanaryAnalysis,
    CanarySpec,
    CanaryStatus,
    HookType,
    MetricResult,
    Phase,
    Severity,
    Strategy,
)
from canary.workloads.readiness import Readiness

RUNNING = (Phase.PROGRESSING, Phase.WAITING, Phase.WAITING_PROMOTION, Phase.PROMOTING, Phase.FINALISING)
ANALYSING = (Phase.PROGRESSING, Phase.WAITING_PROMOTION)
BLUE_GREEN_ITERATIONS_WITHOUT_WEIGHTS = 10


REQUEST_ANNOTATION = "canary.dev/request"


class Request(StrEnum):
    """Manual requests, written by ``canary promote|abort|retry`` as ``<action>/<id>``."""

    PROMOTE = "promote"
    ABORT = "abort"
    RETRY = "retry"


_WHEN_ALLOWED: dict[str, str] = {
    Request.PROMOTE: "works while Progressing, Waiting or WaitingPromotion",
    Request.ABORT: "works while Progressing, Waiting or WaitingPromotion",
    Request.RETRY: "works only when Failed",
}
"""What a refused request says about when it works."""


class Check(StrEnum):
    """The I/O a decision may need: webhook gates and the analysis."""

    CONFIRM_ROLLOUT = "confirm-rollout"
    ROLLBACK = "rollback"
    PRE_ROLLOUT = "pre-rollout"
    ANALYSIS = "analysis"
    CONFIRM_TRAFFIC_INCREASE = "confirm-traffic-increase"
    CONFIRM_PROMOTION = "confirm-promotion"


@dataclass(frozen=True)
class CheckResult:
    """The answer to a check: a gate open (or a rollback requested), or checks passed.

    ``hold`` means the analysis could not judge (a metric with noData: pause had no data): the
    canary keeps its weight and counts nothing, until the progress deadline. ``muted``: the hook
    that holds a gate has muteAlert, so waiting at it raises no alert (the Event stays). ``hook``
    names the webhook that refused, for the timeline's note.
    """

    passed: bool
    message: str = ""
    metrics: tuple[MetricResult, ...] = ()
    hold: bool = False
    muted: bool = False
    hook: str = ""
    """The webhook that answered no, when one did."""


@dataclass(frozen=True)
class Observed:
    """What the reconciler saw this tick (from caches and the router).

    ``primary_revision`` is the revision the primary was made from, when it says (None before
    there is a primary, or for one made by an older controller).
    """

    revision: str
    primary: Readiness
    canary: Readiness
    primary_weight: int
    canary_weight: int
    mirrored: bool = False
    router_has_weights: bool = True
    router_has_match: bool = True
    request: str | None = None
    now: datetime | None = None
    primary_revision: str | None = None
    checks: Mapping[Check, CheckResult] = field(default_factory=dict)


@dataclass(frozen=True)
class Need:
    """Run ``check`` and decide again with its result in ``Observed.checks``."""

    check: Check


@dataclass(frozen=True)
class Act:
    """Carry out ``effects`` in order; ``summary`` says why, for the log.

    ``hold`` marks a hold for missing data (the weight is kept, nothing counted); any other
    decision ends a hold that was under way.
    """

    effects: tuple[Effect, ...]
    summary: str
    hold: bool = False

    def with_status(self, change: SetStatus) -> Act:
        """This act with ``change`` merged into its first status write, or added as one."""
        effects = list(self.effects)
        for index, effect in enumerate(effects):
            if isinstance(effect, SetStatus):
                updates = {k: v for k, v in change.__dict__.items()
                           if v is not None and v is not False and v != ()}
                effects[index] = replace(effect, **updates)
                break
        else:
            effects.append(change)
        return replace(self, effects=tuple(effects))


Decision = Need | Act
MAX_CHECKS = len(Check)


def _act(summary: str, *effects: Effect) -> Act:
    return Act(effects=effects, summary=summary)


def _refused(result: CheckResult) -> str | None:
    """The timeline's note for a webhook that said no."""
    return f"webhook {result.hook} refused" if result.hook else None


def _unless(muted: bool, alert: Alert) -> tuple[Alert, ...]:
    """The alert, or none when the hook holding the gate has muteAlert."""
    return () if muted else (alert,)


def decide(spec: CanarySpec, status: CanaryStatus, seen: Observed) -> Decision:
    """The next step of the canary described by ``spec`` and ``status``."""
    return _Tick(spec, status, seen).run()


def resolve(spec: CanarySpec, status: CanaryStatus, seen: Observed, run: Callable[[Check], CheckResult]) -> Act:
    """Decide, running each check that ``decide`` asks for (once) until it acts."""
    for _ in range(MAX_CHECKS + 1):
        decision = decide(spec, status, seen)
        if isinstance(decision, Act):
            return decision
        if decision.check in seen.checks:
            raise AssertionError(f"decide asked twice for {decision.check}")
        seen = replace(seen, checks={**seen.checks, decision.check: run(decision.check)})
    raise AssertionError(f"decide asked for more than {MAX_CHECKS} checks")


def next_step_weight(analysis: CanaryAnalysis, canary_weight: int) -> int:
    """How much weight the next step adds (Flagger's ``nextStepWeight``)."""
    if analysis.step_weight is not None or not analysis.step_weights:
        return analysis.step_weight or 0
    steps = analysis.step_weights
    room = TOTAL_WEIGHT - canary_weight
    if room == 0:
        return 1
    if canary_weight == 0:
        return min(room, steps[0])
    for current, following in itertools.pairwise(steps):
        if current == canary_weight:
            return min(room, following - canary_weight)
    return room


class _Tick:
    """One decision; methods return a Decision, or None to go on to the next check."""

    def __init__(self, spec: CanarySpec, status: CanaryStatus, seen: Observed) -> None:
        self.spec = spec
        self.analysis = spec.analysis
        self.status = status
        self.seen = seen
        self.phase = status.phase
        self.target = f"{spec.target_ref.kind} {spec.target_ref.name}"

    # -- helpers -------------------------------------------------------------------------------

    def _has_hooks(self, kind: HookType) -> bool:
        return bool(self.analysis.hooks(kind))

    def _new_revision(self) -> bool:
        """A revision neither applied nor promoted before (Flagger's hasSpecChanged)."""
        revision = self.seen.revision
        if self.status.last_applied_spec is None:
            return True
        return revision not in (self.status.last_applied_spec, self.status.last_promoted_spec)

    def _rollback(self, reason: str, *, alert: str | None = None, request: str | None = None) -> Act:
        effects: list[Effect] = [
            SetRoutes(primary=TOTAL_WEIGHT, canary=0),
            ScaleTarget(up=False),
            SetStatus(phase=Phase.FAILED, canary_weight=0, iterations=0, applied=self.seen.revision,
                      handled_request=request, note=f"rollback: {reason}"),
            Event("Failed", f"Canary failed! Scaling down {self.target}: {reason}", warning=True),
            PostRolloutHooks(Phase.FAILED),
        ]
        if alert is not None:
            effects.append(Alert(Severity.ERROR, alert, details=self.status.failing_checks()))
        return _act(f"rollback: {reason}", *effects)

    def _strategy(self) -> tuple[Strategy, int]:
        """The strategy and iterations the router allows (Flagger's kubernetes-provider rules)."""
        strategy, iterations = self.analysis.strategy, self.analysis.iterations or 0
        if not self.seen.router_has_weights and strategy is Strategy.CANARY:
            return Strategy.BLUE_GREEN, BLUE_GREEN_ITERATIONS_WITHOUT_WEIGHTS
        if not self.seen.router_has_match and strategy is Strategy.AB_TESTING:
            return Strategy.BLUE_GREEN, iterations
        return strategy, iterations

    # -- the tick ------------------------------------------------------------------------------

    def run(self) -> Decision:
        steps = (self._initialise, self._manual, self._reverted, self._idle, self._primary_ready, self._start,
                 self._restart, self._canary_ready, self._skip_analysis, self._rollback_hooks, self._promotion_shift,
                 self._finalise, self._threshold, self._checks, self._advance)
        for step in steps:
            decision = step()
            if decision is not None:
                return self._mirrored(self._end_hold(decision))
        return self._end_hold(_act("nothing to do"))

    def _mirrored(self, decision: Decision) -> Decision:
        """The decision's status writes say whether requests are mirrored after it, for the timeline."""
        if isinstance(decision, Need):
            return decision
        routes = next((e for e in decision.effects if isinstance(e, SetRoutes)), None)
        if not (routes.mirror if routes is not None else self.seen.mirrored):
            return decision
        return replace(decision, effects=tuple(replace(e, mirror=True) if isinstance(e, SetStatus) else e
                                               for e in decision.effects))

    def _end_hold(self, decision: Decision) -> Decision:
        """A decision that is not a hold for missing data ends one that was under way."""
        if isinstance(decision, Need) or self.status.no_data_since is None or decision.hold:
            return decision
        return decision.with_status(SetStatus(clear_no_data_since=True))

    def _initialise(self) -> Decision | None:
        if self.phase not in (None, Phase.INITIALIZING):
            return None
        if not self.seen.primary.ready:
            if self.seen.primary.stuck:
                return self._rollback(f"primary not ready: {self.seen.primary.message}",
                                      alert=f"Progress deadline exceeded: {self.seen.primary.message}")
            starting = () if self.phase is Phase.INITIALIZING else (SetStatus(phase=Phase.INITIALIZING),)
            return _act(f"waiting for the primary: {self.seen.primary.message}", *starting)
        # The primary runs the revision it was made from; a target changed since is a release to run.
        running = self.seen.primary_revision or self.seen.revision
        return _act(
            "initialised",
            ScaleTarget(up=False),
            SetStatus(phase=Phase.INITIALIZED, canary_weight=0, failed_checks=0, iterations=0,
                      applied=running, promoted=running),
            Event("Synced", f"Initialization done! {self.spec.target_ref.name}"),
            Alert(Severity.INFO, f"New {self.spec.target_ref.kind} detected, initialization completed."),
        )

    def _manual(self) -> Decision | None:
        request = self.seen.request
        if not request or request == self.status.handled_request:
            return None
        action = request.split("/", 1)[0]
        waiting_or_running = self.phase in (Phase.PROGRESSING, Phase.WAITING, Phase.WAITING_PROMOTION)
        if action == Request.ABORT and waiting_or_running:
            return self._rollback("aborted on request", alert="Canary aborted on request", request=request)
        if action == Request.PROMOTE and waiting_or_running:
            return _act(
                "promotion requested: skipping the remaining analysis",
                Promote(),
                SetStatus(phase=Phase.PROMOTING, applied=self.seen.revision, handled_request=request,
                          note="promotion requested"),
                Event("Synced", f"Promotion requested! Copying {self.spec.target_ref.name} template spec to "
                      f"{self.spec.primary_name}"),
            )
        if action == Request.RETRY and self.phase is Phase.FAILED:
            return _act(
                "retry requested: starting analysis again",
                ScaleTarget(up=True),
                SetStatus(phase=Phase.PROGRESSING, canary_weight=0, failed_checks=0, iterations=0,
                          applied=self.seen.revision, analysis=(), handled_request=request,
                          run=self.seen.revision, note="retry requested"),
                Event("Synced", f"Retry requested! Scaling up {self.target}"),
                Alert(Severity.INFO, "Retrying the failed revision on request."),
            )
        refused = f"{action} refused: the canary is {self.phase}; {action} {_WHEN_ALLOWED.get(action, 'is unknown')}"
        return _act(refused, SetStatus(handled_request=request, request_refused=refused),
                    Event("Ignored", f"Request {refused}", warning=True))

    def _reverted(self) -> Decision | None:
        """The target went back to the revision the primary runs (a revert in Git, or by hand): there
        is nothing to release. After a rollback it is recorded as applied, so the cluster and Git
        agree; a run under way (started, say, by the first half of a revert applied in two writes)
        is stopped rather than analysing the primary's own revision as a canary."""
        promoted = self.status.last_promoted_spec
        if promoted in (None, self.status.last_applied_spec) or self.seen.revision != promoted:
            return None
        if self.phase is Phase.FAILED:
            return _act(
                "target back at the promoted revision",
                SetStatus(applied=self.seen.revision),
                Event("Synced", f"{self.target} is back at the promoted revision {promoted}: nothing to release"),
            )
        if self.phase not in (Phase.PROGRESSING, Phase.WAITING, Phase.WAITING_PROMOTION):
            return None
        return _act(
            "target back at the promoted revision: run stopped",
            SetRoutes(primary=TOTAL_WEIGHT, canary=0),
            ScaleTarget(up=False),
            SetStatus(phase=Phase.INITIALIZED, canary_weight=0, failed_checks=0, iterations=0,
                      applied=self.seen.revision, analysis=(),
                      note="run stopped: target back at the promoted revision"),
            Event("Synced", f"{self.target} is back at the promoted revision {promoted}: run stopped, "
                  "nothing to release"),
            Alert(Severity.INFO, f"{self.target} went back to the promoted revision; the run was stopped."),
        )

    def _idle(self) -> Decision | None:
        if self.phase in RUNNING or self._new_revision():
            return None
        return _act("idle")

    def _primary_ready(self) -> Decision | None:
        if self.spec.skip_analysis or self.seen.primary.ready:
            return None
        if self.seen.primary.stuck:
            if self.phase in (Phase.PROMOTING, Phase.FINALISING):
                message = f"Promotion failed, primary not ready: {self.seen.primary.message}"
                return _act(
                    "promotion failed",
                    SetRoutes(primary=0, canary=TOTAL_WEIGHT),
                    SetStatus(phase=Phase.FAILED, canary_weight=TOTAL_WEIGHT, note=message),
                    Event("Failed", message, warning=True),
                    PostRolloutHooks(Phase.FAILED),
                    Alert(Severity.ERROR, message),
                )
            return self._rollback(f"primary not ready: {self.seen.primary.message}")
        return _act(f"waiting for the primary: {self.seen.primary.message}")

    def _start(self) -> Decision | None:
        if self.phase in (Phase.PROGRESSING, Phase.WAITING_PROMOTION, Phase.PROMOTING, Phase.FINALISING):
            return None
        if self._has_hooks(HookType.CONFIRM_ROLLOUT):
            gate = self.seen.checks.get(Check.CONFIRM_ROLLOUT)
            if gate is None:
                return Need(Check.CONFIRM_ROLLOUT)
            if not gate.passed:
                if self.phase is Phase.WAITING:
                    return _act("waiting for rollout approval")
                return _act(
                    "waiting for rollout approval",
                    SetStatus(phase=Phase.WAITING, run=self.seen.revision, note=_refused(gate)),
                    Event("Waiting", f"Halt advancement waiting for approval: {gate.message}", warning=True),
                    *_unless(gate.muted, Alert(Severity.WARN, "Canary is waiting for approval.")),
                )
        return _act(
            "new revision: starting analysis",
            ScaleTarget(up=True),
            SetStatus(phase=Phase.PROGRESSING, canary_weight=0, failed_checks=0, iterations=0,
                      applied=self.seen.revision, analysis=(), run=self.seen.revision),
            Event("Synced", f"New revision detected! Scaling up {self.target}"),
            Alert(Severity.INFO, "New revision detected, progressing canary analysis."),
        )

    def _restart(self) -> Decision | None:
        if self.phase not in ANALYSING or self.seen.revision == self.status.last_applied_spec:
            return None
        if not self._new_revision():
            return None
        return _act(
            "revision changed during analysis: restarting",
            SetRoutes(primary=TOTAL_WEIGHT, canary=0),
            SetStatus(phase=Phase.PROGRESSING, canary_weight=0, failed_checks=0, iterations=0,
                      applied=self.seen.revision, analysis=(), run=self.seen.revision,
                      note="restarted: new revision during the analysis"),
            Event("Synced", f"New revision detected! Restarting analysis for {self.target}"),
        )

    def _canary_ready(self) -> Decision | None:
        if self.seen.canary.ready or self.phase in (Phase.PROMOTING, Phase.FINALISING):
            return None
        if self.seen.canary.stuck or self._stalled():
            message = f"Progress deadline exceeded: canary not ready: {self.seen.canary.message}"
            return self._rollback(message, alert=message)
        return _act(f"waiting for the canary: {self.seen.canary.message}")

    def _stalled(self) -> bool:
        """The run made no progress (no status write) for progressDeadlineSeconds, and at least two
        intervals, while the canary is not ready. The Deployment's own deadline may be longer, and
        while old pods stay available (a new revision mid-run whose pods never become ready) the
        Deployment looks healthy: Flagger would wait for it."""
        since, now = self.status.last_transition_time, self.seen.now
        if since is None or now is None:
            return False
        limit = max(self.spec.progress_deadline_seconds, 2 * self.analysis.interval_seconds)
        return now - since > timedelta(seconds=limit)

    def _skip_analysis(self) -> Decision | None:
        if not self.spec.skip_analysis:
            return None
        return self._succeeded("analysis skipped: promoting",
                               f"Promotion completed! Canary analysis was skipped for {self.target}",
                               "Canary analysis was skipped, promotion finished.",
                               SetRoutes(primary=TOTAL_WEIGHT, canary=0), Promote())

    def _succeeded(self, summary: str, event: str, alert: str, *first: Effect) -> Act:
        """The end of a promotion: target down, status Succeeded, post-rollout hooks, tell people."""
        return _act(
            summary,
            *first,
            ScaleTarget(up=False),
            SetStatus(phase=Phase.SUCCEEDED, canary_weight=0, iterations=0, promoted=self.status.last_applied_spec),
            PostRolloutHooks(Phase.SUCCEEDED),
            Event("Synced", event),
            Alert(Severity.INFO, alert),
        )

    def _rollback_hooks(self) -> Decision | None:
        if self.phase not in (Phase.PROGRESSING, Phase.WAITING, Phase.WAITING_PROMOTION):
            return None
        if not self._has_hooks(HookType.ROLLBACK):
            return None
        requested = self.seen.checks.get(Check.ROLLBACK)
        if requested is None:
            return Need(Check.ROLLBACK)
        if not requested.passed:
            return None
        return self._rollback("rollback webhook invoked", alert="Rolling back: manual webhook invoked")

    def _promotion_shift(self) -> Decision | None:
        if self.phase is not Phase.PROMOTING:
            return None
        step = self.analysis.step_weight_promotion
        if not self.seen.router_has_weights:
            return _act("promoted: finalising", SetStatus(phase=Phase.FINALISING))
        if step is None:
            return _act(
                "promoted: routing all traffic to the primary",
                SetRoutes(primary=TOTAL_WEIGHT, canary=0),
                SetStatus(phase=Phase.FINALISING, canary_weight=0),
                Event("Synced", "Routing all traffic to primary"),
            )
        canary = max(0, self.seen.canary_weight - step)
        primary = min(TOTAL_WEIGHT, self.seen.primary_weight + step)
        if primary == TOTAL_WEIGHT:
            return _act("promoted: last traffic step", SetRoutes(primary=primary, canary=canary),
                        SetStatus(phase=Phase.FINALISING, canary_weight=0))
        return _act(f"promoting: primary weight {primary}", SetRoutes(primary=primary, canary=canary),
                    SetStatus(canary_weight=canary))

    def _finalise(self) -> Decision | None:
        if self.phase is not Phase.FINALISING:
            return None
        return self._succeeded("promotion finished", f"Promotion completed! Scaling down {self.target}",
                               "Canary analysis completed successfully, promotion finished.")

    def _threshold(self) -> Decision | None:
        if self.phase not in ANALYSING or self.status.failed_checks < self.analysis.threshold:
            return None
        failed = self.status.latest_failures()
        detail = "; ".join(f"{m.name}: {m.message}" for m in failed)
        reason = f"failed checks threshold reached {self.status.failed_checks}" + (f" ({detail})" if detail else "")
        return self._rollback(reason, alert=f"Failed checks threshold reached {self.status.failed_checks}"
                              + (f": {detail}" if detail else ""))

    def _checks(self) -> Decision | None:
        # Mirrored requests reach the canary at weight 0, so that step is analysed like any other.
        first_step = self.seen.canary_weight == 0 and self.status.iterations == 0 and not self._mirroring
        check = Check.PRE_ROLLOUT if first_step else Check.ANALYSIS
        if check is Check.PRE_ROLLOUT and not self._has_hooks(HookType.PRE_ROLLOUT):
            return None
        result = self.seen.checks.get(check)
        if result is None:
            return Need(check)
        if result.passed:
            return None
        if result.hold:
            return self._hold(result)
        failures = self.status.failed_checks + 1
        what = "pre-rollout check" if check is Check.PRE_ROLLOUT else "analysis"
        return _act(
            f"{what} failed ({failures} of {self.analysis.threshold})",
            SetStatus(failed_checks=failures, analysis=result.metrics or None, note=_refused(result)),
            Event("Synced", f"Halt advancement: {what} failed: {result.message}", warning=True),
        )

    def _hold(self, result: CheckResult) -> Act:
        """Keep the weight while a metric has no data; roll back when that outlasts the deadline."""
        now = self.seen.now
        since = self.status.no_data_since or now
        deadline = timedelta(seconds=self.spec.progress_deadline_seconds)
        if now is not None and since is not None and now - since > deadline:
            message = f"no data for {self.spec.progress_deadline_seconds}s: {result.message}"
            return self._rollback(message, alert=f"Progress deadline exceeded: {message}")
        start = since if self.status.no_data_since is None else None
        return Act(effects=(SetStatus(no_data_since=start, analysis=result.metrics or None,
                                      note="holding: no data"),),
                   summary=f"holding: {result.message}", hold=True)

    def _recorded(self) -> tuple[MetricResult, ...] | None:
        result = self.seen.checks.get(Check.ANALYSIS)
        return result.metrics if result is not None and result.metrics else None

    def _advance(self) -> Decision | None:
        strategy, iterations = self._strategy()
        if strategy is Strategy.CANARY:
            return self._weighted_step()
        return self._iteration_step(strategy, iterations)

    def _confirm_promotion(self, iterations: int) -> Decision | None:
        if not self._has_hooks(HookType.CONFIRM_PROMOTION):
            return None
        gate = self.seen.checks.get(Check.CONFIRM_PROMOTION)
        if gate is None:
            return Need(Check.CONFIRM_PROMOTION)
        if gate.passed:
            return None
        # While waiting the analysis goes on: the last iteration is repeated (Flagger's behaviour).
        hold = max(iterations - 1, 0)
        if self.phase is Phase.WAITING_PROMOTION:
            return _act("waiting for promotion approval", SetStatus(iterations=hold, analysis=self._recorded(),
                                                                    note=_refused(gate)))
        return _act(
            "waiting for promotion approval",
            SetStatus(phase=Phase.WAITING_PROMOTION, iterations=hold, analysis=self._recorded(), note=_refused(gate)),
            Event("Waiting", f"Halt advancement waiting for promotion approval: {gate.message}", warning=True),
            *_unless(gate.muted, Alert(Severity.WARN, "Canary promotion is waiting for approval.")),
        )

    def _promote(self) -> Act:
        return _act(
            "analysis passed: promoting",
            Promote(),
            SetStatus(phase=Phase.PROMOTING, analysis=self._recorded(), note="promotion"),
            Event("Synced", f"Copying {self.spec.target_ref.name} template spec to {self.spec.primary_name}"),
        )

    @property
    def _mirroring(self) -> bool:
        return self.analysis.mirror and self.seen.mirrored

    def _weighted_step(self) -> Decision | None:
        weight = self.seen.canary_weight
        step = next_step_weight(self.analysis, weight)
        if step <= 0:
            return None
        max_weight = self.analysis.effective_max_weight
        if weight < max_weight:
            if not self._mirroring and self.phase is not Phase.WAITING_PROMOTION \
                    and self._has_hooks(HookType.CONFIRM_TRAFFIC_INCREASE):
                gate = self.seen.checks.get(Check.CONFIRM_TRAFFIC_INCREASE)
                if gate is None:
                    return Need(Check.CONFIRM_TRAFFIC_INCREASE)
                if not gate.passed:
                    return _act("waiting for traffic increase approval",
                                SetStatus(analysis=self._recorded(), note=_refused(gate)))
            if self.analysis.mirror and weight == 0 and not self.seen.mirrored:
                # Flagger's mirror step: one interval with copies of the requests on the canary
                # before it answers any.
                return _act(
                    "mirroring traffic to the canary",
                    SetRoutes(primary=TOTAL_WEIGHT, canary=0, mirror=True),
                    SetStatus(canary_weight=0, analysis=self._recorded()),
                    Event("Synced", f"Start traffic mirroring to {self.spec.target_ref.name}"),
                )
            canary = min(TOTAL_WEIGHT, weight + step)
            primary = max(0, self.seen.primary_weight - step)
            return _act(
                f"advance canary weight {canary}",
                SetRoutes(primary=primary, canary=canary),
                SetStatus(canary_weight=canary, analysis=self._recorded()),
                Event("Synced", f"Advance {self.spec.target_ref.name} canary weight {canary}"),
            )
        return self._confirm_promotion(0) or self._promote()

    def _iteration_step(self, strategy: Strategy, iterations: int) -> Decision | None:
        done = self.status.iterations
        if done < iterations:
            effects: list[Effect] = []
            if strategy is Strategy.AB_TESTING:
                effects.append(SetRoutes(primary=0, canary=TOTAL_WEIGHT))
            elif self.analysis.mirror and not self.seen.mirrored and self.seen.router_has_weights:
                # Blue/green with mirroring: the canary gets copies of the requests through every iteration.
                effects.append(SetRoutes(primary=TOTAL_WEIGHT, canary=0, mirror=True))
            effects += [SetStatus(iterations=done + 1, analysis=self._recorded()),
                        Event("Synced", f"Advance {self.spec.target_ref.name} iteration {done + 1}/{iterations}")]
            return _act(f"iteration {done + 1} of {iterations}", *effects)
        waiting = self._confirm_promotion(iterations)
        if waiting is not None:
            return waiting
        if strategy is Strategy.BLUE_GREEN and done == iterations and self.seen.router_has_weights:
            # One more iteration with all traffic on the canary before promoting (only a router with
            # weights can send it there; without, the primary takes the canary's template at once).
            stop = "Stop traffic mirroring and route" if self.seen.mirrored else "Routing"
            return _act("blue/green: all traffic to the canary", SetRoutes(primary=0, canary=TOTAL_WEIGHT),
                        SetStatus(iterations=done + 1, analysis=self._recorded()),
                        Event("Synced", f"{stop} all traffic to canary {self.spec.target_ref.name}"))
        return self._promote()
