"""revertOnDeletion on every router: deleting the Canary hands the traffic back to the target.

One namespace, one controller and one target per router, run together: each Canary is
initialised (its target scaled to zero, the apex Service on the primary), then deleted; the
controller must bring the target back, point the apex Service at the target's pods and only then
let the Canary go, whatever router wrote its routes.
"""

from __future__ import annotations

from functools import partial

import pytest

from canary.kube import Obj
from canary.kube.client import Kube
from canary.waiting import wait_until
from tests.builders import make_canary, make_deployment
from tests.e2e.canaries import deployment, wait_phase
from tests.e2e.controllers import ControllerProcess

pytestmark = pytest.mark.usefixtures("istio_crds", "contour_crds", "traefik_crds", "smi_crds", "gateway_api_crds",
                                     "gloo_crds", "apisix_crds", "kuma_crds")
CANARY = "canary.dev/v1alpha1"
ROUTERS = ("gatewayapi", "istio", "nginx", "contour", "traefik", "skipper", "linkerd", "gloo", "apisix", "kuma")


def _ingress(name: str, namespace: str, ingress_class: str) -> Obj:
    return {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
            "metadata": {"name": f"{name}-ingress", "namespace": namespace},
            "spec": {"ingressClassName": ingress_class, "rules": [{"host": f"{name}.example.com", "http": {
                "paths": [{"path": "/", "pathType": "Prefix",
                           "backend": {"service": {"name": name, "port": {"number": 9898}}}}]}}]}}


def _objects(router: str, namespace: str) -> list[Obj]:
    name = f"{router}-app"
    canary = make_canary(name, namespace, provider=router, revertOnDeletion=True)
    objects = [make_deployment(name, namespace, replicas=2, image=f"{name}:1")]
    if router in ("nginx", "skipper"):
        objects.append(_ingress(name, namespace, router))
        canary["spec"]["ingressRef"] = {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
                                        "name": f"{name}-ingress"}
    if router == "apisix":
        objects.append({"apiVersion": "apisix.apache.org/v2", "kind": "ApisixRoute",
                        "metadata": {"name": f"{name}-route", "namespace": namespace},
                        "spec": {"http": [{"name": "all", "match": {"paths": ["/*"]},
                                           "backends": [{"serviceName": name, "servicePort": 9898}]}]}})
        canary["spec"]["routeRef"] = {"apiVersion": "apisix.apache.org/v2", "kind": "ApisixRoute",
                                      "name": f"{name}-route"}
    return [*objects, canary]


def test_deleting_a_canary_gives_the_traffic_back_to_the_target_on_every_router(
    kube: Kube, namespace: str, controller: ControllerProcess
) -> None:
    for router in ROUTERS:
        for obj in _objects(router, namespace):
            kube.create(obj)
    for router in ROUTERS:
        wait_phase(kube, namespace, f"{router}-app", "Initialized", timeout=90)
        assert deployment(kube, namespace, f"{router}-app")["spec"]["replicas"] == 0

    for router in ROUTERS:
        kube.delete(CANARY, "Canary", f"{router}-app", namespace=namespace)
    for router in ROUTERS:
        name = f"{router}-app"
        wait_until(partial(kube.get, CANARY, "Canary", name, namespace=namespace), lambda c: c is None,
                   what=f"Canary {name} ({router}) to be deleted after the revert", timeout=60)
        assert deployment(kube, namespace, name)["spec"]["replicas"] == 2, f"{router}: the target is back"
        apex = kube.get("v1", "Service", name, namespace=namespace)
        assert apex is not None, f"{router}: the apex Service is kept"
        assert apex["spec"]["selector"] == {"app": name}, f"{router}: the apex Service selects the target's pods"
        assert not apex["metadata"].get("ownerReferences"), f"{router}: the apex Service outlives the Canary"
    assert kube.get("kuma.io/v1alpha1", "TrafficRoute", "kuma-app") is None, "kuma: no cluster-scoped route is left"
