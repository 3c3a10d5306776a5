"""What a Git source applied last time, kept in the cluster so that a restarted controller can prune.

``canary.gitsync.apply.sync`` loads the inventory before a sync (to find objects that left Git)
and saves it after. It lives in the source's sync-state object ``canary-gitsync-<source>``, a
ConfigMap or (``--git-sync-state secret``) a Secret, as JSON: the last applied commit, the objects
in apply order (each with what the sync last confirmed of it: the digest of its manifest and the
resourceVersion at which the cluster's object matched it, which lets a resync skip it while both
hold), the last error and the time of the sync. The same object keeps the rollbacks the sync
handled (``canary.gitsync.rollbacks``), each key written by its own field manager.

The payload is compact (an object is a list, not a mapping; no indentation) because a ConfigMap
holds at most 1 MiB: about 10,000 objects of typical names.
"""

from __future__ import annotations

import base64
import functools
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol, get_args

import structlog

from canary.errors import Forbidden, PermanentError
from canary.kube import Obj
from canary.kube.client import Kube

log = structlog.get_logger(__name__)
STATE_PREFIX = "canary-gitsync-"
DATA_KEY = "inventory.json"
FIELD_MANAGER = "canary-gitsync"
StateKind = Literal["configmap", "secret"]
STATE_KINDS: tuple[str, ...] = get_args(StateKind)
_KINDS: dict[str, str] = {"configmap": "ConfigMap", "secret": "Secret"}
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

    @functools.cached_property
    def identity(self) -> tuple[str, str, str, str]:
        """Group, kind, namespace and name: the same object whichever version of its API names it."""
        group = self.api_version.rpartition("/")[0]
        return group, self.kind, self.namespace, self.name

    def __str__(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}" if self.namespace else f"{self.kind} {self.name}"


Identity = tuple[str, str, str, str]


@dataclass(frozen=True)
class Confirmed:
    """What a sync saw of one object: the cluster's object at ``resource_version`` matched (or was made to
    match) the manifest whose ``digest`` (``canary.gitsync.render.RenderedObject.digest``) it applied, and
    ``live`` is the digest of that object without what changes on every write (``canary.gitsync.apply``).

    A fact about the past, so always safe to keep: it lets a later sync skip the object only while
    Git's manifest still has that digest and the object still has that resourceVersion (which any
    write to it, by anyone, changes) or, after a write, still has that content (a status update,
    say, changes neither the object's spec and metadata nor the fields our apply owns).
    """

    digest: str
    resource_version: str
    live: str = ""


@dataclass(frozen=True)
class Inventory:
    """The sync state of one source; ``confirmed`` is keyed by ``ObjectRef.identity``."""

    source: str
    revision: str | None
    objects: tuple[ObjectRef, ...]
    last_error: str | None
    synced_at: str
    confirmed: Mapping[Identity, Confirmed] = field(default_factory=dict)

    def to_json(self) -> str:
        """The ConfigMap's payload: each object ``[apiVersion, kind, namespace, name]``, followed by its digest,
        resourceVersion and live digest when confirmed."""
        objects = []
        for r in self.objects:
            entry = [r.api_version, r.kind, r.namespace, r.name]
            seen = self.confirmed.get(r.identity)
            if seen is not None:
                entry += [seen.digest, seen.resource_version, seen.live]
            objects.append(entry)
        return json.dumps({"source": self.source, "revision": self.revision, "lastError": self.last_error,
                           "syncedAt": self.synced_at, "objects": objects}, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str, *, where: str) -> Inventory:
        """Parse a payload (this format, or the earlier one of a mapping per object); ``where`` names its
        ConfigMap in errors."""
        try:
            raw = json.loads(text)
            objects = []
            confirmed = {}
            for item in raw["objects"]:
                entry = [item["apiVersion"], item["kind"], item.get("namespace") or "", item["name"]] \
                    if isinstance(item, dict) else item
                if not isinstance(entry, list) or len(entry) not in {4, 7}:
                    raise ValueError(f"an object must be [apiVersion, kind, namespace, name(, digest, "
                                     f"resourceVersion, live digest)], got {entry!r}")
                ref = ObjectRef(*(str(part) for part in entry[:4]))
                objects.append(ref)
                if len(entry) == 7:
                    confirmed[ref.identity] = Confirmed(str(entry[4]), str(entry[5]), str(entry[6]))
            return cls(source=str(raw["source"]), revision=raw.get("revision"), objects=tuple(objects),
                       last_error=raw.get("lastError"), synced_at=str(raw.get("syncedAt") or ""),
                       confirmed=confirmed)
        except (ValueError, KeyError, TypeError) as exc:
            raise PermanentError(f"{where}: data.{DATA_KEY} is not a valid inventory ({exc!r}); fix or delete it, "
                                 "which forgets what this source applied (nothing will be pruned)") from exc


class InventoryStore(Protocol):
    """Where inventories are kept."""

    def load(self, source: str) -> Inventory | None:
        """The last saved inventory of ``source``, or None before its first sync."""

    def save(self, inventory: Inventory) -> None:
        """Replace the inventory of ``inventory.source``."""


