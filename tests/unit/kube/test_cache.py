"""The informer's reads: copies for writers, the stored objects themselves for readers."""

from __future__ import annotations

from canary.kube.cache import Informer
from tests.builders import make_deployment
from tests.fakes import FakeKube, informer


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
