"""The canary pages' Events, live: a watch on the Events of Canaries in a namespace, while a canary page of
that namespace is open.

``feed`` follows a namespace when a canary page opens its stream and lets go when it closes; the first
page of a namespace starts an informer on its Events (``involvedObject.kind=Canary``, selected by the API
server), and the informer calls the subscribed handler (``Feed.on_event``) for each Event as it arrives,
from its watch thread. The watch is stopped ``linger`` seconds after the namespace's last page closed, so
that going from one canary page to another keeps it. While it runs, ``cached`` answers a page's Events
from it, without asking the API server.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Protocol

from canary.kube import Obj
from canary.kube.cache import Handler, Informer
from canary.kube.client import Kube

CANARY_EVENTS = "involvedObject.kind=Canary"
LINGER_SECONDS = 60.0


def informer_of(kube: Kube) -> Callable[[str], Informer]:
    """An informer of the Events of the Canaries in a namespace, not started."""
    return lambda namespace: Informer(kube, "v1", "Event", namespace=namespace, field_selector=CANARY_EVENTS)


def involves(event: Obj) -> tuple[str, str] | None:
    """(namespace, name) of the Canary the Event is about, or None when it is not about a Canary."""
    involved = event.get("involvedObject") or {}
    if involved.get("kind") != "Canary" or not involved.get("name"):
        return None
    return str(involved.get("namespace") or event["metadata"].get("namespace") or ""), str(involved["name"])


class Followed(Protocol):
    """What the feed asks of the Events' watches."""

    def subscribe(self, handler: Handler) -> None:
        """Call ``handler(type, event)`` for each Event of a followed namespace."""

    def follow(self, namespace: str) -> None:
        """A canary page of ``namespace`` opened."""

    def unfollow(self, namespace: str) -> None:
        """A canary page of ``namespace`` closed."""

    def cached(self, namespace: str, name: str) -> list[Obj] | None:
        """The Events of Canary ``namespace/name`` from the watch, or None when none is listed yet."""


class NoEvents:
    """No live Events: pages read them when they refresh."""

    def subscribe(self, handler: Handler) -> None:
        """Nothing will be called."""

    def follow(self, namespace: str) -> None:
        """Nothing to start."""

    def unfollow(self, namespace: str) -> None:
        """Nothing to stop."""

    def cached(self, namespace: str, name: str) -> list[Obj] | None:
        """Never any."""
        return None


class CanaryEvents:
    """One Event informer per namespace with an open canary page, made by ``make`` and started lazily."""

    def __init__(self, make: Callable[[str], Informer], *, linger: float = LINGER_SECONDS) -> None:
        self._make = make
        self._linger = linger
        self._lock = threading.Lock()
        self._handlers: list[Handler] = []
        self._informers: dict[str, Informer] = {}
        self._pages: dict[str, int] = {}
        self._stopping: dict[str, threading.Timer] = {}

    def subscribe(self, handler: Handler) -> None:
        """Call ``handler(type, event)`` for each Event of a followed namespace."""
        self._handlers.append(handler)

    def _notify(self, kind: str, event: Obj) -> None:
        for handler in self._handlers:
            handler(kind, event)

    def follow(self, namespace: str) -> None:
        """A canary page of ``namespace`` opened: watch its Events, unless already watched."""
        with self._lock:
            self._pages[namespace] = self._pages.get(namespace, 0) + 1
            stopping = self._stopping.pop(namespace, None)
            if stopping is not None:
                stopping.cancel()
            if namespace in self._informers:
                return
            informer = self._make(namespace)
            informer.subscribe(self._notify)
            self._informers[namespace] = informer
        informer.start()

    def unfollow(self, namespace: str) -> None:
        """A canary page of ``namespace`` closed: stop its watch once no page has it open for ``linger`` s."""
        with self._lock:
            self._pages[namespace] = self._pages.get(namespace, 1) - 1
            if self._pages[namespace] > 0:
                return
            del self._pages[namespace]
            if self._linger <= 0:
                self._stop(namespace)
                return
            timer = threading.Timer(self._linger, self._stop_if_idle, args=(namespace,))
            timer.daemon = True
            self._stopping[namespace] = timer
        timer.start()

    def _stop_if_idle(self, namespace: str) -> None:
        with self._lock:
            if namespace not in self._pages:
                self._stopping.pop(namespace, None)
                self._stop(namespace)

    def _stop(self, namespace: str) -> None:
        informer = self._informers.pop(namespace, None)
        if informer is not None:
            informer.stop()

    @property
    def watched(self) -> list[str]:
        """The namespaces whose Events are watched."""
        with self._lock:
            return sorted(self._informers)

    def cached(self, namespace: str, name: str) -> list[Obj] | None:
        """The Events of Canary ``namespace/name`` from the watch, or None while its list is not loaded."""
        with self._lock:
            informer = self._informers.get(namespace)
        if informer is None or not informer.synced:
            return None
        return [e for e in informer.peek_all(namespace) if involves(e) == (namespace, name)]

    def stop(self) -> None:
        """Stop every watch (the server stops)."""
        with self._lock:
            for timer in self._stopping.values():
                timer.cancel()
            self._stopping.clear()
            for namespace in list(self._informers):
                self._stop(namespace)
