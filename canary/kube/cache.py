"""Watch-backed caches of objects (informers), so that a tick reads without asking the API server.

Each informer lists its kind once, then follows a watch, re-listing when the watch expires. A
writer stores the object the API server returned (``store``), so the next read sees its own write
even before the watch delivers it; an older version never replaces a newer one.

A lazy informer (the kinds of routers and autoscalers that may not be installed or used) starts
following at its first read, not at ``start``: a controller whose canaries use no Istio holds no
VirtualService cache, and asks nothing about the kind, not even whether it is served.
"""

from __future__ import annotations

import copy
import random
import threading
import time
from collections.abc import Callable

import structlog

from canary.errors import CanaryError
from canary.kube import Obj
from canary.kube.client import Expired, Kube

Handler = Callable[[str, Obj], None]
WATCH_SECONDS = 300
"""The shortest watch before the API server closes it; each watch lasts between this and twice this
(as client-go's reflectors), so that an idle cache costs a request every few minutes, not every few
seconds, and many caches do not re-open at once."""
LAZY_SYNC_SECONDS = 5.0
"""How long the first read of a lazy informer waits for its list (a kind not served never lists)."""
log = structlog.get_logger(__name__)


def _key(obj: Obj) -> tuple[str, str]:
    meta = obj["metadata"]
    return meta.get("namespace") or "", meta["name"]


_UNREAD_ANNOTATIONS = ("kubectl.kubernetes.io/last-applied-configuration",)


def _slim(obj: Obj) -> Obj:
    """``obj`` without what no reader of a cache reads and what makes up much of its size: the managed
    fields, and kubectl's copy of the whole object in an annotation (a new dict: the caller's is kept)."""
    meta = obj.get("metadata") or {}
    annotations = meta.get("annotations") or {}
    unread = any(k in annotations for k in _UNREAD_ANNOTATIONS)
    if "managedFields" not in meta and not unread:
        return obj
    slim_meta = {k: v for k, v in meta.items() if k != "managedFields"}
    if unread:
        slim_meta["annotations"] = {k: v for k, v in annotations.items() if k not in _UNREAD_ANNOTATIONS}
    return {**obj, "metadata": slim_meta}


def _version(obj: Obj) -> int:
    try:
        return int(obj["metadata"].get("resourceVersion") or 0)
    except ValueError:
        return 0


