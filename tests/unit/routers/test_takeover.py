"""Objects that exist before the Canary: the user's apex Service and a routing object of the same name
are taken over, as Flagger does, instead of being refused or merged with ours."""

from __future__ import annotations

from typing import Any

from canary.kube.cache import Informer
from canary.models.canary import Canary
from canary.routers import istio, services
from canary.routers.base import Router, RouterContext, RouteTarget, Weights
from canary.routers.registry import RouterRegistry
from tests.fakes import FakeKube, informer

OWNER = {"apiVersion": "canary.dev/v1alpha1", "kind": "Canary", "name": "web", "uid": "uid-web", "controller": True}


def _route(**service: Any) -> RouteTarget:
    canary = Canary.model_validate({"metadata": {"name": "web", "namespace": "shop"}, "spec": {
        "provider": "istio", "targetRef": {"name": "web"}, "service": {"port": 80, "targetPort": 9898, **service},
        "analysis": {"interval": "1m", "stepWeight": 10}}})
    return RouteTarget(canary=canary, owner=OWNER, selector=("app", "web"))


def _router(kube: FakeKube) -> tuple[Router, dict[tuple[str, str], Informer]]:
    caches = {(v, k): informer(kube, v, k) for v, k in (("v1", "Service"), istio.VIRTUAL_SERVICE,
                                                         istio.DESTINATION_RULE)}
    registry = RouterRegistry(RouterContext(kube.as_kube(), cache=lambda v, k: caches[(v, k)]), default="istio")
    return registry.for_provider("istio", where="Canary shop/web"), caches


def test_the_users_service_is_taken_over_with_our_ports_and_selector_only() -> None:
    users = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "shop"},
             "spec": {"selector": {"app": "web", "tier": "front"},
                      "ports": [{"name": "http", "port": 9898, "protocol": "TCP", "targetPort": 9898}]}}
    kube = FakeKube(users)
    router, _ = _router(kube)
    router.reconcile(_route())
    apex = kube.objects[("Service", "shop", "web")]
    assert apex["spec"]["ports"] == [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": 9898}]
    assert apex["spec"]["selector"] == {"app": "web-primary"}
    assert "patch Service web" in kube.calls, "ports replaced whole before the apply"
    kube.calls.clear()
    router.reconcile(_route())
    assert not [c for c in kube.calls if "Service" in c], "once ours, nothing more to write"


def test_a_virtual_service_of_the_same_name_is_taken_over_with_all_traffic_on_the_primary() -> None:
    users = {"apiVersion": istio.API_VERSION, "kind": "VirtualService",
             "metadata": {"name": "web", "namespace": "shop"},
             "spec": {"hosts": ["web"], "http": [{"route": [{"destination": {"host": "web"}}]}]}}
    kube = FakeKube(users)
    router, _ = _router(kube)
    route = _route()
    router.reconcile(route)
    vs = kube.objects[("VirtualService", "shop", "web")]
    assert istio.service_weights(vs, route.canary) == Weights(primary=100, canary=0)
    assert vs["metadata"]["ownerReferences"] == [OWNER]

    ours = istio.virtual_service(route, Weights(primary=70, canary=30))
    kube.apply(ours, field_manager="canary")
    router, _ = _router(kube)
    router.reconcile(route)
    assert istio.service_weights(kube.objects[("VirtualService", "shop", "web")], route.canary) == \
        Weights(primary=70, canary=30), "the canary's own object keeps its split"


def test_services_are_left_alone_when_they_already_have_our_ports() -> None:
    kube = FakeKube()
    router, caches = _router(kube)
    router.reconcile(_route())
    kube.calls.clear()
    services.reconcile(kube.as_kube(), caches[("v1", "Service")], _route())
    assert kube.calls == []
