"""Small fakes at the canary.kube boundary, for unit tests of the reconciler and the check runner.

``FakeKube`` keeps objects in memory and answers the calls ``canary.kube.client.Kube`` answers,
with resourceVersions and conditional merge patches; ``informer`` gives an unstarted informer
(a plain cache) filled with objects. The end-to-end tests run the same code against a real API
server; these make the feedback fast.
"""

from __future__ import annotations

import copy
import itertools
from typing import Any, cast

from canary.errors import Conflict
from canary.gitsync.inventory import Inventory
from canary.kube import Obj
from canary.kube.cache import Informer
from canary.kube.client import Kube

Key = tuple[str, str, str]


def _merge(base: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    merged = dict(base) if isinstance(base, dict) else {}
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = _merge(merged.get(key), value)
    return merged


class FakeKube:
    """An in-memory API server for the calls the engine makes; ``calls`` lists them as 'verb kind name'."""

    def __init__(self, *objects: Obj) -> None:
        self.objects: dict[Key, Obj] = {}
        self.calls: list[str] = []
        self._versions = itertools.count(1)
        for obj in objects:
            self._store(copy.deepcopy(obj))

    def as_kube(self) -> Kube:
        """This fake where a Kube is expected."""
        return cast(Kube, self)

    def _key(self, kind: str, name: str, namespace: str | None) -> Key:
        return kind, namespace or "", name

    def _store(self, obj: Obj) -> Obj:
        meta = obj.setdefault("metadata", {})
        meta["resourceVersion"] = str(next(self._versions))
        meta.setdefault("uid", f"uid-{meta['name']}")
        meta.setdefault("creationTimestamp", "2026-01-01T00:00:00Z")
        self.objects[self._key(obj["kind"], meta["name"], meta.get("namespace"))] = obj
        return copy.deepcopy(obj)

    def get(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> Obj | None:
        self.calls.append(f"get {kind} {name}")
        found = self.objects.get(self._key(kind, name, namespace))
        return copy.deepcopy(found) if found is not None else None

    def list_objects(self, api_version: str, kind: str, *, namespace: str | None = None,
                     label_selector: str | None = None) -> list[Obj]:
        self.calls.append(f"list {kind}")
        return [copy.deepcopy(o) for (k, ns, _), o in self.objects.items()
                if k == kind and (namespace is None or ns == namespace)]

    def create(self, body: Obj) -> Obj:
        meta = body["metadata"]
        self.calls.append(f"create {body['kind']} {meta['name']}")
        if self._key(body["kind"], meta["name"], meta.get("namespace")) in self.objects:
            raise Conflict(f"create {body['kind']} {meta['name']}: already exists")
        return self._store(copy.deepcopy(body))

    def apply(self, body: Obj, *, field_manager: str, subresource: str | None = None) -> Obj:
        meta = body["metadata"]
        self.calls.append(f"apply {body['kind']} {meta['name']}")
        current = self.objects.get(self._key(body["kind"], meta["name"], meta.get("namespace")), {})
        return self._store(_merge(current, body))

    def merge_patch(self, api_version: str, kind: str, name: str, patch: Obj, *, namespace: str | None = None,
                    subresource: str | None = None) -> Obj:
        self.calls.append(f"patch {kind} {name}" + (f"/{subresource}" if subresource else ""))
        key = self._key(kind, name, namespace)
        current = self.objects[key]
        wanted = (patch.get("metadata") or {}).get("resourceVersion")
        if wanted is not None and wanted != current["metadata"]["resourceVersion"]:
            raise Conflict(f"patch {kind} {name}: the object has been modified")
        return self._store(_merge(current, patch))

    def delete(self, api_version: str, kind: str, name: str, *, namespace: str | None = None,
               propagation: str = "Background") -> bool:
        self.calls.append(f"delete {kind} {name}")
        return self.objects.pop(self._key(kind, name, namespace), None) is not None

    def writes(self) -> list[str]:
        """The calls that changed something."""
        return [c for c in self.calls if not c.startswith(("get ", "list "))]


def informer(kube: FakeKube, api_version: str, kind: str) -> Informer:
    """An unstarted informer over ``kube``'s objects of ``kind``: a cache the test fills and reads."""
    cache = Informer(kube.as_kube(), api_version, kind)
    for (found_kind, _, _), obj in kube.objects.items():
        if found_kind == kind:
            cache.store(copy.deepcopy(obj))
    return cache


class MemoryStore:
    """The Git sync's inventory store, in memory."""

    def __init__(self) -> None:
        self.saved: dict[str, Inventory] = {}

    def load(self, source: str) -> Inventory | None:
        return self.saved.get(source)

    def save(self, inventory: Inventory) -> None:
        self.saved[inventory.source] = inventory
