"""Watch-backed caches of objects (informers), so that a tick reads without asking the API server.

Each informer lists its kind once, then follows a watch, re-listing when the watch expires. A
writer stores the object the API server returned (``store``), so the next read sees its own write
even before the watch delivers it; an older version never replaces a newer one.
"""

from __future__ import annotations

import copy
import random
import threading
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
log = structlog.get_logger(__name__)


def _key(obj: Obj) -> tuple[str, str]:
    meta = obj["metadata"]
    return meta.get("namespace") or "", meta["name"]


def _version(obj: Obj) -> int:
    try:
        return int(obj["metadata"].get("resourceVersion") or 0)
    except ValueError:
        return 0


class Informer:
    """A cache of one kind (optionally one namespace, and the objects matching a label selector), kept
    current by a watch in a thread."""

    def __init__(self, kube: Kube, api_version: str, kind: str, *, namespace: str | None = None,
                 label_selector: str | None = None, retry_seconds: float = 2.0) -> None:
        self.api_version, self.kind, self.namespace = api_version, kind, namespace
        self.label_selector = label_selector
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
        """Start following the API server."""
        self._thread.start()
        return self

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
        with self._lock:
            found = self._objects.get((namespace or "", name))
            return copy.deepcopy(found) if found is not None else None

    def list_objects(self, namespace: str | None = None) -> list[Obj]:
        """Copies of the cached objects, in one namespace or all."""
        with self._lock:
            return [copy.deepcopy(o) for (ns, _), o in self._objects.items() if namespace is None or ns == namespace]

    def peek(self, namespace: str | None, name: str) -> Obj | None:
        """The cached object itself, or None: for readers that only read (no copy, so no cost per
        call). The dict must not be changed: the informer replaces stored objects, never edits them."""
        with self._lock:
            return self._objects.get((namespace or "", name))

    def peek_all(self, namespace: str | None = None) -> list[Obj]:
        """The cached objects themselves, in one namespace or all; read-only, as for ``peek``."""
        with self._lock:
            if namespace is None:
                return list(self._objects.values())
            return [o for (ns, _), o in self._objects.items() if ns == namespace]

    def store(self, obj: Obj) -> None:
        """Record an object the API server returned from a write, unless a newer one is cached."""
        self._upsert(obj)

    def _upsert(self, obj: Obj) -> bool:
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
                                                      label_selector=self.label_selector)
        fresh = {_key(o): o for o in items}
        with self._lock:
            gone = [o for k, o in self._objects.items() if k not in fresh]
            changed = [o for k, o in fresh.items() if self._objects.get(k) != o]
            self._objects = fresh
        self._synced.set()
        for obj in changed:
            self._notify("MODIFIED", obj)
        for obj in gone:
            self._notify("DELETED", obj)
        return version

    def _follow(self, version: str) -> str:
        seconds = int(WATCH_SECONDS * (1 + random.random()))  # noqa: S311 - spreading, not secrecy
        for event, obj in self._kube.watch(self.api_version, self.kind, namespace=self.namespace,
                                           resource_version=version, timeout_seconds=seconds,
                                           label_selector=self.label_selector):
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
