"""The apisix router end to end: the stand-in ApisixRoute CRD on the real control plane, the canary
route made from the user's, and the simulator's APISIX series of that route following its weights, so
that the built-in apisix queries judge each release."""

from __future__ import annotations

import pytest

from canary.kube import Obj
from canary.kube.client import Kube
from tests.builders import make_deployment
from tests.e2e.canaries import (
    good_then_bad_release,
    judged_canary,
    wait_phase,
)
from tests.e2e.controllers import ControllerProcess

pytestmark = pytest.mark.usefixtures("apisix_crds")
APISIX = "apisix.apache.org/v2"
HTTP_ROUTE: Obj = {"name": "method", "match": {"hosts": ["app.example.com"], "methods": ["GET"], "paths": ["/*"]},
                   "plugins": [{"name": "prometheus", "enable": True, "config": {"prefer_name": True}}],
                   "backends": [{"serviceName": "web", "servicePort": 9898}]}


def _weights(kube: Kube, namespace: str) -> tuple[int, int] | None:
    found = kube.get(APISIX, "ApisixRoute", "web-web-canary", namespace=namespace)
    if found is None:
        return None
    backends = {b["serviceName"]: b["weight"] for b in found["spec"]["http"][0]["backends"]}
    return backends["web-primary"], backends["web-canary"]


def test_apisix_steps_a_canary_route_and_promotes_a_good_release_then_rolls_back_a_bad_one(
    kube: Kube, namespace: str, controller: ControllerProcess
) -> None:
    kube.create({"apiVersion": APISIX, "kind": "ApisixRoute", "metadata": {"name": "web", "namespace": namespace},
                 "spec": {"http": [HTTP_ROUTE]}})
    kube.create(make_deployment("web", namespace, replicas=2, image="web:1"))
    canary = judged_canary(namespace, "apisix", stepWeight=25, maxWeight=50)
    canary["spec"]["routeRef"] = {"apiVersion": APISIX, "kind": "ApisixRoute", "name": "web"}
    kube.create(canary)
    wait_phase(kube, namespace, "web", "Initialized")
    written = kube.get(APISIX, "ApisixRoute", "web-web-canary", namespace=namespace)
    assert written is not None
    assert written["spec"]["http"] == [{
        **HTTP_ROUTE, "priority": 10000,
        "backends": [{"serviceName": "web-primary", "servicePort": 9898, "weight": 100},
                     {"serviceName": "web-canary", "servicePort": 9898, "weight": 0}]}]
    users = kube.get(APISIX, "ApisixRoute", "web", namespace=namespace)
    assert users is not None
    assert users["spec"]["http"] == [HTTP_ROUTE], "the user's route is left alone"

    good_then_bad_release(kube, namespace, lambda: _weights(kube, namespace),
                          counted="APISIX's series of the canary route", prometheus=controller.stack.prometheus_url)