def state_name(source: str) -> str:
    """The name of the object that holds the sync state of ``source``, which must be a DNS label."""
    if not _SOURCE_NAME.match(source) or len(STATE_PREFIX + source) > 253:
        raise PermanentError(f"Git source name {source!r} must be lowercase letters, digits and '-' "
                             f"(it names the sync-state object {STATE_PREFIX}<source>)")
    return STATE_PREFIX + source


class SyncState:
    """The sync-state objects of the sources: ConfigMaps or Secrets ``canary-gitsync-<source>`` in one namespace.

    A Secret suits clusters where ConfigMaps are readable by many (the state names every object a
    source applies). A key missing from the configured kind is read from the other kind when that
    is allowed, so switching ``--git-sync-state`` keeps what the sync knew; the first write then
    goes to the configured kind, and the old object can be deleted.
    """

    def __init__(self, kube: Kube, namespace: str, kind: StateKind = "configmap") -> None:
        if kind not in _KINDS:
            raise PermanentError(f"--git-sync-state must be one of {', '.join(STATE_KINDS)}, got {kind!r}")
        self._kube = kube
        self.namespace = namespace
        self.kind = _KINDS[kind]
        self._other = next(k for k in _KINDS.values() if k != self.kind)

    def describe(self, source: str) -> str:
        """The object, for messages: ``Secret canary-system/canary-gitsync-apps``."""
        return f"{self.kind} {self.namespace}/{state_name(source)}"

    def get(self, source: str) -> Obj | None:
        """The state object of ``source``, or None before its first sync."""
        return self._kube.get("v1", self.kind, state_name(source), namespace=self.namespace)

    def read(self, source: str, key: str) -> tuple[str, str] | None:
        """The text under ``key`` and the object it came from (for messages), or None."""
        found = _value(self.get(source), key)
        if found is not None:
            return found, self.describe(source)
        try:
            other = self._kube.get("v1", self._other, state_name(source), namespace=self.namespace)
        except Forbidden:
            return None
        found = _value(other, key)
        if found is None:
            return None
        log.info("sync state read from the other kind; it is written to the configured kind from now on",
                 source=source, key=key, read_from=self._other, written_to=self.kind)
        return found, f"{self._other} {self.namespace}/{state_name(source)}"

    def write(self, source: str, data: Mapping[str, str], *, field_manager: str,
              labels: Mapping[str, str] | None = None) -> None:
        """Apply ``data`` under its keys, as ``field_manager`` (other keys stay as they are)."""
        metadata: Obj = {"name": state_name(source), "namespace": self.namespace}
        if labels:
            metadata["labels"] = dict(labels)
        body: Obj = {"apiVersion": "v1", "kind": self.kind, "metadata": metadata}
        if self.kind == "Secret":
            body["type"] = "Opaque"
            body["data"] = {key: base64.b64encode(value.encode()).decode() for key, value in data.items()}
        else:
            body["data"] = dict(data)
        self._kube.apply(body, field_manager=field_manager)

    def sources(self, key: str) -> list[str]:
        """The names of the sources whose state has ``key``, sorted."""
        return sorted(obj["metadata"]["name"].removeprefix(STATE_PREFIX)
                      for obj in self._kube.list_objects("v1", self.kind, namespace=self.namespace)
                      if obj["metadata"]["name"].startswith(STATE_PREFIX) and key in (obj.get("data") or {}))


def _value(obj: Obj | None, key: str) -> str | None:
    encoded = ((obj or {}).get("data") or {}).get(key)
    if encoded is None or obj is None:
        return None
    return base64.b64decode(encoded).decode() if obj.get("kind") == "Secret" else str(encoded)


class KubeInventoryStore:
    """Inventories in the sources' sync-state objects."""

    def __init__(self, state: SyncState) -> None:
        self.state = state
        # The last payload read or written per source, parsed: a pass reads the inventory several times
        # and thousands of objects take longer to parse than to fetch.
        self._parsed: dict[str, tuple[str, Inventory]] = {}

    def load(self, source: str) -> Inventory | None:
        """The last saved inventory of ``source``, or None before its first sync."""
        found = self.state.read(source, DATA_KEY)
        if found is None:
            return None
        text, where = found
        known = self._parsed.get(source)
        if known is not None and known[0] == text:
            return known[1]
        inventory = Inventory.from_json(text, where=where)
        self._parsed[source] = (text, inventory)
        return inventory

    def sources(self) -> list[str]:
        """The names of the sources with a saved inventory, sorted."""
        return self.state.sources(DATA_KEY)

    def save(self, inventory: Inventory) -> None:
        """Replace the inventory of ``inventory.source``."""
        text = inventory.to_json()
        self.state.write(inventory.source, {DATA_KEY: text}, field_manager=FIELD_MANAGER,
                         labels={"app.kubernetes.io/managed-by": "canary-gitsync"})
        self._parsed[inventory.source] = (text, inventory)


def ordered_union(first: Sequence[ObjectRef], then: Sequence[ObjectRef]) -> tuple[ObjectRef, ...]:
    """``first`` followed by the objects of ``then`` not already in it (by identity)."""
    seen = {r.identity for r in first}
    return (*first, *(r for r in then if r.identity not in seen))

