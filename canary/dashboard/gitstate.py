"""The Git sync as the dashboard shows it: each source's last sync (what ``canary sync status`` prints),
and the commit that brought a canary's target into the cluster.

The Git sync does not annotate what it applies; it records, per source, the commit it applied last and
every object it applied (the inventory, in the sync-state object ``canary-gitsync-<source>``). So a
canary whose target (or the Canary itself) is in a source's inventory came from that source, at that
commit. ``app`` calls ``GitState``; inventories are read through canary.gitsync, as the CLI reads them,
and kept a few seconds so that a page refreshed at every step of a run does not re-read them each time.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from canary.errors import CanaryError
from canary.gitsync.inventory import Inventory, KubeInventoryStore, StateKind, SyncState
from canary.gitsync.rollbacks import git_ahead, read_ledger
from canary.kube.client import Kube
from canary.models.canary import Canary

Json = dict[str, Any]
KEEP_SECONDS = 5.0


@dataclass
class GitState:
    """The sync state of every source in ``namespace`` (the controller's --git-inventory-namespace)."""

    kube: Kube
    namespace: str
    kind: StateKind = "configmap"
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _kept: tuple[float, list[Inventory], str | None] | None = None

    def _inventories(self) -> tuple[list[Inventory], str | None]:
        """The sources' inventories and, when they cannot be read (RBAC, say), why."""
        with self._lock:
            if self._kept is not None and time.monotonic() - self._kept[0] < KEEP_SECONDS:
                return self._kept[1], self._kept[2]
        store = KubeInventoryStore(SyncState(self.kube, self.namespace, self.kind))
        try:
            found = [i for i in (store.load(name) for name in store.sources()) if i is not None]
            problem = None
        except CanaryError as exc:
            found, problem = [], f"the sync state in namespace {self.namespace} cannot be read: {exc}"
        with self._lock:
            self._kept = (time.monotonic(), found, problem)
        return found, problem

    def panel(self) -> Json:
        """Each source's commit, sync time, object count, last error and what Git is ahead of."""
        inventories, problem = self._inventories()
        state = SyncState(self.kube, self.namespace, self.kind)
        sources = []
        for inventory in inventories:
            try:
                ahead = git_ahead(self.kube, inventory, read_ledger(state, inventory.source))
            except CanaryError as exc:
                ahead = [f"cannot tell which releases Git is ahead of: {exc}"]
            sources.append({"source": inventory.source, "commit": inventory.revision, "synced": inventory.synced_at,
                            "objects": len(inventory.objects), "error": inventory.last_error, "ahead": ahead})
        return {"namespace": self.namespace, "sources": sources, "problem": problem}

    def provenance(self, canary: Canary) -> Json | None:
        """The source and commit that applied the canary's target (or the Canary), or None if Git did not."""
        namespace = canary.metadata.namespace or ""
        wanted = {(canary.spec.target_ref.kind, canary.spec.target_ref.name), ("Canary", canary.metadata.name)}
        for inventory in self._inventories()[0]:
            applied = {(ref.kind, ref.name) for ref in inventory.objects if ref.namespace == namespace}
            if wanted & applied:
                return {"source": inventory.source, "commit": inventory.revision, "synced": inventory.synced_at}
        return None
