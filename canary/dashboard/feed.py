"""Live updates for the pages: the Canary informer's watch events, turned into rows for each open
event stream (server-sent events), and a canary page's own Kubernetes Events as they arrive.

``app`` subscribes one ``Subscription`` per open page; the informer calls ``Feed.on_canary`` from its
watch thread, and the Events' watch (``events``, started while a canary page is open) ``Feed.on_event``.
Nothing polls: a page learns of a change when the watch delivers it. Each subscription keeps only the
newest row per canary (and per Event) until its page reads them, so a burst of changes (or a slow
browser) costs one row per canary, never a growing queue.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable

from canary.dashboard import views
from canary.dashboard.events import Followed, NoEvents, involves
from canary.kube import Obj

Row = dict[str, object]
CANARY, EVENT = "canary", "event"
"""What a row is: a canary's list row, or one of its Events (the server-sent event's name)."""
Change = tuple[str, Row]


class Subscription:
    """One open stream: the rows changed since it last read, by canary (and by Event), and a wake-up for its
    reader. ``canary`` is the key of the canary page that opened it, which also gets that canary's Events."""

    def __init__(self, loop: asyncio.AbstractEventLoop, namespace: str | None, canary: str | None = None) -> None:
        self.namespace = namespace
        self.canary = canary
        self._loop = loop
        self._pending: dict[tuple[str, str], Row] = {}
        self._wake = asyncio.Event()

    def offer(self, what: str, key: str, row: Row) -> None:
        """From any thread: keep ``row`` as the newest of ``key`` (a canary, or an Event's uid) and wake the
        reader."""
        try:
            self._loop.call_soon_threadsafe(self._put, (what, key), row)
        except RuntimeError:  # the loop closed (the server stopped) before the stream was unsubscribed
            return

    def _put(self, key: tuple[str, str], row: Row) -> None:
        self._pending[key] = row
        self._wake.set()

    async def changes(self, *, timeout: float) -> list[Change]:
        """The rows changed since the last call, each with what it is, waiting up to ``timeout`` seconds for
        one ([] then)."""
        try:
            await asyncio.wait_for(self._wake.wait(), timeout)
        except TimeoutError:
            return []
        self._wake.clear()
        rows, self._pending = [(what, row) for (what, _), row in self._pending.items()], {}
        return rows


class Feed:
    """Fans the Canary watch (and the Events' watch) out to the open streams; ``rows`` is the list page's first
    picture."""

    def __init__(self, list_objects: Callable[[str | None], list[Obj]], *, namespace: str | None,
                 events: Followed | None = None) -> None:
        self._list = list_objects
        self.namespace = namespace
        self.events = events or NoEvents()
        self._lock = threading.Lock()
        self._subscriptions: set[Subscription] = set()

    def rows(self, namespace: str | None = None) -> list[Row]:
        """Every canary shown (in ``namespace`` if given), sorted by namespace and name."""
        found = self._list(namespace or self.namespace)
        return [views.row(o) for o in sorted(found, key=views.key)]

    def subscribe(self, namespace: str | None, canary: str | None = None) -> Subscription:
        """A stream of the changes (in ``namespace`` if given), and of the Events of Canary ``namespace/canary``
        if given (which watches them while it is open); call from the event loop that reads it."""
        key = f"{namespace}/{canary}" if namespace and canary else None
        subscription = Subscription(asyncio.get_running_loop(), namespace, key)
        with self._lock:
            self._subscriptions.add(subscription)
        if namespace and key:
            self.events.follow(namespace)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        """The stream was closed."""
        with self._lock:
            if subscription not in self._subscriptions:
                return
            self._subscriptions.discard(subscription)
        if subscription.namespace and subscription.canary:
            self.events.unfollow(subscription.namespace)

    def on_canary(self, event: str, obj: Obj) -> None:
        """Informer handler: offer the canary's new row (or its removal) to the streams that show it."""
        namespace = obj["metadata"].get("namespace") or ""
        row = {"key": views.key(obj), "deleted": True} if event == "DELETED" else views.row(obj)
        with self._lock:
            subscriptions = list(self._subscriptions)
        for subscription in subscriptions:
            if subscription.namespace in (None, namespace):
                subscription.offer(CANARY, str(row["key"]), row)

    def on_event(self, event: str, obj: Obj) -> None:
        """Events' watch handler: offer a new or updated Event to the pages of the Canary it is about (an Event
        deleted, at the end of its time to live, stays on the page until it reloads)."""
        about = involves(obj)
        if event == "DELETED" or about is None:
            return
        key = "/".join(about)
        row = views.event_row(obj)
        with self._lock:
            subscriptions = [s for s in self._subscriptions if s.canary == key]
        for subscription in subscriptions:
            subscription.offer(EVENT, str(row["uid"]), row)
