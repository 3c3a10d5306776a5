"""The live feed: watch events reach the open streams, newest row per canary, filtered by namespace."""

from __future__ import annotations

import asyncio
import threading

from canary.dashboard.feed import Change, Feed
from canary.kube import Obj
from tests.builders import make_canary


def _canary(namespace: str, name: str, weight: int) -> Obj:
    obj = make_canary(name, namespace)
    obj["status"] = {"phase": "Progressing", "canaryWeight": weight}
    return obj


def test_a_stream_gets_the_newest_row_of_each_changed_canary_of_its_namespace() -> None:
    feed = Feed(lambda namespace: [], namespace=None)

    async def scenario() -> list[list[Change]]:
        mine, everything = feed.subscribe("shop"), feed.subscribe(None)
        def watch_thread() -> None:
            feed.on_canary("MODIFIED", _canary("shop", "web", 10))
            feed.on_canary("MODIFIED", _canary("shop", "web", 20))
            feed.on_canary("MODIFIED", _canary("other", "api", 30))
            feed.on_canary("DELETED", _canary("other", "old", 0))

        watch = threading.Thread(target=watch_thread)
        watch.start()
        watch.join()
        first = await mine.changes(timeout=5)
        quiet = await mine.changes(timeout=0.05)
        every = await everything.changes(timeout=5)
        feed.unsubscribe(mine)
        feed.unsubscribe(everything)
        return [first, quiet, every]

    first, quiet, every = asyncio.run(scenario())
    assert [(what, r["key"], r["weight"]) for what, r in first] == [("canary", "shop/web", 20)], \
        "the newest row only, of its namespace"
    assert quiet == []
    assert [r["key"] for _, r in every] == ["shop/web", "other/api", "other/old"]
    assert every[-1] == ("canary", {"key": "other/old", "deleted": True})


def test_the_first_picture_lists_the_cached_canaries_sorted() -> None:
    cached = [_canary("b", "web", 0), _canary("a", "web", 0), _canary("a", "api", 0)]
    feed = Feed(lambda namespace: [c for c in cached if namespace in (None, c["metadata"]["namespace"])],
                namespace=None)
    assert [r["key"] for r in feed.rows()] == ["a/api", "a/web", "b/web"]
    assert [r["key"] for r in feed.rows("b")] == ["b/web"]
