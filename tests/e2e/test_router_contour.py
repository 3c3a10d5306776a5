"""The contour router end to end: Contour's HTTPProxy CRD on the real control plane, and the
simulator's Envoy cluster series following the proxy's weights, so that the built-in contour
queries judge each release."""

from __future__ import annotations

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

pytestmark = pytest.mark.usefixtures("contour_crds")
CONTOUR = "projectcontour.io/v1"


def _weights(kube: Kube, namespace: str) -> tuple[int, int] | None:
    proxy = kube.get(CONTOUR, "HTTPProxy", "web", namespace=namespace)
    if proxy is None:
        return None
    backends = {s["name"]: s["weight"] for s in proxy["spec"]["routes"][0]["services"]}
    return backends["web-primary"], backends["web-canary"]


def _canary(namespace: str, **analysis: object) -> Obj:
    body = judged_canary(namespace, "contour", **analysis)
    body["spec"]["service"]["timeout"] = "15s"
    return body


def test_contour_initialises_an_http_proxy_and_promotes_a_good_release(
    kube: Kube, namespace: str, controller: ControllerProcess
) -> None:
    kube.create(make_deployment("web", namespace, replicas=2, image="web:1"))
    kube.create(_canary(namespace, stepWeight=25, maxWeight=50))
    wait_phase(kube, namespace, "web", "Initialized")
    proxy = kube.get(CONTOUR, "HTTPProxy", "web", namespace=namespace)
    assert proxy is not None
    assert proxy["spec"]["routes"][0]["timeoutPolicy"] == {"response": "15s", "idle": "5m"}
    assert _weights(kube, namespace) == (100, 0)

    release(kube, namespace, "web:2")
    seen, phase = follow_release(kube, namespace, lambda: _weights(kube, namespace))
    assert phase == "Succeeded", canary_status(kube, namespace, "web")
    assert seen == [(100, 0), (75, 25), (50, 50), (100, 0)]
    assert image_of(deployment(kube, namespace, "web-primary")) == "web:2"
    judged = {r["name"]: r for r in canary_status(kube, namespace, "web")["analysis"]}
    assert judged["request-success-rate"]["value"] == 100, "Envoy's canary cluster series were counted"
    assert 10 < judged["request-duration"]["value"] < 50


def test_contour_rolls_a_bad_release_back_and_routes_a_header_for_ab_tests(
    kube: Kube, namespace: str, controller: ControllerProcess
) -> None:
    kube.create(make_deployment("web", namespace, replicas=2, image="web:1"))
    kube.create(_canary(namespace, iterations=2, match=[{"headers": {"x-canary": {"exact": "insider"}}}]))
    wait_phase(kube, namespace, "web", "Initialized")

    kube.apply(make_deployment("web", namespace, replicas=2, image="web:2",
                               annotations={"sim.canary.dev/error-rate": "30"}), field_manager="test")
    wait_until(lambda: _weights(kube, namespace), lambda w: w == (0, 100),
               what="matching requests to go to the canary", timeout=60, interval=0.05)
    proxy = kube.get(CONTOUR, "HTTPProxy", "web", namespace=namespace) or {}
    assert proxy["spec"]["routes"][0]["conditions"] == [{"prefix": "/", "header": {"name": "x-canary",
                                                                                   "exact": "insider"}}]
    failed = wait_phase(kube, namespace, "web", "Failed", timeout=120)
    assert _weights(kube, namespace) == (100, 0)
    assert [r for r in failed["analysis"] if r["verdict"] != "pass"][-1]["name"] == "request-success-rate"
