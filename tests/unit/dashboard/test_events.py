"""A canary page's Events, live: a watch on the Events of Canaries in its namespace, started when the first
canary page of that namespace opens and stopped when the last closes; each Event reaches the pages of the
Canary it is about, and only those."""

from __future__ import annotations

import asyncio
import threading
from typing import cast

from canary.dashboard import views
from canary.dashboard.events import CANARY_EVENTS, CanaryEvents, informer_of, involves
from canary.dashboard.feed import EVENT, Change, Feed
from canary.kube import Obj
from canary.kube.client import Kube
from canary.waiting import wait_until
from tests.unit.local.fakekube import FakeKube


def _event(namespace: str, canary: str, reason: str, *, uid: str, kind: str = "Canary", count: int = 1) -> Obj:
    return {"apiVersion": "v1", "kind": "Event", "type": "Normal", "reason": reason, "message": f"{reason} {canary}",
            "count": count, "lastTimestamp": "2026-11-29T12:00:00Z",
            "metadata": {"name": f"{canary}.{uid}", "namespace": namespace, "uid": uid},
            "involvedObject": {"kind": kind, "name": canary, "namespace": namespace}}


def test_an_event_is_about_the_canary_its_involved_object_names() -> None:
    assert involves(_event("shop", "web", "Synced", uid="1")) == ("shop", "web")
    assert involves(_event("shop", "web", "ScalingReplicaSet", uid="2", kind="Deployment")) is None
    row = views.event_row(_event("shop", "web", "Synced", uid="1", count=3))
    assert row == {"uid": "1", "time": "2026-11-29T12:00:00Z", "type": "Normal", "reason": "Synced",
                   "message": "Synced web", "count": 3}


def _setup(existing: list[Obj]) -> tuple[FakeKube, CanaryEvents, Feed]:
    kube = FakeKube(existing)
    events = CanaryEvents(informer_of(cast(Kube, kube)), linger=0)
    feed = Feed(lambda namespace: [], namespace=None, events=events)
    events.subscribe(feed.on_event)
    return kube, events, feed


def test_no_events_are_watched_until_a_canary_page_opens_and_none_after_it_closes() -> None:
    kube, events, feed = _setup([_event("shop", "web", "Synced", uid="1")])

    async def scenario() -> None:
        assert kube.lists == [], "the list page asks nothing of Events"
        listing = feed.subscribe("shop")
        assert events.watched == [], "a list page's stream watches no Events"
        web, api = feed.subscribe("shop", "web"), feed.subscribe("shop", "api")
        assert events.watched == ["shop"], "one watch for the namespace, whatever the pages"
        await asyncio.to_thread(wait_until, lambda: events.cached("shop", "web"), lambda found: found is not None,
                                what="the Events to be listed", timeout=5)
        feed.unsubscribe(web)
        assert events.watched == ["shop"], "still a page of the namespace open"
        feed.unsubscribe(api)
        feed.unsubscribe(listing)
        assert events.watched == []

    asyncio.run(scenario())
    assert kube.lists == ["Event"]
    assert kube.field_selectors == [CANARY_EVENTS], "the API server selects the Events of Canaries"


def test_a_new_event_reaches_the_pages_of_its_canary_only_and_is_cached_for_their_refreshes() -> None:
    kube, events, feed = _setup([_event("shop", "web", "Synced", uid="1")])

    async def scenario() -> tuple[list[Change], list[Change], list[Obj] | None]:
        web, api = feed.subscribe("shop", "web"), feed.subscribe("shop", "api")
        listed = await web.changes(timeout=5)  # the first list brings the Events already there
        assert [(what, row["reason"]) for what, row in listed] == [(EVENT, "Synced")]

        def watch() -> None:
            kube.change("ADDED", _event("shop", "web", "Progressing", uid="2"))
            kube.change("ADDED", _event("shop", "web", "Deployed", uid="3", kind="Deployment"))
            kube.change("ADDED", _event("shop", "other", "Synced", uid="4"))

        threading.Thread(target=watch).start()
        arrived = await web.changes(timeout=5)
        others = await api.changes(timeout=0.3)
        cached = events.cached("shop", "web")
        feed.unsubscribe(web)
        feed.unsubscribe(api)
        return arrived, others, cached

    arrived, others, cached = asyncio.run(scenario())
    assert [(what, row["uid"], row["reason"]) for what, row in arrived] == [(EVENT, "2", "Progressing")]
    assert others == [], "another canary's page gets none of them"
    assert cached is not None
    assert sorted(e["metadata"]["uid"] for e in cached) == ["1", "2"]


def test_a_namespace_left_and_opened_again_within_the_linger_keeps_its_watch() -> None:
    kube = FakeKube([])
    events = CanaryEvents(informer_of(cast(Kube, kube)), linger=30)
    events.follow("shop")
    wait_until(lambda: events.cached("shop", "web"), lambda found: found == [], what="the Events to be listed",
               timeout=5)
    events.unfollow("shop")
    events.follow("shop")
    assert events.watched == ["shop"]
    events.stop()
    assert events.watched == []
    assert kube.lists == ["Event"], "listed once"
