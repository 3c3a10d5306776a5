"""The gloo router end to end: the stand-in Gloo CRDs on the real control plane, the Upstreams and the
RouteTable the router writes, and the simulator's Envoy series of the canary upstream following its
weights, so that the built-in gloo queries judge each release."""

from __future__ import annotations

import pytest

from canary.kube.client import Kube
from canary.waiting import wait_until
from tests.builders import make_deployment
from tests.e2e.canaries import (
    deployment,
    good_then_bad_release,
    image_of,
    judged_canary,
    release,
    wait_phase,
)
from tests.e2e.controllers import ControllerProcess

pytestmark = pytest.mark.usefixtures("gloo_crds")
GATEWAY = "gateway.solo.io/v1"
GLOO = "gloo.solo.io/v1"


def _weights(kube: Kube, namespace: str) -> tuple[int, int] | None:
    found = kube.get(GATEWAY, "RouteTable", "web", namespace=namespace)
    if found is None:
        return None
    destinations = {d["destination"]["upstream"]["name"]: d.get("weight", 0)
                    for d in found["spec"]["routes"][0]["routeAction"]["multi"]["destinations"]}
    return destinations[f"{namespace}-web-primaryupstream-9898"], destinations[f"{namespace}-web-canaryupstream-9898"]


def test_gloo_steps_a_route_table_over_its_upstreams_and_promotes_a_good_release_then_rolls_back_a_bad_one(
    kube: Kube, namespace: str, controller: ControllerProcess
) -> None:
    kube.create({"apiVersion": GLOO, "kind": "Upstream", "metadata": {"name": "tuned", "namespace": namespace},
                 "spec": {"loadBalancerConfig": {"roundRobin": {}}, "connectionConfig": {"maxRequestsPerConnection": 5},
                          "static": {"hosts": [{"addr": "example.com", "port": 80}]}}})
    kube.create(make_deployment("web", namespace, replicas=2, image="web:1"))
    canary = judged_canary(namespace, "gloo", stepWeight=25, maxWeight=50)
    canary["spec"]["upstreamRef"] = {"name": "tuned"}
    kube.create(canary)
    wait_phase(kube, namespace, "web", "Initialized")
    assert _weights(kube, namespace) == (100, 0)
    for role, selects in (("primary", "web-primary"), ("canary", "web")):
        upstream = kube.get(GLOO, "Upstream", f"{namespace}-web-{role}upstream-9898", namespace=namespace)
        assert upstream is not None, role
        assert upstream["spec"]["kube"] == {"serviceName": f"web-{role}", "serviceNamespace": namespace,
                                            "servicePort": 9898, "selector": {"app": selects}}
        assert upstream["spec"]["loadBalancerConfig"] == {"roundRobin": {}}, "copied from spec.upstreamRef"
        assert upstream["spec"]["connectionConfig"] == {"maxRequestsPerConnection": 5}
        assert "static" not in upstream["spec"]

    good_then_bad_release(kube, namespace, lambda: _weights(kube, namespace),
                          counted="Envoy's series of the canary upstream", prometheus=controller.stack.prometheus_url)


def test_gloo_ab_testing_sends_matching_requests_to_the_canary_and_keeps_the_rest_on_the_primary(
    kube: Kube, namespace: str, controller: ControllerProcess
) -> None:
    kube.create(make_deployment("web", namespace, replicas=2, image="web:1"))
    kube.create(judged_canary(namespace, "gloo", iterations=2, match=[{"headers": {"x-canary": {"exact": "insider"}}}]))
    wait_phase(kube, namespace, "web", "Initialized")

    release(kube, namespace, "web:2")
    wait_until(lambda: _weights(kube, namespace), lambda w: w == (0, 100),
               what="matching requests to go to the canary", timeout=60, interval=0.05)
    table = kube.get(GATEWAY, "RouteTable", "web", namespace=namespace) or {}
    matched, rest = table["spec"]["routes"]
    assert matched["matchers"] == [{"headers": [{"name": "x-canary", "value": "insider"}]}]
    assert [d["weight"] for d in rest["routeAction"]["multi"]["destinations"]] == [100, 0]
    assert "matchers" not in rest
    wait_phase(kube, namespace, "web", "Succeeded", timeout=60)
    assert image_of(deployment(kube, namespace, "web-primary")) == "web:2"
