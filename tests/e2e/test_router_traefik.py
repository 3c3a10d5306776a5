"""The traefik router end to end: Traefik's TraefikService CRD on the real control plane, and the
simulator's traefik_service_request_duration_seconds following its weights, so that the built-in
traefik queries judge each release."""

from __future__ import annotations

import pytest

from canary.kube import Obj
from canary.kube.client import Kube
from tests.builders import make_deployment
from tests.e2e.canaries import (
    canary_status,
    deployment,
    follow_release,
    image_of,
    judged_canary,
    release,
    wait_phase,
    wait_target_quiet,
)
from tests.e2e.controllers import ControllerProcess

pytestmark = pytest.mark.usefixtures("traefik_crds")
TRAEFIK = "traefik.io/v1alpha1"


def _weights(kube: Kube, namespace: str) -> tuple[int, int] | None:
    found = kube.get(TRAEFIK, "TraefikService", "web", namespace=namespace)
    if found is None:
        return None
    backends = {s["name"]: s["weight"] for s in found["spec"]["weighted"]["services"]}
    return backends["web-primary"], backends["web-canary"]


def _canary(namespace: str) -> Obj:
    return judged_canary(namespace, "traefik", stepWeight=25, maxWeight=50)


def test_traefik_steps_a_traefik_service_and_promotes_a_good_release_then_rolls_back_a_bad_one(
    kube: Kube, namespace: str, controller: ControllerProcess
) -> None:
    kube.create(make_deployment("web", namespace, replicas=2, image="web:1"))
    kube.create(_canary(namespace))
    wait_phase(kube, namespace, "web", "Initialized")
    assert _weights(kube, namespace) == (100, 0)

    release(kube, namespace, "web:2")
    seen, phase = follow_release(kube, namespace, lambda: _weights(kube, namespace))
    assert phase == "Succeeded", canary_status(kube, namespace, "web")
    assert seen == [(100, 0), (75, 25), (50, 50), (100, 0)]
    assert image_of(deployment(kube, namespace, "web-primary")) == "web:2"
    judged = {r["name"]: r for r in canary_status(kube, namespace, "web")["analysis"]}
    assert judged["request-success-rate"]["value"] == 100, "Traefik's series for the canary were counted"
    assert 10 < judged["request-duration"]["value"] < 100

    promoted = canary_status(kube, namespace, "web")["lastPromotedSpec"]
    wait_target_quiet(controller.stack.prometheus_url, namespace)
    kube.apply(make_deployment("web", namespace, replicas=2, image="web:3",
                               annotations={"sim.canary.dev/error-rate": "30"}), field_manager="test")
    wait_phase(kube, namespace, "web", "Progressing")
    seen, phase = follow_release(kube, namespace, lambda: _weights(kube, namespace))
    assert phase == "Failed"
    assert seen[-1] == (100, 0)
    assert canary_status(kube, namespace, "web")["lastPromotedSpec"] == promoted
