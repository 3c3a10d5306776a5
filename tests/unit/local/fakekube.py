"""A stand-in for ``Kube`` with the calls an informer and the simulator make, counting them."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator

from canary.errors import PermanentError
from canary.kube import Obj


class FakeKube:
    """Objects by kind, namespace and name; kinds in ``unserved`` raise as Kube does for a kind the server lacks.

    ``direct`` records the reads a caller made itself, ``lists`` the lists informers made (and
    ``field_selectors`` their field selectors, which the fake does not apply). While
    ``lists_wait`` is clear, informers' lists wait (as a slow API server would). ``change`` updates an
    object and sends the event to the watches.
    """

    def __init__(self, objects: Iterable[Obj], *, unserved: Iterable[str] = ()) -> None:
        self.objects = {self._key(o): o for o in objects}
        self.unserved = set(unserved)
        self.direct: list[str] = []
        self.lists: list[str] = []
        self.field_selectors: list[str | None] = []
        self.lists_wait = threading.Event()
        self.lists_wait.set()
        self._events: dict[str, list[tuple[str, Obj]]] = {}
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)

    @staticmethod
    def _key(obj: Obj) -> tuple[str, str, str]:
        return obj["kind"], obj["metadata"].get("namespace") or "", obj["metadata"]["name"]

    def _served(self, api_version: str, kind: str) -> None:
        if kind in self.unserved:
            raise PermanentError(f"the API server serves no {kind} in {api_version}")

    def _of(self, kind: str, namespace: str | None) -> list[Obj]:
        with self._lock:
            return [o for (k, ns, _), o in self.objects.items() if k == kind and namespace in (None, ns)]

    def change(self, event: str, obj: Obj) -> None:
        """Store (or for DELETED, remove) ``obj`` and tell the watches of its kind."""
        with self._lock:
            if event == "DELETED":
                self.objects.pop(self._key(obj), None)
            else:
                self.objects[self._key(obj)] = obj
            self._events.setdefault(obj["kind"], []).append((event, obj))
            self._changed.notify_all()

    def is_namespaced(self, api_version: str, kind: str) -> bool:
        self._served(api_version, kind)
        return True

    def get(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> Obj | None:
        self._served(api_version, kind)
        self.direct.append(f"get {kind}")
        with self._lock:
            return self.objects.get((kind, namespace or "", name))

    def list_objects(self, api_version: str, kind: str, *, namespace: str | None = None,
                     label_selector: str | None = None) -> list[Obj]:
        self._served(api_version, kind)
        self.direct.append(f"list {kind}" + (f" {label_selector}" if label_selector else ""))
        return self._of(kind, namespace)

    def list_with_version(self, api_version: str, kind: str, *, namespace: str | None = None,
                          label_selector: str | None = None,
                          field_selector: str | None = None) -> tuple[list[Obj], str]:
        self._served(api_version, kind)
        self.lists_wait.wait(10)
        with self._lock:
            self.lists.append(kind)
            self.field_selectors.append(field_selector)
            self._events[kind] = []
        return self._of(kind, namespace), "1"

    def watch(self, api_version: str, kind: str, *, resource_version: str, namespace: str | None = None,
              timeout_seconds: int = 60, label_selector: str | None = None,
              field_selector: str | None = None) -> Iterator[tuple[str, Obj]]:
        with self._changed:  # a watch call that ends soon when nothing happens, so a stopped informer ends
            self._changed.wait_for(lambda: bool(self._events.get(kind)), timeout=0.05)
            events, self._events[kind] = self._events.get(kind, []), []
        yield from events
