"""A pure stand-in for the cluster that carries out decide()'s effects, so whole releases can be
played tick by tick without I/O. Only for unit tests of the decision logic."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from canary.engine.decide import Act, Check, CheckResult, Observed, resolve
from canary.engine.effects import Alert, Effect, Event, Promote, ScaleTarget, SetRoutes, SetStatus
from canary.engine.status import apply_status
from canary.models.canary import CanarySpec, CanaryStatus, Phase
from canary.workloads.readiness import Readiness

Checks = Callable[[Check, "World"], CheckResult]


def all_pass(check: Check, world: World) -> CheckResult:
    return CheckResult(passed=check is not Check.ROLLBACK)


@dataclass
class World:
    spec: CanarySpec
    revision: str = "rev-1"
    status: CanaryStatus = field(default_factory=CanaryStatus)
    primary_revision: str | None = None
    primary: Readiness = field(default_factory=lambda: Readiness(ready=True))
    canary: Readiness = field(default_factory=lambda: Readiness(ready=True))
    weights: tuple[int, int] = (100, 0)
    mirrored: bool = False
    router_has_weights: bool = True
    router_has_match: bool = True
    request: str | None = None
    target_up: bool = True
    checks: Checks = all_pass
    now: datetime = field(default_factory=lambda: datetime(2026, 1, 1, tzinfo=UTC))
    routes: list[tuple[int, int]] = field(default_factory=list)
    mirrors: list[bool] = field(default_factory=list)
    """Whether each route change in ``routes`` mirrored requests to the canary."""
    events: list[Event] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)
    asked: list[Check] = field(default_factory=list)
    last: Act | None = None

    def phase(self) -> Phase | None:
        """The current phase (a call, so type checkers don't pin it across ticks)."""
        return self.status.phase

    def observe(self) -> Observed:
        return Observed(revision=self.revision, primary_revision=self.primary_revision, primary=self.primary,
                        canary=self.canary, primary_weight=self.weights[0], canary_weight=self.weights[1],
                        mirrored=self.mirrored, router_has_weights=self.router_has_weights,
                        router_has_match=self.router_has_match,
                        request=self.request, now=self.now)

    def run_check(self, check: Check) -> CheckResult:
        self.asked.append(check)
        return self.checks(check, self)

    def tick(self) -> Act:
        decision = resolve(self.spec, self.status, self.observe(), self.run_check)
        for effect in decision.effects:
            self.apply(effect)
        self.now += timedelta(seconds=1)
        self.last = decision
        return decision

    def apply(self, effect: Effect) -> None:
        match effect:
            case SetRoutes(primary=primary, canary=canary, mirror=mirror):
                self.weights = (primary, canary)
                self.mirrored = mirror
                self.routes.append(self.weights)
                self.mirrors.append(mirror)
            case ScaleTarget(up=up):
                self.target_up = up
            case Promote():
                self.primary_revision = self.revision
            case SetStatus():
                self.status = apply_status(self.status, effect, tracked_configs=None,
                                           target_kind=self.spec.target_ref.kind, now=self.now)
            case Event():
                self.events.append(effect)
            case Alert():
                self.alerts.append(effect)

    def run_until(self, done: Callable[[World], bool], *, limit: int = 50) -> list[Phase | None]:
        """Tick until ``done``; returns the phase after every tick."""
        phases = []
        for _ in range(limit):
            self.tick()
            phases.append(self.status.phase)
            if done(self):
                return phases
        raise AssertionError(f"not done after {limit} ticks; phases {phases}, routes {self.routes}")

    def initialise(self) -> None:
        self.run_until(lambda w: w.status.phase is Phase.INITIALIZED)
        self.primary_revision = self.revision
        self.routes.clear()
        self.mirrors.clear()
        self.events.clear()
        self.alerts.clear()
        self.asked.clear()

    def release(self, revision: str) -> None:
        self.revision = revision
