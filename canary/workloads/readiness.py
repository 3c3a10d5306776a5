"""Whether a Deployment or DaemonSet has rolled out and is ready, and whether it is stuck (Flagger's rules).

A Deployment is ready once the controller observed its latest generation, every replica runs
the new template and enough of them are available (``threshold`` percent). It is *stuck* when
its own progress deadline passed, or when it has been short of available replicas for longer
than the Canary's progressDeadlineSeconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from canary.kube.conditions import condition


@dataclass(frozen=True)
class Readiness:
    """Whether a workload is ready; ``stuck`` once it exceeded the progress deadline."""

    ready: bool
    message: str = ""
    stuck: bool = False


def _time(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None


def deployment_readiness(deployment: dict[str, Any] | None, *, deadline_seconds: int, threshold: int,
                         now: datetime) -> Readiness:
    """Judge a Deployment object as read from the API server."""
    if deployment is None:
        return Readiness(False, "deployment not found")
    name = deployment["metadata"]["name"]
    progressing = condition(deployment, "Progressing")
    if progressing is not None and progressing.get("reason") == "ProgressDeadlineExceeded":
        return Readiness(False, f"{name} exceeded its progress deadline", stuck=True)
    gap = _rollout_gap(deployment, threshold)
    if gap is None:
        return Readiness(True)
    return Readiness(False, f"{name}: {gap}", stuck=_short_for_too_long(deployment, deadline_seconds, now))


def _rollout_gap(deployment: dict[str, Any], threshold: int) -> str | None:
    """What the rollout still lacks, or None when it is complete."""
    spec, status = deployment.get("spec") or {}, deployment.get("status") or {}
    if deployment["metadata"].get("generation", 0) > status.get("observedGeneration", 0):
        return "waiting for the controller to observe the latest generation"
    desired, updated = spec.get("replicas", 1), status.get("updatedReplicas", 0)
    if updated < desired:
        return f"{updated} of {desired} replicas updated"
    if status.get("replicas", 0) > updated:
        return f"{status.get('replicas', 0) - updated} old replicas pending termination"
    needed, available = int(updated * threshold / 100), status.get("availableReplicas", 0)
    if available < needed:
        return f"{available} of {needed} updated replicas available (threshold {threshold}%)"
    return None


def _short_for_too_long(deployment: dict[str, Any], deadline_seconds: int, now: datetime) -> bool:
    available = condition(deployment, "Available")
    if available is None or available.get("status") != "False" or \
            available.get("reason") != "MinimumReplicasUnavailable":
        return False
    since = _time(available.get("lastUpdateTime")) or _time(available.get("lastTransitionTime"))
    return since is not None and now > since + timedelta(seconds=deadline_seconds)


def daemonset_readiness(daemonset: dict[str, Any] | None, *, threshold: int) -> Readiness:
    """Judge a DaemonSet: its latest generation observed, its pods on every node it should run on
    updated, and ``threshold`` percent of them available (Flagger's IsPrimaryReady for DaemonSets)."""
    if daemonset is None:
        return Readiness(False, "daemonset not found")
    name = daemonset["metadata"]["name"]
    status = daemonset.get("status") or {}
    if daemonset["metadata"].get("generation", 0) > status.get("observedGeneration", 0):
        return Readiness(False, f"{name}: waiting for the controller to observe the latest generation")
    desired, updated = status.get("desiredNumberScheduled", 0), status.get("updatedNumberScheduled", 0)
    if updated < desired:
        return Readiness(False, f"{name}: {updated} of {desired} pods updated")
    needed, available = int(desired * threshold / 100), status.get("numberAvailable", 0)
    if available < needed:
        return Readiness(False, f"{name}: {available} of {needed} pods available (threshold {threshold}%)")
    return Readiness(True)
