"""Keeps the Canaries generated from Deployment annotations in step with those annotations.

Runs as one scheduler job (so only the leader writes), over the caches: an unchanged annotation
costs nothing. A Deployment that an explicit Canary already targets gets an Event and no
generated Canary.
"""

from __future__ import annotations

import structlog

from canary.defaults import FIELD_MANAGER, in_shard
from canary.engine.canaries import Canaries
from canary.errors import CanaryError, PermanentError
from canary.kube import Obj
from canary.kube.apply import apply_if_changed
from canary.kube.cache import Informer
from canary.kube.client import Kube
from canary.kube.events import EventRecorder
from canary.models.base import API_VERSION
from canary.models.canary import CanaryHead
from canary.workloads.annotations import GENERATED_LABEL, canary_for, is_enabled

log = structlog.get_logger(__name__)


class _InvalidAnnotations(PermanentError):
    """The Deployment's canary.dev annotations do not make a valid Canary (the message names them)."""


def _generated(canary: CanaryHead) -> bool:
    return canary.metadata.labels.get(GENERATED_LABEL) == "true"


class GeneratedCanaries:
    """Creates, updates and deletes generated Canaries."""

    def __init__(self, kube: Kube, *, deployments: Informer, canaries: Canaries, events: EventRecorder,
                 shard: str | None = None) -> None:
        self._kube = kube
        self._shard = shard
        self._deployments = deployments
        self._canaries = canaries
        self._events = events
        self._reported: dict[tuple[str, str], str] = {}
        self._seen: dict[tuple[str, str], dict[str, str]] = {}

    def changed(self, event: str, deployment: Obj) -> bool:
        """Whether a Deployment event touched canary.dev annotations (so a pass is due now)."""
        meta = deployment["metadata"]
        key = (meta["namespace"], meta["name"])
        ours = {k: v for k, v in (meta.get("annotations") or {}).items() if k.startswith("canary.dev/")}
        if event == "DELETED":
            return self._seen.pop(key, None) is not None
        before = self._seen.get(key)
        self._seen[key] = ours
        return before != ours and bool(ours or before)

    def sync(self) -> str:
        """One pass over every Deployment; returns a summary for the log."""
        written = 0
        for deployment in self._deployments.peek_all():
            if not in_shard(deployment["metadata"].get("labels"), self._shard):
                continue  # another shard's controller writes its Canary
            try:
                written += self._sync_one(deployment)
            except _InvalidAnnotations as exc:
                self._report(deployment, "InvalidCanaryAnnotations", str(exc))
            except CanaryError as exc:  # the API server refused a write (a namespace being deleted, RBAC, ...)
                self._report(deployment, "GeneratedCanaryNotWritten", str(exc))
        return f"{written} generated canaries written"

    def _sync_one(self, deployment: Obj) -> int:
        meta = deployment["metadata"]
        namespace, name = meta["namespace"], meta["name"]
        existing = self._canaries.informer.peek(namespace, name)
        if not is_enabled(deployment):
            if existing is not None and _generated(CanaryHead.of(existing)):
                self._kube.delete(API_VERSION, "Canary", name, namespace=namespace)
                return 1
            return 0
        explicit = [c.metadata.name for c in self._canaries.targeting(namespace, name) if not _generated(c)]
        if explicit:
            self._report(deployment, "CanaryExists", f"Deployment {namespace}/{name}: annotation canary.dev/enabled "
                         f"ignored: Canary {explicit[0]} already targets it")
            return 0
        try:
            body = canary_for(deployment)
        except PermanentError as exc:
            raise _InvalidAnnotations(str(exc)) from exc
        self._reported.pop((namespace, name), None)
        return int(apply_if_changed(self._kube, self._canaries.informer, body, field_manager=FIELD_MANAGER))

    def _report(self, deployment: Obj, reason: str, message: str) -> None:
        key = (deployment["metadata"]["namespace"], deployment["metadata"]["name"])
        if self._reported.get(key) == message:
            return
        self._reported[key] = message
        self._events.record(deployment, reason=reason, message=message, warning=True)
        log.warning("generated canary refused", reason=reason, message=message)
