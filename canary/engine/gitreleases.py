"""Tells the Git sync which releases the engine rolled back, and what was promoted before them.

The controller hands ``FailedReleases`` to ``canary.gitsync.rollbacks.Rollbacks``, which applies the
source's gitRollback policy. Everything comes from the controller's caches: no API request.
"""

from __future__ import annotations

from dataclasses import dataclass

import structlog
from pydantic import ValidationError

from canary.gitsync.rollbacks import FailedRelease, failing_checks
from canary.kube.cache import Informer
from canary.models.canary import Canary, Phase
from canary.workloads import configs
from canary.workloads.deployments import Deployments

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class FailedReleases:
    """Callable: the releases that are rolled back now (phase Failed, target still at the failed revision)."""

    canaries: Informer
    deployments: Deployments

    def __call__(self) -> list[FailedRelease]:
        found = []
        for obj in self.canaries.list_objects():
            if not _rolled_back(obj.get("status")):
                continue  # most canaries: no validation, no work (this runs at every poll)
            try:
                canary = Canary.model_validate(obj)
            except ValidationError:
                continue  # the reconciler reports an invalid Canary in its status
            release = self._release(canary, obj)
            if release is not None:
                found.append(release)
        return found

    def _release(self, canary: Canary, obj: dict[str, object]) -> FailedRelease | None:
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
        raw_status = obj.get("status")
        return FailedRelease(
            namespace=canary.metadata.namespace or "", canary=canary.metadata.name,
            deployment=canary.spec.target_ref.name, failed_revision=failed, promoted_revision=promoted,
            checks=failing_checks(raw_status if isinstance(raw_status, dict) else {}),
            live_template=state.target["spec"]["template"], promoted_template=before.template, configs=changed)


def _rolled_back(status: object) -> bool:
    """A status that says the last release was rolled back and the target not since reverted."""
    return isinstance(status, dict) and status.get("phase") == Phase.FAILED.value and \
        status.get("lastAppliedSpec") != status.get("lastPromotedSpec")
