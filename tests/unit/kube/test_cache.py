"""The informer's reads: copies for writers, the stored objects themselves for readers."""

from __future__ import annotations

import time

from canary.kube.cache import Informer
from tests.builders import make_deployment
from tests.fakes import FakeKube, informer
from tests.unit.local.fakekube import FakeKube as CountingKube


def _cache() -> Informer:
    return informer(FakeKube(make_deployment("web", "apps"), make_deployment("api", "apps"),
                             make_deployment("web", "other")), "apps/v1", "Deployment")


def test_get_hands_out_a_copy_that_a_caller_may_change() -> None:
    cache = _cache()
    found = cache.get("apps", "web")
    assert found is not None
    found["spec"]["replicas"] = 7
    assert (cache.peek("apps", "web") or {})["spec"]["replicas"] != 7


def test_peek_reads_without_copying_and_a_store_replaces_rather_than_edits() -> None:
    cache = _cache()
    before = cache.peek("apps", "web")
    assert before is cache.peek("apps", "web"), "no copy per read"
    newer = make_deployment("web", "apps", replicas=5)
    newer["metadata"]["resourceVersion"] = "9"
    cache.store(newer)
    assert (cache.peek("apps", "web") or {})["spec"]["replicas"] == 5
    assert before is not None
    assert before["spec"]["replicas"] != 5, "what a reader holds stays as it was"
    assert cache.peek("apps", "gone") is None


def test_peek_all_lists_one_namespace_or_all() -> None:
    cache = _cache()
    assert sorted(o["metadata"]["name"] for o in cache.peek_all("apps")) == ["api", "web"]
    assert len(cache.peek_all()) == 3



def test_a_lazy_informer_asks_nothing_until_its_first_read_and_that_read_waits_for_the_list() -> None:
    kube = CountingKube([make_deployment("web", "apps")])
    cache = Informer(kube, "apps/v1", "Deployment", lazy=True).start()  # type: ignore[arg-type]
    try:
        assert not cache.started
        assert kube.lists == [], "started, but nothing asked of the API server"
        assert cache.peek("apps", "web") is not None, "the first read waited for the list"
        assert cache.started
        assert len(kube.lists) == 1
    finally:
        cache.stop()


def test_the_first_read_of_a_kind_that_is_not_served_waits_only_until_a_deadline() -> None:
    kube = CountingKube([], unserved=["VirtualService"])
    cache = Informer(kube, "networking.istio.io/v1", "VirtualService", lazy=True,  # type: ignore[arg-type]
                     first_read_seconds=0.3).start()
    try:
        began = time.monotonic()
        assert cache.peek("apps", "web") is None
        assert cache.peek_all() == []
        assert cache.peek("apps", "web") is None
        assert time.monotonic() - began < 1.5, "readers give up at one deadline, not one per read"
        assert not cache.synced
    finally:
        cache.stop()


def test_the_cache_keeps_objects_without_managed_fields_and_kubectls_copy() -> None:
    cache = _cache()
    written = make_deployment("web", "apps")
    written["metadata"]["annotations"] = {"canary.dev/enabled": "true",
                                          "kubectl.kubernetes.io/last-applied-configuration": "{...}"}
    written["metadata"]["managedFields"] = [{"manager": "kubectl", "operation": "Apply"}]
    written["metadata"]["resourceVersion"] = "9"
    cache.store(written)
    kept = cache.peek("apps", "web") or {}
    assert "managedFields" not in kept["metadata"]
    assert kept["metadata"]["annotations"] == {"canary.dev/enabled": "true"}
    assert kept["spec"] == written["spec"]
    assert "managedFields" in written["metadata"], "the writer's own object is left as it was"


def test_the_first_list_announces_each_object_as_added_and_count_follows() -> None:
    kube = CountingKube([make_deployment("web", "apps"), make_deployment("api", "apps"),
                         make_deployment("web", "other")])
    seen: list[tuple[str, str]] = []
    cache = Informer(kube, "apps/v1", "Deployment")  # type: ignore[arg-type]
    cache.subscribe(lambda event, obj: seen.append((event, obj["metadata"]["name"])))
    cache.start()
    try:
        assert cache.wait_synced(5)
        assert sorted(seen) == [("ADDED", "api"), ("ADDED", "web"), ("ADDED", "web")]
        assert (cache.count("apps"), cache.count("other"), cache.count()) == (2, 1, 3)
    finally:
        cache.stop()