class Informer:
    """A cache of one kind (optionally one namespace, and the objects matching a label or field selector), kept
    current by a watch in a thread. Objects are kept without their managed fields and kubectl's
    last-applied annotation, which nothing reads from a cache."""

    def __init__(self, kube: Kube, api_version: str, kind: str, *, namespace: str | None = None,
                 label_selector: str | None = None, field_selector: str | None = None, retry_seconds: float = 2.0,
                 lazy: bool = False, first_read_seconds: float = LAZY_SYNC_SECONDS) -> None:
        self.api_version, self.kind, self.namespace = api_version, kind, namespace
        self.label_selector, self.field_selector = label_selector, field_selector
        self.lazy = lazy
        self._wanted = False  # start was called; a lazy informer then starts at its first read
        self._first_deadline = 0.0
        self._first_read_seconds = first_read_seconds
        self._start_lock = threading.Lock()
        self._kube = kube
        self._handlers: list[Handler] = []
        self._retry = retry_seconds
        self._objects: dict[tuple[str, str], Obj] = {}
        self._lock = threading.Lock()
        self._synced = threading.Event()
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"informer-{kind}", daemon=True)

    def subscribe(self, handler: Handler) -> None:
        """Also call ``handler(event, object)`` on every change; subscribe before ``start``."""
        self._handlers.append(handler)

    def start(self) -> Informer:
        """Start following the API server (a lazy informer: at its first read)."""
        self._wanted = True
        if not self.lazy:
            self._begin()
        return self

    def _begin(self) -> float:
        """Start the thread once; returns until when first readers wait for the list."""
        with self._start_lock:
            if self._thread.ident is None:
                self._thread.start()
                self._first_deadline = time.monotonic() + self._first_read_seconds
            return self._first_deadline

    def _first_read(self) -> None:
        # Readers wait a little for the first list, so that they do not act on an empty cache; a kind
        # that is not served never lists, and its readers stop waiting at the deadline.
        if not self.lazy or not self._wanted or self._synced.is_set():
            return
        remaining = self._begin() - time.monotonic()
        if remaining > 0:
            self._synced.wait(remaining)

    @property
    def started(self) -> bool:
        """Whether it follows the API server (a lazy one once read)."""
        return self._thread.ident is not None

    def stop(self) -> None:
        """Stop after the current watch call returns (at the next change or the watch's end: a thread
        that outlives it is a daemon, and a stopping process does not wait for it)."""
        self._stopped.set()

    def wait_synced(self, timeout: float) -> bool:
        """True once the first list has been loaded."""
        return self._synced.wait(timeout)

    @property
    def synced(self) -> bool:
        """Whether the first list has been loaded."""
        return self._synced.is_set()

    def get(self, namespace: str | None, name: str) -> Obj | None:
        """A copy of the cached object, or None."""
        self._first_read()
        with self._lock:
            found = self._objects.get((namespace or "", name))
            return copy.deepcopy(found) if found is not None else None

    def list_objects(self, namespace: str | None = None) -> list[Obj]:
        """Copies of the cached objects, in one namespace or all."""
        self._first_read()
        with self._lock:
            return [copy.deepcopy(o) for (ns, _), o in self._objects.items() if namespace is None or ns == namespace]

    def peek(self, namespace: str | None, name: str) -> Obj | None:
        """The cached object itself, or None: for readers that only read (no copy, so no cost per
        call). The dict must not be changed: the informer replaces stored objects, never edits them."""
        self._first_read()
        with self._lock:
            return self._objects.get((namespace or "", name))

    def peek_all(self, namespace: str | None = None) -> list[Obj]:
        """The cached objects themselves, in one namespace or all; read-only, as for ``peek``."""
        self._first_read()
        with self._lock:
            if namespace is None:
                return list(self._objects.values())
            return [o for (ns, _), o in self._objects.items() if ns == namespace]

    def count(self, namespace: str | None = None) -> int:
        """How many objects are cached, in one namespace or all."""
        self._first_read()
        with self._lock:
            if namespace is None:
                return len(self._objects)
            return sum(1 for ns, _ in self._objects if ns == namespace)

    def store(self, obj: Obj) -> None:
        """Record an object the API server returned from a write, unless a newer one is cached."""
        self._upsert(obj)

    def _upsert(self, obj: Obj) -> bool:
        obj = _slim(obj)
        key = _key(obj)
        with self._lock:
            current = self._objects.get(key)
            if current is not None and _version(current) > _version(obj):
                return False
            self._objects[key] = obj
            return True

    def _run(self) -> None:
        delay, last_error = self._retry, ""
        while not self._stopped.is_set():
            try:
                version = self._relist()
                delay, last_error = self._retry, ""
                while not self._stopped.is_set():
                    version = self._follow(version)
            except Expired:
                continue
            except CanaryError as exc:
                if str(exc) != last_error:  # say it once, not every retry
                    log.warning("informer retrying", kind=self.kind, error=str(exc))
                last_error = str(exc)
            except Exception:  # a crashed informer would freeze every canary: log, wait, retry
                log.exception("informer failed", kind=self.kind)
            self._stopped.wait(delay)
            delay = min(delay * 2, 30.0)

    def _relist(self) -> str:
        items, version = self._kube.list_with_version(self.api_version, self.kind, namespace=self.namespace,
                                                      label_selector=self.label_selector,
                                                      field_selector=self.field_selector)
        fresh = {_key(o): _slim(o) for o in items}
        with self._lock:
            gone = [o for k, o in self._objects.items() if k not in fresh]
            changed = [("ADDED" if k not in self._objects else "MODIFIED", o) for k, o in fresh.items()
                       if self._objects.get(k) != o]
            self._objects = fresh
        self._synced.set()
        for event, obj in changed:
            self._notify(event, obj)
        for obj in gone:
            self._notify("DELETED", obj)
        return version

    def _follow(self, version: str) -> str:
        seconds = int(WATCH_SECONDS * (1 + random.random()))  # noqa: S311 - spreading, not secrecy
        for event, obj in self._kube.watch(self.api_version, self.kind, namespace=self.namespace,
                                           resource_version=version, timeout_seconds=seconds,
                                           label_selector=self.label_selector,
                                           field_selector=self.field_selector):
            version = obj["metadata"].get("resourceVersion") or version
            if event == "BOOKMARK":
                continue
            if event == "DELETED":
                with self._lock:
                    self._objects.pop(_key(obj), None)
                self._notify(event, obj)
            elif self._upsert(obj):
                self._notify(event, obj)
            if self._stopped.is_set():
                break
        return version

    def _notify(self, event: str, obj: Obj) -> None:
        for handler in self._handlers:
            try:
                handler(event, obj)
            except Exception:  # a handler's bug must not stop the cache
                log.exception("informer handler failed", kind=self.kind)
