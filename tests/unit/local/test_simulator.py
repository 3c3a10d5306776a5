from __future__ import annotations

import re
import threading
from collections import Counter
from typing import Any
from wsgiref.util import setup_testing_defaults

import pytest
from prometheus_client import CollectorRegistry
from structlog.testing import capture_logs

from canary.errors import PermanentError
from canary.kube import Obj
from canary.local.simulator import (
    ERROR_RATE,
    LATENCY_MS,
    Behaviour,
    Exporter,
    Load,
    LogOnce,
    PodsByOwner,
    Simulator,
    Workload,
    WorkloadTraffic,
    behaviour_of,
    observe,
    plan,
    ready_pods,
    run,
    split_load,
    wsgi_app,
)
from canary.models.canary import Canary
from canary.routers import apisix, gloo, kuma, skipper
from canary.routers.base import RouteTarget, Weights
from canary.waiting import wait_until
from tests.builders import make_canary, make_deployment

NS = "shop"


def _pod(name: str, *, deployment: str, template_hash: str = "5d8f7c9b4", ready: bool = True,
         terminating: bool = False) -> Obj:
    metadata: Obj = {
        "name": name, "namespace": NS, "labels": {"pod-template-hash": template_hash},
        "ownerReferences": [{"kind": "ReplicaSet", "name": f"{deployment}-{template_hash}", "controller": True}],
    }
    if terminating:
        metadata["deletionTimestamp"] = "2025-01-01T00:00:00Z"
    return {"metadata": metadata, "status": {"conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}}


def _canary(provider: str = "kubernetes") -> Canary:
    return Canary.from_object(make_canary("web", NS, provider=provider))


def _route(primary: int, canary: int) -> Obj:
    backends = [{"name": "web-primary", "port": 80, "weight": primary},
                {"name": "web-canary", "port": 80, "weight": canary}]
    return {"metadata": {"name": "web", "namespace": NS}, "spec": {"rules": [{"backendRefs": backends}]}}


def _workload(name: str = "web", *, pods: tuple[str, ...] = ("web-a-1",), rps: float = 10.0,
              behaviour: Behaviour | None = None) -> Workload:
    return Workload(namespace=NS, name=name, pods=pods, behaviour=behaviour or Behaviour(), rps=rps)


class TestBehaviour:
    def test_without_annotations_a_workload_never_fails_and_answers_in_20ms(self) -> None:
        assert behaviour_of(None, where="x") == Behaviour(error_rate=0.0, latency_ms=20.0)
        assert behaviour_of({"other": "1"}, where="x") == Behaviour(error_rate=0.0, latency_ms=20.0)

    def test_the_annotations_set_the_error_rate_and_the_latency(self) -> None:
        assert behaviour_of({ERROR_RATE: "12.5", LATENCY_MS: "300"}, where="x") == Behaviour(12.5, 300.0)

    @pytest.mark.parametrize(("annotations", "message"), [
        ({ERROR_RATE: "lots"}, "annotation sim.canary.dev/error-rate must be a number, got 'lots'"),
        ({ERROR_RATE: "101"}, "annotation sim.canary.dev/error-rate must be between 0 and 100, got '101'"),
        ({ERROR_RATE: "nan"}, "annotation sim.canary.dev/error-rate must be a finite number"),
        ({LATENCY_MS: "-1"}, "annotation sim.canary.dev/latency-ms must not be negative, got '-1'"),
    ])
    def test_a_bad_annotation_is_an_error_that_names_the_object_and_the_annotation(
        self, annotations: dict[str, str], message: str
    ) -> None:
        with pytest.raises(PermanentError, match=re.escape(f"Deployment shop/web: {message}")):
            behaviour_of(annotations, where="Deployment shop/web")


class TestSplitLoad:
    def test_an_httproute_splits_the_rate_by_its_weights(self) -> None:
        assert split_load(20, weights=Weights(primary=90, canary=10), canary_ready=True) == Load(18, 2)
        assert split_load(20, weights=Weights(primary=0, canary=100), canary_ready=True) == Load(0, 20)

    def test_a_running_canary_without_a_share_gets_the_load_testers_traffic(self) -> None:
        assert split_load(20, weights=Weights(primary=100, canary=0), canary_ready=True) == Load(20, 10)
        assert split_load(20, weights=Weights(primary=100, canary=0), canary_ready=False) == Load(20, 0)

    def test_mirrored_requests_reach_the_canary_on_top_of_its_share(self) -> None:
        assert split_load(20, weights=Weights(primary=100, canary=0, mirror=50), canary_ready=True) == Load(20, 10)
        assert split_load(20, weights=Weights(primary=100, canary=0, mirror=100), canary_ready=True) == Load(20, 20)

    def test_without_a_route_the_primary_gets_everything_and_a_ready_canary_half_as_much_again(self) -> None:
        assert split_load(20, weights=None, canary_ready=True) == Load(20, 10)

    def test_without_a_route_a_canary_without_ready_pods_gets_no_test_load(self) -> None:
        assert split_load(20, weights=None, canary_ready=False) == Load(20, 0)


class TestReadyPods:
    def test_only_ready_pods_of_the_deployments_own_replicasets_count(self) -> None:
        pods = [
            _pod("web-5d8f7c9b4-b2", deployment="web"),
            _pod("web-5d8f7c9b4-a1", deployment="web"),
            _pod("web-5d8f7c9b4-c3", deployment="web", ready=False),
            _pod("web-5d8f7c9b4-d4", deployment="web", terminating=True),
            _pod("web-primary-6c7d8e9f0-x1", deployment="web-primary", template_hash="6c7d8e9f0"),
            _pod("web-api-5d8f7c9b4-y2", deployment="web-api"),
        ]
        assert ready_pods(pods, "web") == ("web-5d8f7c9b4-a1", "web-5d8f7c9b4-b2")
        assert ready_pods(pods, "web-primary") == ("web-primary-6c7d8e9f0-x1",)

    def test_a_pod_without_an_owner_or_a_template_hash_is_nobodys(self) -> None:
        orphan = {"metadata": {"name": "web-x", "labels": {}}, "status": {"conditions": [
            {"type": "Ready", "status": "True"}]}}
        assert ready_pods([orphan], "web") == ()


class TestWorkloadTraffic:
    def test_fractions_of_requests_carry_over_between_periods(self) -> None:
        traffic = WorkloadTraffic()
        counts = [len(traffic.step(rps=2.5, seconds=1, behaviour=Behaviour(), pods=["p"])) for _ in range(4)]
        assert counts == [2, 3, 2, 3]

    @pytest.mark.parametrize(("error_rate", "rps"), [(20, 10), (20, 2.5), (1, 20), (33.3, 7), (100, 3), (0, 9)])
    def test_exactly_the_error_rate_fails_over_time(self, error_rate: float, rps: float) -> None:
        traffic = WorkloadTraffic()
        behaviour = Behaviour(error_rate=error_rate)
        codes = Counter(r.code for _ in range(100) for r in traffic.step(rps=rps, seconds=1, behaviour=behaviour,
                                                                          pods=["p"]))
        total = round(rps * 100)
        assert codes[200] + codes[500] == total
        assert codes[500] == int(total * error_rate / 100 + 1e-9)

    def test_errors_are_spread_evenly_over_the_requests(self) -> None:
        requests = WorkloadTraffic().step(rps=10, seconds=1, behaviour=Behaviour(error_rate=20), pods=["p"])
        assert [r.code for r in requests] == [200, 200, 200, 200, 500] * 2

    def test_every_pod_fails_its_share_of_requests(self) -> None:
        traffic = WorkloadTraffic()
        requests = [r for _ in range(10) for r in traffic.step(rps=20, seconds=1, behaviour=Behaviour(error_rate=5),
                                                                 pods=["a", "b"])]
        assert Counter((r.pod, r.code) for r in requests) == {("a", 200): 95, ("a", 500): 5, ("b", 200): 95,
                                                              ("b", 500): 5}

    def test_requests_go_round_robin_over_the_pods_across_periods(self) -> None:
        traffic = WorkloadTraffic()
        first = traffic.step(rps=3, seconds=1, behaviour=Behaviour(), pods=["a", "b"])
        second = traffic.step(rps=3, seconds=1, behaviour=Behaviour(), pods=["a", "b"])
        assert [r.pod for r in first + second] == ["a", "b", "a", "b", "a", "b"]

    def test_latency_varies_by_at_most_ten_percent_around_the_declared_value(self) -> None:
        requests = WorkloadTraffic().step(rps=80, seconds=1, behaviour=Behaviour(latency_ms=100), pods=["p"])
        latencies = [r.latency_ms for r in requests]
        assert min(latencies) == pytest.approx(90)
        assert max(latencies) == pytest.approx(110)
        assert sum(latencies) / len(latencies) == pytest.approx(100)

    def test_a_workload_without_ready_pods_gets_nothing_and_owes_nothing_later(self) -> None:
        traffic = WorkloadTraffic()
        assert traffic.step(rps=10, seconds=5, behaviour=Behaviour(), pods=[]) == []
        assert len(traffic.step(rps=10, seconds=1, behaviour=Behaviour(), pods=["p"])) == 10


class TestPlan:
    def test_without_a_route_the_primary_gets_the_rate_and_the_ready_target_the_test_load(self) -> None:
        target = make_deployment("web", NS, annotations={ERROR_RATE: "20"})
        primary = make_deployment("web-primary", NS)
        pods = [_pod("web-5d8f7c9b4-a1", deployment="web"),
                _pod("web-primary-6c7d8e9f0-x1", deployment="web-primary", template_hash="6c7d8e9f0")]

        workloads = plan(_canary(), target=target, primary=primary, pods=pods, weights=None, rate=20)

        assert workloads == [
            Workload(namespace=NS, name="web-primary", pods=("web-primary-6c7d8e9f0-x1",), behaviour=Behaviour(),
                     rps=20),
            Workload(namespace=NS, name="web", pods=("web-5d8f7c9b4-a1",), behaviour=Behaviour(error_rate=20),
                     rps=10),
        ]

    def test_the_routers_weights_set_the_split(self) -> None:
        workloads = plan(_canary("gatewayapi"), target=make_deployment("web", NS),
                         primary=make_deployment("web-primary", NS), pods=[], weights=Weights(70, 30), rate=20)
        assert [(w.name, w.rps) for w in workloads] == [("web-primary", 14), ("web", 6)]

    def test_a_missing_deployment_is_left_out(self) -> None:
        workloads = plan(_canary(), target=make_deployment("web", NS), primary=None, pods=[], weights=None, rate=20)
        assert [(w.name, w.rps) for w in workloads] == [("web", 0)]

    def test_a_bad_annotation_names_the_canary_and_the_deployment(self) -> None:
        target = make_deployment("web", NS, annotations={LATENCY_MS: "slow"})
        with pytest.raises(PermanentError, match=r"Canary shop/web: Deployment web: annotation sim.canary.dev/lat"):
            plan(_canary(), target=target, primary=None, pods=[], weights=None, rate=20)


class FakeCluster:
    """Objects by (kind, name); kinds in ``unserved`` raise as Kube does for a kind the server lacks."""

    def __init__(self, objects: list[Obj], *, unserved: frozenset[str] = frozenset()) -> None:
        self.objects = objects
        self.unserved = unserved
        self.reads: list[str] = []

    def _served(self, api_version: str, kind: str) -> None:
        self.reads.append(kind)
        if kind in self.unserved:
            raise PermanentError(f"the API server serves no {kind} in {api_version}")

    def get(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> Obj | None:
        self._served(api_version, kind)
        return next((o for o in self.objects if o["kind"] == kind and o["metadata"]["name"] == name), None)

    def list_objects(self, api_version: str, kind: str, *, namespace: str | None = None,
                     label_selector: str | None = None) -> list[Obj]:
        self._served(api_version, kind)
        return [o for o in self.objects if o["kind"] == kind]


def _cluster_objects(provider: str) -> list[Obj]:
    pods = [{"kind": "Pod", **_pod("web-5d8f7c9b4-a1", deployment="web")},
            {"kind": "Pod", **_pod("web-primary-6c7d8e9f0-x1", deployment="web-primary", template_hash="6c7d8e9f0")}]
    return [make_canary("web", NS, provider=provider), make_deployment("web", NS),
            make_deployment("web-primary", NS), *pods]


class TestObserve:
    def test_without_the_canary_kind_there_is_nothing_to_simulate(self) -> None:
        assert observe(FakeCluster([], unserved=frozenset({"Canary"})), rate=20, problems=LogOnce()) == []

    def test_the_httproute_weights_split_the_load(self) -> None:
        route = {"kind": "HTTPRoute", **_route(90, 10)}
        workloads = observe(FakeCluster([*_cluster_objects("gatewayapi"), route]), rate=20, problems=LogOnce())
        assert [(w.name, w.rps) for w in workloads] == [("web-primary", 18), ("web", 2)]

    def test_without_the_gateway_api_crds_a_gatewayapi_canary_is_simulated_as_having_no_route(self) -> None:
        cluster = FakeCluster(_cluster_objects("gatewayapi"), unserved=frozenset({"HTTPRoute"}))
        workloads = observe(cluster, rate=20, problems=LogOnce())
        assert [(w.name, w.rps) for w in workloads] == [("web-primary", 20), ("web", 10)]

    def test_a_kubernetes_canary_reads_no_route(self) -> None:
        cluster = FakeCluster(_cluster_objects("kubernetes"))
        observe(cluster, rate=20, problems=LogOnce())
        assert "HTTPRoute" not in cluster.reads

    def test_the_pods_of_a_namespace_are_read_once_a_pass_whatever_the_number_of_canaries(self) -> None:
        objects = [*_cluster_objects("kubernetes"), make_canary("api", NS, provider="kubernetes"),
                   make_deployment("api-primary", NS),
                   {"kind": "Pod", **_pod("api-primary-7f6e5d4c3-z9", deployment="api-primary",
                                          template_hash="7f6e5d4c3")}]
        cluster = FakeCluster(objects)
        workloads = observe(cluster, rate=20, problems=LogOnce())
        assert cluster.reads.count("Pod") == 1
        assert [(w.name, w.pods) for w in workloads] == [
            ("web-primary", ("web-primary-6c7d8e9f0-x1",)), ("web", ("web-5d8f7c9b4-a1",)),
            ("api-primary", ("api-primary-7f6e5d4c3-z9",))]

    def test_pods_are_handed_to_the_workloads_whose_replicaset_or_daemonset_controls_them(self) -> None:
        daemon = _pod("agent-x1", deployment="agent")
        daemon["metadata"]["ownerReferences"] = [{"kind": "DaemonSet", "name": "agent", "controller": True}]
        not_controller = _pod("web-5d8f7c9b4-b2", deployment="web")
        not_controller["metadata"]["ownerReferences"][0]["controller"] = False
        pods = [_pod("web-5d8f7c9b4-a1", deployment="web"), _pod("web-primary-6c7d8e9f0-x1", deployment="web-primary",
                                                                template_hash="6c7d8e9f0"),
                daemon, not_controller]
        by_owner = PodsByOwner(FakeCluster([{"kind": "Pod", **pod} for pod in pods]))
        assert [p["metadata"]["name"] for p in by_owner.of(NS, ["web"])] == ["web-5d8f7c9b4-a1"]
        assert [p["metadata"]["name"] for p in by_owner.of(NS, ["web-primary", "agent"])] == [
            "web-primary-6c7d8e9f0-x1", "agent-x1"]
        assert by_owner.of(NS, ["other"]) == []

    def test_a_canary_with_a_bad_annotation_is_skipped_and_the_problem_logged_once(self) -> None:
        objects = _cluster_objects("kubernetes")
        objects[1]["spec"]["template"]["metadata"]["annotations"] = {ERROR_RATE: "200"}
        problems = LogOnce()
        with capture_logs() as logs:
            for _ in range(3):
                assert observe(FakeCluster(objects), rate=20, problems=problems) == []
        assert [entry["event"] for entry in logs] == [
            "Canary shop/web is not simulated: Canary shop/web: Deployment web: annotation sim.canary.dev/error-rate "
            "must be between 0 and 100, got '200'"]


def _samples(registry: CollectorRegistry, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    return {tuple(sorted(s.labels.items())): s.value for metric in registry.collect() for s in metric.samples
            if s.name == name}


class TestSimulator:
    def test_requests_are_counted_in_istio_and_pod_metrics(self) -> None:
        registry = CollectorRegistry()
        simulator = Simulator(Exporter(registry))
        canary = _workload(pods=("web-a-1", "web-a-2"), behaviour=Behaviour(error_rate=20, latency_ms=40))

        for _ in range(3):
            simulator.tick([canary], seconds=1)

        istio = {"reporter": "destination", "destination_workload": "web", "destination_workload_namespace": NS}
        assert registry.get_sample_value("istio_requests_total", {**istio, "response_code": "200"}) == 24
        assert registry.get_sample_value("istio_requests_total", {**istio, "response_code": "500"}) == 6
        assert registry.get_sample_value("istio_request_duration_milliseconds_bucket",
                                         {**istio, "response_code": "200", "le": "50.0"}) == 24
        assert registry.get_sample_value("istio_request_duration_milliseconds_bucket",
                                         {**istio, "response_code": "200", "le": "25.0"}) == 0
        pods = _samples(registry, "http_request_duration_seconds_count")
        assert pods == {
            (("kubernetes_namespace", NS), ("kubernetes_pod_name", "web-a-1"), ("status", "200")): 12,
            (("kubernetes_namespace", NS), ("kubernetes_pod_name", "web-a-1"), ("status", "500")): 3,
            (("kubernetes_namespace", NS), ("kubernetes_pod_name", "web-a-2"), ("status", "200")): 12,
            (("kubernetes_namespace", NS), ("kubernetes_pod_name", "web-a-2"), ("status", "500")): 3,
        }

    def test_series_of_a_pod_or_a_workload_that_went_away_are_removed(self) -> None:
        registry = CollectorRegistry()
        simulator = Simulator(Exporter(registry))
        simulator.tick([_workload(pods=("web-a-1", "web-a-2")), _workload("web-primary", pods=("web-primary-b-1",))],
                       seconds=1)

        simulator.tick([_workload(pods=("web-a-2",))], seconds=1)

        assert {dict(k)["kubernetes_pod_name"] for k in _samples(registry, "http_request_duration_seconds_count")} \
            == {"web-a-2"}
        assert {dict(k)["destination_workload"] for k in _samples(registry, "istio_requests_total")} == {"web"}


def _skipper_objects(canary_weight: int) -> list[Obj]:
    main = {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "web", "namespace": NS},
            "spec": {"rules": [{"host": "web.example.com", "http": {"paths": [
                {"path": "/", "pathType": "Prefix",
                 "backend": {"service": {"name": "web", "port": {"number": 80}}}}]}}]}}
    canary = make_canary("web", NS, provider="skipper", ingressRef={"name": "web"})
    weights = Weights(100 - canary_weight, canary_weight)
    return [canary, *_cluster_objects("skipper")[1:], main,
            skipper.build(Canary.from_object(canary), main, weights, owner={})]


class TestRouterSeries:
    def test_a_skipper_canary_is_counted_on_the_canary_ingress_routes_flaggers_query_selects(self) -> None:
        registry = CollectorRegistry()
        workloads = observe(FakeCluster(_skipper_objects(25)), rate=20, problems=LogOnce())
        Simulator(Exporter(registry)).tick(workloads, seconds=1)

        served = _samples(registry, "skipper_serve_route_duration_seconds_count")
        routes = {dict(k)["route"]: v for k, v in served.items()}
        assert routes == {"kube_shop__web_canary__web_example_com_____web_primary": 15,
                          "kube_shop__web_canary__web_example_com_____web_canary": 5}
        assert registry.get_sample_value("skipper_response_duration_seconds_bucket", {
            "code": "200", "method": "GET", "route": "kube_shop__web_canary__web_example_com_____web_canary",
            "le": "+Inf"}) == 5

    def test_a_switched_off_canary_ingress_sends_the_primarys_requests_through_the_users_route(self) -> None:
        workloads = observe(FakeCluster(_skipper_objects(0)), rate=20, problems=LogOnce())
        assert [(w.name, w.skipper_route) for w in workloads] == [
            ("web-primary", "kube_shop__web__web_example_com_____web"), ("web", "")]

    def test_a_linkerd_canary_is_counted_as_linkerds_inbound_responses_and_removed_when_gone(self) -> None:
        registry = CollectorRegistry()
        simulator = Simulator(Exporter(registry))
        workloads = plan(_canary("linkerd"), target=make_deployment("web", NS, annotations={ERROR_RATE: "20"}),
                         primary=None, pods=[_pod("web-5d8f7c9b4-a1", deployment="web")], weights=Weights(50, 50),
                         rate=20)
        simulator.tick(workloads, seconds=1)

        inbound = {"namespace": NS, "deployment": "web", "direction": "inbound"}
        assert registry.get_sample_value("response_total", {**inbound, "status_code": "200",
                                                            "classification": "success"}) == 8
        assert registry.get_sample_value("response_total", {**inbound, "status_code": "500",
                                                            "classification": "failure"}) == 2
        assert registry.get_sample_value("response_latency_ms_bucket", {**inbound, "status_code": "200",
                                                                        "le": "30.0"}) == 8
        simulator.tick([], seconds=1)
        assert _samples(registry, "response_total") == {}

    def test_linkerd_through_gateway_api_a_service_parent_is_counted_by_linkerds_proxies_too(self) -> None:
        body = make_canary("web", NS, provider="gatewayapi:v1beta1")
        body["spec"]["service"]["gatewayRefs"] = [{"group": "core", "kind": "Service", "name": "web", "port": 80}]
        in_mesh = plan(Canary.from_object(body), target=make_deployment("web", NS), primary=None,
                       pods=[_pod("web-5d8f7c9b4-a1", deployment="web")], weights=Weights(50, 50), rate=20)
        assert [w.linkerd for w in in_mesh] == [True]
        body["spec"]["service"]["gatewayRefs"] = [{"name": "public", "namespace": "gateways"}]
        behind_a_gateway = plan(Canary.from_object(body), target=make_deployment("web", NS), primary=None,
                                pods=[], weights=Weights(50, 50), rate=20)
        assert [w.linkerd for w in behind_a_gateway] == [False]

    def test_a_gloo_canary_is_counted_on_envoys_clusters_of_its_upstreams(self) -> None:
        registry = CollectorRegistry()
        canary = Canary.from_object(make_canary("web", NS, provider="gloo"))
        table = gloo.build(RouteTarget(canary=canary, owner={}, selector=("app", "web")), Weights(75, 25))
        workloads = observe(FakeCluster([*_cluster_objects("gloo"), {"kind": "RouteTable", **table}]), rate=20,
                            problems=LogOnce())
        Simulator(Exporter(registry)).tick(workloads, seconds=1)

        clusters = {dict(k)["envoy_cluster_name"]: v
                    for k, v in _samples(registry, "envoy_cluster_upstream_rq").items()}
        assert clusters == {"shop-web-primaryupstream-9898_shop": 15, "shop-web-canaryupstream-9898_shop": 5}

    def test_a_kuma_canary_is_counted_by_its_proxies_under_their_kuma_services(self) -> None:
        registry = CollectorRegistry()
        canary = Canary.from_object(make_canary("web", NS, provider="kuma"))
        route = {"kind": "TrafficRoute", **kuma.build(canary, Weights(50, 50))}
        workloads = observe(FakeCluster([*_cluster_objects("kuma"), route]), rate=20, problems=LogOnce())
        simulator = Simulator(Exporter(registry))
        simulator.tick(workloads, seconds=1)

        series = {(dict(k)["service"], dict(k)["envoy_cluster_name"]): v
                  for k, v in _samples(registry, "envoy_cluster_upstream_rq").items()}
        assert series == {("web-primary_shop_svc_9898", "localhost:9898"): 10,
                          ("web-canary_shop_svc_9898", "localhost:9898"): 10}
        simulator.tick([], seconds=1)
        assert _samples(registry, "envoy_cluster_upstream_rq") == {}

    def test_an_apisix_canary_is_counted_on_the_canary_route_for_both_backends(self) -> None:
        registry = CollectorRegistry()
        body = make_canary("web", NS, provider="apisix", routeRef={"name": "web"})
        main = {"apiVersion": "apisix.apache.org/v2", "kind": "ApisixRoute",
                "metadata": {"name": "web", "namespace": NS},
                "spec": {"http": [{"name": "rule1", "match": {"paths": ["/*"]},
                                   "backends": [{"serviceName": "web", "servicePort": 9898}]}]}}
        route = apisix.build(Canary.from_object(body), main, Weights(80, 20), owner={})
        workloads = observe(FakeCluster([body, *_cluster_objects("apisix")[1:], main, route]), rate=20,
                            problems=LogOnce())
        simulator = Simulator(Exporter(registry))
        simulator.tick(workloads, seconds=1)

        nodes = {(dict(k)["route"], dict(k)["node"]): v for k, v in _samples(registry, "apisix_http_status").items()}
        assert nodes == {("shop_web-web-canary_rule1", "web-primary"): 16,
                         ("shop_web-web-canary_rule1", "web-canary"): 4}
        assert registry.get_sample_value("apisix_http_latency_bucket", {
            "type": "request", "route": "shop_web-web-canary_rule1", "node": "web-canary", "le": "25.0"}) == 4
        simulator.tick([], seconds=1)
        assert _samples(registry, "apisix_http_status") == {}


class TestWsgiApp:
    @staticmethod
    def _get(path: str) -> tuple[str, bytes]:
        registry = CollectorRegistry()
        Simulator(Exporter(registry)).tick([_workload()], seconds=1)
        environ: dict[str, Any] = {"PATH_INFO": path}
        setup_testing_defaults(environ)
        statuses = []
        body = b"".join(wsgi_app(registry)(environ, lambda status, _headers: statuses.append(status)))
        return statuses[0], body

    def test_metrics_are_served_from_the_simulators_registry(self) -> None:
        status, body = self._get("/metrics")
        assert status == "200 OK"
        assert b'istio_requests_total{destination_workload="web"' in body

    def test_healthz_answers_ok_and_other_paths_are_not_found(self) -> None:
        assert self._get("/healthz") == ("200 OK", b"ok\n")
        assert self._get("/other")[0] == "404 Not Found"


class _HangingCluster(FakeCluster):
    """Reads hang once ``hang`` is set, until ``release`` is (as a restarting API server holds them)."""

    def __init__(self, objects: list[Obj]) -> None:
        super().__init__(objects)
        self.hang, self.release, self.hanging = threading.Event(), threading.Event(), threading.Event()

    def _served(self, api_version: str, kind: str) -> None:
        if self.hang.is_set():
            self.hanging.set()
            self.release.wait(10)
        super()._served(api_version, kind)


class TestRun:
    def test_traffic_goes_on_with_the_last_view_while_a_read_hangs(self) -> None:
        registry = CollectorRegistry()
        cluster = _HangingCluster(_cluster_objects("kubernetes"))
        stop = threading.Event()
        loop = threading.Thread(target=run, args=(cluster, Simulator(Exporter(registry))),
                                kwargs={"rate": 20.0, "period": 0.05, "stop": stop})

        def counted() -> float:
            return sum(_samples(registry, "http_request_duration_seconds_count").values())

        loop.start()
        try:
            wait_until(counted, lambda total: total > 0, what="the first requests", timeout=5, interval=0.05)
            cluster.hang.set()
            wait_until(cluster.hanging.is_set, bool, what="a read to hang", timeout=5, interval=0.05)
            before = counted()
            # The data plane keeps serving while the control plane does not answer.
            wait_until(counted, lambda total: total > before + 5, what="requests while the read hangs", timeout=5,
                       interval=0.05)
        finally:
            stop.set()
            cluster.release.set()
            loop.join(5)
