"""Applying a ``SetStatus`` effect to a Canary's status: pure, so the reconciler can retry it.

On a write conflict the reconciler re-reads the Canary and applies the same change to the fresh
status; the Promoted condition and lastTransitionTime follow from the phase as in Flagger.

Every status write of a run also records a point of status.timeline when something changed
(the weight, the phase, the failed checks, the iterations, a metric step, a new note): the
data ``canary report`` and the dashboard draw. A run's timeline begins with the write that
starts the run (``SetStatus.run``) and is kept, closed, after the run ends until the next.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from canary.engine.decide import RUNNING
from canary.engine.effects import SetStatus
from canary.models.canary import (
    NOTE_LENGTH,
    TIMELINE_POINTS,
    Band,
    CanaryCondition,
    CanaryStatus,
    ConditionStatus,
    MetricResult,
    Phase,
    Timeline,
    TimelinePoint,
)

ANALYSIS_HISTORY = 10


def _promoted_condition(phase: Phase, target_kind: str) -> tuple[ConditionStatus, str]:
    table = {
        Phase.INITIALIZING: (ConditionStatus.UNKNOWN, f"New {target_kind} detected, starting initialization."),
        Phase.INITIALIZED: (ConditionStatus.TRUE, f"{target_kind} initialization completed."),
        Phase.WAITING: (ConditionStatus.UNKNOWN, "Waiting for approval."),
        Phase.WAITING_PROMOTION: (ConditionStatus.UNKNOWN, "Waiting for approval."),
        Phase.PROGRESSING: (ConditionStatus.UNKNOWN, "New revision detected, progressing canary analysis."),
        Phase.PROMOTING: (ConditionStatus.UNKNOWN, "Canary analysis completed, starting primary rolling update."),
        Phase.FINALISING: (ConditionStatus.UNKNOWN, "Canary analysis completed, routing all traffic to primary."),
        Phase.SUCCEEDED: (ConditionStatus.TRUE, "Canary analysis completed successfully, promotion finished."),
        Phase.FAILED: (ConditionStatus.FALSE, f"Canary analysis failed, {target_kind} scaled to zero."),
        Phase.TERMINATING: (ConditionStatus.UNKNOWN, "Canary is being deleted."),
        Phase.TERMINATED: (ConditionStatus.UNKNOWN, "Canary was deleted."),
    }
    return table[phase]


def apply_status(
    status: CanaryStatus,
    change: SetStatus,
    *,
    tracked_configs: dict[str, str] | None,
    target_kind: str,
    now: datetime,
) -> CanaryStatus:
    """The status after ``change`` at ``now``; ``tracked_configs`` go with an applied revision."""
    update: dict[str, Any] = {"last_transition_time": now}
    for name in ("phase", "canary_weight", "failed_checks", "iterations", "no_data_since"):
        value = getattr(change, name)
        if value is not None:
            update[name] = value
    if change.handled_request is not None:
        update["handled_request"] = change.handled_request
        update["request_refused"] = change.request_refused
    if change.clear_no_data_since:
        update["no_data_since"] = None
    if change.cookies is not None:
        update["session_affinity_cookie"] = change.cookies.canary
        update["primary_session_affinity_cookie"] = change.cookies.primary
        update["previous_session_affinity_cookie"] = change.cookies.previous
    if change.applied is not None:
        update["last_applied_spec"] = change.applied
        update["tracked_configs"] = tracked_configs
    if change.promoted is not None:
        update["last_promoted_spec"] = change.promoted
    if change.analysis is not None:
        history = [*(status.analysis or []), *change.analysis] if change.analysis else []
        update["analysis"] = history[-ANALYSIS_HISTORY * max(1, len(change.analysis)):]
    if change.alerts:
        update["pending_alerts"] = [*(status.pending_alerts or []), *change.alerts]
    if change.phase is not None:
        update["conditions"] = _conditions(status, change.phase, target_kind, now)
    after = status.model_copy(update=update)
    timeline = _timeline(status, after, change, now)
    return after if timeline is status.timeline else after.model_copy(update={"timeline": timeline})


def _timeline(before: CanaryStatus, after: CanaryStatus, change: SetStatus, now: datetime) -> Timeline | None:
    """The timeline after ``change``: begun anew when a run starts, with a point when something changed."""
    timeline = before.timeline
    resumed = before.phase is Phase.WAITING and timeline is not None and timeline.revision == change.run
    if change.run is not None and not resumed:
        timeline = Timeline(revision=change.run, started=_millisecond(now))
    if timeline is None or after.phase is None:
        return timeline
    last = timeline.points[-1] if timeline.points else None
    if last is not None and last.phase not in RUNNING:
        return timeline  # the run is over: its record stays as it ended
    note = change.note[:NOTE_LENGTH - 1] + "…" if change.note and len(change.note) > NOTE_LENGTH else change.note
    moved = (after.phase, after.canary_weight, after.failed_checks, after.iterations) != \
        (before.phase, before.canary_weight, before.failed_checks, before.iterations) or \
        (last is not None and bool(change.mirror) != bool(last.mirror))
    if last is not None and not moved and not change.analysis and (note is None or note == last.note):
        return timeline
    point = TimelinePoint(time=_millisecond(now), phase=after.phase, canary_weight=after.canary_weight,
                          failed_checks=after.failed_checks, mirror=True if change.mirror else None,
                          metrics={m.name: _compact(m.value) for m in change.analysis} if change.analysis else None,
                          note=note)
    points = [*timeline.points, point]
    if len(points) > TIMELINE_POINTS:
        points = [points[0], *points[-(TIMELINE_POINTS - 1):]]
    return timeline.model_copy(update={"points": points,
                                       "thresholds": _thresholds(timeline.thresholds, change.analysis or ())})


def _thresholds(known: dict[str, Band] | None,
                results: tuple[MetricResult, ...]) -> dict[str, Band] | None:
    """Each metric's range as the analysis judged it (a built-in metric's comes from its threshold)."""
    found = dict(known or {})
    for result in results:
        if result.min is not None or result.max is not None:
            found[result.name] = Band(min=result.min, max=result.max)
    return found or None


def _compact(value: float | None) -> float | None:
    """Six significant digits: the picture needs no more, and every watch cache holds the timeline."""
    return None if value is None else float(f"{value:.6g}")


def _millisecond(moment: datetime) -> datetime:
    """Precise enough to set a step beside its Prometheus series, and a few bytes shorter."""
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def _conditions(status: CanaryStatus, phase: Phase, target_kind: str, now: datetime) -> list[CanaryCondition]:
    state, message = _promoted_condition(phase, target_kind)
    current = next((c for c in status.conditions or [] if c.type == "Promoted"), None)
    if current is not None and current.status == state and current.reason == phase.value:
        return list(status.conditions or [])
    since = current.last_transition_time if current is not None and current.status == state else now
    others = [c for c in status.conditions or [] if c.type != "Promoted"]
    return [CanaryCondition(status=state, reason=phase.value, message=message, last_update_time=now,
                            last_transition_time=since), *others]
