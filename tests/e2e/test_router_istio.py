"""The istio router end to end: Istio's own CRDs on the real control plane, a controller process, and
the simulator's istio_requests_total following the VirtualService's weights, so that the
built-in istio queries judge each release as they would in a mesh."""

from __future__ import annotations

from typing import Any

import pytest

from canary.kube import Obj
from canary.kube.client import Kube
from canary.waiting import wait_until
from tests.builders import make_deployment
from tests.e2e.canaries import (
    canary_status,
    deployment,
    follow_release,
    image_of,
    judged_canary,
    release,
    wait_phase,
)
from tests.e2e.controllers import ControllerProcess

pytestmark = pytest.mark.usefixtures("istio_crds")
ISTIO = "networking.istio.io/v1"


def _virtual_service(kube: Kube, namespace: str) -> Obj | None:
    return kube.get(ISTIO, "VirtualService", "web", namespace=namespace)


def _weights(kube: Kube, namespace: str) -> tuple[int, int] | None:
    """(primary, canary) of the route that sends traffic to the canary, read from the API server."""
    vs = _virtual_service(kube, namespace)
    if vs is None:
        return None
    for rule in vs["spec"].get("http") or []:
        found = {d["destination"]["host"]: d.get("weight", 0) for d in rule["route"]}
        if "web-canary" in found:
            return found["web-primary"], found["web-canary"]
    return None


def _canary(namespace: str, **analysis: Any) -> Obj:
    body = judged_canary(namespace, "istio", **analysis)
    body["spec"]["service"] = {"port": 9898, "hosts": ["web.example.com"], "gateways": ["public/gateway", "mesh"],
                               "trafficPolicy": {"tls": {"mode": "ISTIO_MUTUAL"}}, "timeout": "30s"}
    return body


def test_istio_initialises_a_virtual_service_and_destination_rules_then_promotes_a_good_release(
    kube: Kube, namespace: str, controller: ControllerProcess
) -> None:
    kube.create(make_deployment("web", namespace, replicas=2, image="web:1"))
    kube.create(_canary(namespace, stepWeight=20, maxWeight=60))
    wait_phase(kube, namespace, "web", "Initialized")

    vs = _virtual_service(kube, namespace)
    assert vs is not None
    assert vs["metadata"]["ownerReferences"][0]["kind"] == "Canary"
    assert vs["spec"]["hosts"] == ["web.example.com", "web"]
    assert vs["spec"]["gateways"] == ["public/gateway", "mesh"]
    assert vs["spec"]["http"][0]["timeout"] == "30s"
    assert _weights(kube, namespace) == (100, 0)
    for host in ("web-primary", "web-canary"):
        rule = kube.get(ISTIO, "DestinationRule", host, namespace=namespace)
        assert rule is not None
        assert rule["spec"] == {"host": host, "trafficPolicy": {"tls": {"mode": "ISTIO_MUTUAL"}}}

    release(kube, namespace, "web:2")
    seen, phase = follow_release(kube, namespace, lambda: _weights(kube, namespace))
    assert phase == "Succeeded", canary_status(kube, namespace, "web")
    assert seen == [(100, 0), (80, 20), (60, 40), (40, 60), (100, 0)]
    assert image_of(deployment(kube, namespace, "web-primary")) == "web:2"
    judged = {r["name"]: r for r in canary_status(kube, namespace, "web")["analysis"]}
    assert judged["request-success-rate"]["value"] == 100, "istio_requests_total followed the VirtualService"


def test_istio_rolls_a_bad_release_back_to_the_primary(
    kube: Kube, namespace: str, controller: ControllerProcess
) -> None:
    kube.create(make_deployment("web", namespace, replicas=2, image="web:1"))
    kube.create(_canary(namespace, stepWeight=20, maxWeight=60))
    wait_phase(kube, namespace, "web", "Initialized")

    kube.apply(make_deployment("web", namespace, replicas=2, image="web:2",
                               annotations={"sim.canary.dev/error-rate": "30"}), field_manager="test")
    seen, phase = follow_release(kube, namespace, lambda: _weights(kube, namespace))
    assert phase == "Failed"
    assert seen[-1] == (100, 0)
    assert max(canary for _, canary in seen) >= 20, "the canary had traffic before it was judged"
    failing = [r for r in canary_status(kube, namespace, "web")["analysis"] if r["verdict"] != "pass"]
    assert failing[-1]["name"] == "request-success-rate"
    assert image_of(deployment(kube, namespace, "web-primary")) == "web:1"


def test_istio_ab_testing_routes_matching_requests_to_the_canary(
    kube: Kube, namespace: str, controller: ControllerProcess
) -> None:
    kube.create(make_deployment("web", namespace, replicas=2, image="web:1"))
    match = [{"headers": {"x-canary": {"exact": "insider"}}}]
    kube.create(_canary(namespace, iterations=2, match=match))
    wait_phase(kube, namespace, "web", "Initialized")

    release(kube, namespace, "web:2")
    wait_until(lambda: _weights(kube, namespace), lambda w: w == (0, 100),
               what="matching requests to be routed to the canary", timeout=60, interval=0.05)
    vs = _virtual_service(kube, namespace)
    assert vs is not None
    first, rest = vs["spec"]["http"]
    assert first["match"] == [{"headers": {"x-canary": {"exact": "insider"}}}]
    assert rest["route"] == [{"destination": {"host": "web-primary"}, "weight": 100}]
    wait_phase(kube, namespace, "web", "Succeeded", timeout=60)
    assert image_of(deployment(kube, namespace, "web-primary")) == "web:2"


def test_a_field_the_istio_router_does_not_implement_is_refused_by_name(
    kube: Kube, namespace: str, controller: ControllerProcess
) -> None:
    kube.create(make_deployment("web", namespace, replicas=1, image="web:1"))
    body = _canary(namespace, stepWeight=20)
    body["spec"]["service"]["gatewayRefs"] = [{"name": "public"}]
    kube.create(body)
    ready = wait_until(lambda: canary_status(kube, namespace, "web").get("conditions", []),
                       lambda found: any(c.get("reason") == "UnsupportedField" for c in found),
                       what="the UnsupportedField condition", timeout=30)
    message = next(c["message"] for c in ready if c["type"] == "Ready")
    assert "spec.service.gatewayRefs: not implemented by the istio router" in message
    assert kube.get("apps/v1", "Deployment", "web-primary", namespace=namespace) is None, "nothing was half-made"
