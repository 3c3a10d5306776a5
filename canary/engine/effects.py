"""What a tick can do, as data: ``decide`` returns these and the reconciler carries them out.

Effects are applied in order; a failing effect stops the rest, and the next tick decides anew
from what it then observes (the controller is level-based).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from canary.models.canary import MetricResult, PendingAlert, Phase, Severity
from canary.routers.affinity import Cookies


@dataclass(frozen=True)
class SetRoutes:
    """Send ``primary`` percent of traffic to the primary and ``canary`` percent to the canary;
    ``mirror`` also copies requests to the canary (spec.analysis.mirrorWeight percent of them, all
    by default), whose answers nobody sees."""

    primary: int
    canary: int
    mirror: bool = False


@dataclass(frozen=True)
class ScaleTarget:
    """Scale the target (the canary workload) up to its desired size, or down to zero."""

    up: bool


@dataclass(frozen=True)
class Promote:
    """Copy the target's pod template and tracked configs to the primary."""


@dataclass(frozen=True)
class SetStatus:
    """Change status fields; ``None`` leaves a field as it is.

    ``applied`` records a revision as the one applied (a run starts, or a failed revision is
    settled) and ``promoted`` one as the revision the primary runs; ``handled_request`` records
    a manual request (canary.dev/request) as handled, carried out unless ``request_refused`` says
    why not; ``no_data_since`` starts a hold for missing data, ``clear_no_data_since`` ends it;
    ``cookies`` are the session-affinity cookies the routes now use; ``alerts`` are recorded as
    pending (the reconciler turns the decision's ``Alert`` effects into these, and removes them once
    delivered).

    The run's timeline (status.timeline): ``run`` says a run of that revision starts with this
    write, so the timeline begins anew (a Waiting for the same revision before it is kept);
    ``note`` says why something happened, for that step of the timeline; ``mirror`` that requests
    are mirrored to the canary at this step.
    """

    phase: Phase | None = None
    canary_weight: int | None = None
    failed_checks: int | None = None
    iterations: int | None = None
    applied: str | None = None
    promoted: str | None = None
    analysis: tuple[MetricResult, ...] | None = None
    handled_request: str | None = None
    request_refused: str | None = None
    no_data_since: datetime | None = None
    clear_no_data_since: bool = False
    cookies: Cookies | None = None
    alerts: tuple[PendingAlert, ...] = ()
    run: str | None = None
    note: str | None = None
    mirror: bool | None = None


@dataclass(frozen=True)
class Event:
    """A Kubernetes Event on the Canary."""

    reason: str
    message: str
    warning: bool = False


@dataclass(frozen=True)
class Alert:
    """A message for the canary's alert providers; ``details`` are (metric, what it showed) pairs."""

    severity: Severity
    message: str
    details: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class PostRolloutHooks:
    """Call the post-rollout webhooks with the final phase."""

    phase: Phase


Effect = SetRoutes | ScaleTarget | Promote | SetStatus | Event | Alert | PostRolloutHooks
