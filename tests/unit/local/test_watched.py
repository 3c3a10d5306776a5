from __future__ import annotations

from collections.abc import Iterator
from typing import cast

import pytest

from canary.errors import PermanentError
from canary.kube import Obj
from canary.kube.client import Kube
from canary.local.simulator import LogOnce, observe
from canary.local.watched import WatchedCluster
from canary.waiting import wait_until
from tests.builders import make_canary, make_configmap, make_deployment
from tests.unit.local.fakekube import FakeKube

NS = "shop"


@pytest.fixture
def fake() -> FakeKube:
    return FakeKube([make_configmap("a", NS), make_configmap("b", "other"), make_canary("web", NS)])


@pytest.fixture
def cluster(fake: FakeKube) -> Iterator[WatchedCluster]:
    watched = WatchedCluster(cast(Kube, fake))
    yield watched
    watched.close()


def _cached(cluster: WatchedCluster, fake: FakeKube, kind: str) -> None:
    """Read ``kind`` once (which starts its informer) and wait until its first list is loaded."""
    cluster.list_objects("v1", kind)
    wait_until(lambda: fake.lists.count(kind), bool, what=f"the informer of {kind} to list", timeout=5,
               interval=0.01)
    wait_until(lambda: len(fake.direct), lambda before: cluster.list_objects("v1", kind) is not None
               and len(fake.direct) == before, what=f"reads of {kind} from the cache", timeout=5, interval=0.01)


class TestWatchedCluster:
    def test_once_a_kind_is_listed_its_reads_ask_the_api_server_nothing(self, cluster: WatchedCluster,
                                                                        fake: FakeKube) -> None:
        _cached(cluster, fake, "ConfigMap")
        asked = list(fake.direct)
        for _ in range(100):
            assert cluster.get("v1", "ConfigMap", "a", namespace=NS) == make_configmap("a", NS)
            assert cluster.get("v1", "ConfigMap", "missing", namespace=NS) is None
            assert [o["metadata"]["name"] for o in cluster.list_objects("v1", "ConfigMap", namespace=NS)] == ["a"]
            assert len(cluster.list_objects("v1", "ConfigMap")) == 2
        assert fake.direct == asked
        assert fake.lists == ["ConfigMap"], "one list, then the watch"

    def test_until_the_first_list_is_loaded_reads_go_to_the_api_server(self, cluster: WatchedCluster,
                                                                       fake: FakeKube) -> None:
        fake.lists_wait.clear()
        try:
            assert cluster.get("v1", "ConfigMap", "a", namespace=NS) == make_configmap("a", NS)
            assert len(cluster.list_objects("v1", "ConfigMap")) == 2
            assert fake.direct == ["get ConfigMap", "list ConfigMap"]
        finally:
            fake.lists_wait.set()

    def test_changes_arrive_through_the_watch(self, cluster: WatchedCluster, fake: FakeKube) -> None:
        _cached(cluster, fake, "ConfigMap")
        fake.change("ADDED", make_configmap("c", NS))
        changed = {**make_configmap("a", NS), "data": {"k": "v"}}
        fake.change("MODIFIED", changed)
        fake.change("DELETED", make_configmap("b", "other"))

        def names() -> list[tuple[str, Obj]]:
            return sorted((o["metadata"]["name"], o.get("data", {})) for o in cluster.list_objects("v1", "ConfigMap"))

        wait_until(names, lambda seen: seen == [("a", {"k": "v"}), ("c", {})], what="the watched changes",
                   timeout=5, interval=0.01)
        assert fake.lists == ["ConfigMap"]

    def test_a_kind_the_api_server_does_not_serve_raises_and_is_looked_up_again_later(
        self, cluster: WatchedCluster, fake: FakeKube
    ) -> None:
        fake.unserved.add("HTTPRoute")
        with pytest.raises(PermanentError, match="serves no HTTPRoute"):
            cluster.get("gateway.networking.k8s.io/v1", "HTTPRoute", "web", namespace=NS)
        assert cluster.kinds() == []
        fake.unserved.discard("HTTPRoute")
        assert cluster.get("gateway.networking.k8s.io/v1", "HTTPRoute", "web", namespace=NS) is None
        assert cluster.kinds() == [("gateway.networking.k8s.io/v1", "HTTPRoute")]

    def test_a_label_selector_is_asked_of_the_api_server(self, cluster: WatchedCluster, fake: FakeKube) -> None:
        cluster.list_objects("v1", "ConfigMap", label_selector="app=web")
        assert fake.direct == ["list ConfigMap app=web"]
        assert cluster.kinds() == []


def _workloads_objects() -> list[Obj]:
    pods = [{"apiVersion": "v1", "kind": "Pod", "metadata": {
        "name": f"{deployment}-5d8f7c9b4-a{i}", "namespace": NS, "labels": {"pod-template-hash": "5d8f7c9b4"},
        "ownerReferences": [{"kind": "ReplicaSet", "name": f"{deployment}-5d8f7c9b4", "controller": True}]},
        "status": {"conditions": [{"type": "Ready", "status": "True"}]}}
        for deployment in ("web", "web-primary") for i in range(2)]
    route = {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
             "metadata": {"name": "web", "namespace": NS},
             "spec": {"rules": [{"backendRefs": [{"name": "web-primary", "port": 80, "weight": 70},
                                                 {"name": "web-canary", "port": 80, "weight": 30}]}]}}
    return [make_canary("web", NS, provider="gatewayapi"), make_canary("api", NS, provider="kubernetes"),
            make_deployment("web", NS), make_deployment("web-primary", NS), make_deployment("api-primary", NS),
            route, *pods]


def test_the_simulator_sees_through_the_caches_what_it_saw_reading_the_api_server() -> None:
    fake = FakeKube(_workloads_objects())
    direct = observe(cast(Kube, fake), rate=20, problems=LogOnce())
    assert [(w.name, w.rps, len(w.pods)) for w in direct] == [("web-primary", 14, 2), ("web", 6, 2),
                                                              ("api-primary", 20, 0)]
    cluster = WatchedCluster(cast(Kube, fake))
    try:
        wait_until(lambda: observe(cluster, rate=20, problems=LogOnce()), lambda seen: seen == direct,
                   what="the same workloads", timeout=5, interval=0.01)
        wait_until(lambda: len(fake.lists), lambda lists: lists == 4, what="Canary, Deployment, Pod and HTTPRoute "
                   "informers", timeout=5, interval=0.01)
        fake.direct.clear()
        snapshot = {k: repr(o) for k, o in fake.objects.items()}
        for _ in range(10):
            assert observe(cluster, rate=20, problems=LogOnce()) == direct
        assert fake.direct == [], "every read from the caches"
        assert {k: repr(o) for k, o in fake.objects.items()} == snapshot, "the cached objects are only read"
    finally:
        cluster.close()
