"""Applying a ``SetStatus`` effect to a Canary's status: pure, so the reconciler can retry it.

On a write conflict the reconciler re-reads the Canary and applies the same change to the fresh
status; the Promoted condition and lastTransitionTime follow from the phase as in Flagger.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from canary.engine.effects import SetStatus
from canary.models.canary import CanaryCondition, CanaryStatus, ConditionStatus, Phase

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
    return status.model_copy(update=update)


def _conditions(status: CanaryStatus, phase: Phase, target_kind: str, now: datetime) -> list[CanaryCondition]:
    state, message = _promoted_condition(phase, target_kind)
    current = next((c for c in status.conditions or [] if c.type == "Promoted"), None)
    if current is not None and current.status == state and current.reason == phase.value:
        return list(status.conditions or [])
    since = current.last_transition_time if current is not None and current.status == state else now
    others = [c for c in status.conditions or [] if c.type != "Promoted"]
    return [CanaryCondition(status=state, reason=phase.value, message=message, last_update_time=now,
                            last_transition_time=since), *others]
