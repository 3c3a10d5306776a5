"""Tells the Git sync which releases the engine rolled back, and what was promoted before them.

The controller hands ``FailedReleases`` to ``canary.gitsync.rollbacks.Rollbacks``, which applies the
source's gitRollback policy. Everything comes from the controller's caches: no API request.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import structlog

from canary.engine.canaries import Canaries
from canary.gitsync.rollbacks import FailedRelease
from canary.models.canary import Canary, CanaryHead
from canary.workloads import configs
from canary.workloads.deployments import Deployments

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class FailedReleases:
    """Callable: the releases that are rolled back now (phase Failed, target still at the failed revision)."""

    canaries: Canaries
    deployments: Deployments

    def __call__(self) -> list[FailedRelease]:
        found = []
        for obj in self.canaries.informer.peek_all():
            if not CanaryHead.of(obj).rolled_back:
                continue  # most canaries: no full parse, no work (this runs at every poll)
            canary = self.canaries.parse(obj)
            if not isinstance(canary, Canary):
                continue  # the reconciler reports an invalid Canary in its status
            release = self._release(canary)
            if release is not None:
                found.append(release)
        return found

    def _release(self, canary: Canary) -> FailedRelease | None:
        status = canary.status
        failed, promoted = status.last_applied_spec, status.last_promoted_spec
        if not failed or not promoted or canary.spec.target_ref.kind != "Deployment":
            return None
        state = self.deployments.observe(canary)
        if state is None or state.revision != failed:
            return None
        before = self.deployments.promoted(canary, state)
        if before is None:
            return None
        changed = {(ref.kind, ref.name): (live, before.configs[ref]) for ref, live in state.tracked.items()
                   if ref in before.configs and configs.checksum(live) != configs.checksum(before.configs[ref])}
        return FailedRelease(
            namespace=canary.metadata.namespace or "", canary=canary.metadata.name,
            deployment=canary.spec.target_ref.name, failed_revision=failed, promoted_revision=promoted,
            checks=canary.status.failing_checks(),
            live_template=copy.deepcopy(state.target["spec"]["template"]), promoted_template=before.template,
            configs=changed)
