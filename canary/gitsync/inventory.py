"""What a Git source applied last time, kept in the cluster so that a restarted controller can prune.

``canary.gitsync.apply.sync`` loads the inventory before a sync (to find objects that left Git)
and saves it after. It lives in a ConfigMap ``canary-gitsync-<source>`` as JSON: the last applied
commit, the objects in apply order, the last error and the time of the sync.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from canary.errors import PermanentError
from canary.kube import Obj
from canary.kube.client import Kube

CONFIGMAP_PREFIX = "canary-gitsync-"
DATA_KEY = "inventory.json"
FIELD_MANAGER = "canary-gitsync"
_SOURCE_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


@dataclass(frozen=True, order=True)
class ObjectRef:
    """One object's address; ``namespace`` is "" for cluster-scoped objects."""

    api_version: str
    kind: str
    namespace: str
    name: str

    @classmethod
    def of(cls, body: Obj) -> ObjectRef:
        """The address of a manifest or a live object."""
        meta = body["metadata"]
        return cls(body["apiVersion"], body["kind"], meta.get("namespace") or "", meta["name"])

    @property
    def identity(self) -> tuple[str, str, str, str]:
        """Group, kind, namespace and name: the same object whichever version of its API names it."""
        group = self.api_version.rpartition("/")[0]
        return group, self.kind, self.namespace, self.name

    def __str__(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}" if self.namespace else f"{self.kind} {self.name}"


@dataclass(frozen=True)
class Inventory:
    """The sync state of one source."""

    source: str
    revision: str | None
    objects: tuple[ObjectRef, ...]
    last_error: str | None
    synced_at: str

    def to_json(self) -> str:
        """The ConfigMap's payload."""
        return json.dumps({
            "source": self.source, "revision": self.revision, "lastError": self.last_error,
            "syncedAt": self.synced_at,
            "objects": [{"apiVersion": r.api_version, "kind": r.kind, "namespace": r.namespace, "name": r.name}
                        for r in self.objects],
        }, indent=1)

    @classmethod
    def from_json(cls, text: str, *, where: str) -> Inventory:
        """Parse a payload; ``where`` names its ConfigMap in errors."""
        try:
            raw = json.loads(text)
            objects = tuple(ObjectRef(str(o["apiVersion"]), str(o["kind"]), str(o.get("namespace") or ""),
                                      str(o["name"])) for o in raw["objects"])
            return cls(source=str(raw["source"]), revision=raw.get("revision"), objects=objects,
                       last_error=raw.get("lastError"), synced_at=str(raw.get("syncedAt") or ""))
        except (ValueError, KeyError, TypeError) as exc:
            raise PermanentError(f"{where}: data.{DATA_KEY} is not a valid inventory ({exc!r}); fix or delete it, "
                                 "which forgets what this source applied (nothing will be pruned)") from exc


class InventoryStore(Protocol):
    """Where inventories are kept."""

    def load(self, source: str) -> Inventory | None:
        """The last saved inventory of ``source``, or None before its first sync."""

    def save(self, inventory: Inventory) -> None:
        """Replace the inventory of ``inventory.source``."""


def configmap_name(source: str) -> str:
    """The ConfigMap that holds the inventory of ``source``, which must be a DNS label."""
    if not _SOURCE_NAME.match(source) or len(CONFIGMAP_PREFIX + source) > 253:
        raise PermanentError(f"Git source name {source!r} must be lowercase letters, digits and '-' "
                             f"(it names the ConfigMap {CONFIGMAP_PREFIX}<source>)")
    return CONFIGMAP_PREFIX + source


class ConfigMapInventoryStore:
    """Inventories as ConfigMaps in one namespace (the controller's)."""

    def __init__(self, kube: Kube, namespace: str) -> None:
        self._kube = kube
        self._namespace = namespace

    def load(self, source: str) -> Inventory | None:
        """The last saved inventory of ``source``, or None before its first sync."""
        name = configmap_name(source)
        found = self._kube.get("v1", "ConfigMap", name, namespace=self._namespace)
        if found is None:
            return None
        where = f"ConfigMap {self._namespace}/{name}"
        text = (found.get("data") or {}).get(DATA_KEY)
        if text is None:
            raise PermanentError(f"{where}: data.{DATA_KEY} is missing")
        return Inventory.from_json(text, where=where)

    def sources(self) -> list[str]:
        """The names of the sources with a saved inventory, sorted."""
        return sorted(cm["metadata"]["name"].removeprefix(CONFIGMAP_PREFIX)
                      for cm in self._kube.list_objects("v1", "ConfigMap", namespace=self._namespace)
                      if cm["metadata"]["name"].startswith(CONFIGMAP_PREFIX) and DATA_KEY in (cm.get("data") or {}))

    def save(self, inventory: Inventory) -> None:
        """Replace the inventory of ``inventory.source``."""
        self._kube.apply({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": configmap_name(inventory.source), "namespace": self._namespace,
                         "labels": {"app.kubernetes.io/managed-by": "canary-gitsync"}},
            "data": {DATA_KEY: inventory.to_json()},
        }, field_manager=FIELD_MANAGER)


def ordered_union(first: Sequence[ObjectRef], then: Sequence[ObjectRef]) -> tuple[ObjectRef, ...]:
    """``first`` followed by the objects of ``then`` not already in it (by identity)."""
    seen = {r.identity for r in first}
    return (*first, *(r for r in then if r.identity not in seen))

