"""Live updates for the pages: the Canary informer's watch events, turned into rows for each open
event stream (server-sent events).

``app`` subscribes one ``Subscription`` per open page; the informer calls ``Feed.on_canary`` from its
watch thread. Nothing polls: a page learns of a change when the watch delivers it. Each subscription
keeps only the newest row per canary until its page reads them, so a burst of changes (or a slow
browser) costs one row per canary, never a growing queue.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable

from canary.dashboard import views
from canary.kube import Obj

Row = dict[str, object]


class Subscription:
    """One open stream: the rows changed since it last read, by canary, and a wake-up for its reader."""

    def __init__(self, loop: asyncio.AbstractEventLoop, namespace: str | None) -> None:
        self.namespace = namespace
        self._loop = loop
        self._pending: dict[str, Row] = {}
        self._wake = asyncio.Event()

    def offer(self, key: str, row: Row) -> None:
        """From any thread: keep ``row`` as the newest of ``key`` and wake the reader."""
        try:
            self._loop.call_soon_threadsafe(self._put, key, row)
        except RuntimeError:  # the loop closed (the server stopped) before the stream was unsubscribed
            return

    def _put(self, key: str, row: Row) -> None:
        self._pending[key] = row
        self._wake.set()

    async def changes(self, *, timeout: float) -> list[Row]:
        """The rows changed since the last call, waiting up to ``timeout`` seconds for one ([] then)."""
        try:
            await asyncio.wait_for(self._wake.wait(), timeout)
        except TimeoutError:
            return []
        self._wake.clear()
        rows, self._pending = list(self._pending.values()), {}
        return rows


class Feed:
    """Fans the Canary watch out to the open streams; ``rows`` is the list page's first picture."""

    def __init__(self, list_objects: Callable[[str | None], list[Obj]], *, namespace: str | None) -> None:
        self._list = list_objects
        self.namespace = namespace
        self._lock = threading.Lock()
        self._subscriptions: set[Subscription] = set()

    def rows(self, namespace: str | None = None) -> list[Row]:
        """Every canary shown (in ``namespace`` if given), sorted by namespace and name."""
        found = self._list(namespace or self.namespace)
        return [views.row(o) for o in sorted(found, key=views.key)]

    def subscribe(self, namespace: str | None) -> Subscription:
        """A stream of the changes (in ``namespace`` if given); call from the event loop that reads it."""
        subscription = Subscription(asyncio.get_running_loop(), namespace)
        with self._lock:
            self._subscriptions.add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        """The stream was closed."""
        with self._lock:
            self._subscriptions.discard(subscription)

    def on_canary(self, event: str, obj: Obj) -> None:
        """Informer handler: offer the canary's new row (or its removal) to the streams that show it."""
        namespace = obj["metadata"].get("namespace") or ""
        row = {"key": views.key(obj), "deleted": True} if event == "DELETED" else views.row(obj)
        with self._lock:
            subscriptions = list(self._subscriptions)
        for subscription in subscriptions:
            if subscription.namespace in (None, namespace):
                subscription.offer(str(row["key"]), row)
