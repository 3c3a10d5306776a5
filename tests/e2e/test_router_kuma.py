"""The kuma router end to end: the stand-in TrafficRoute CRD (cluster-scoped) on the real control plane,
the simulator's Envoy series of the canary's Kuma service following its weights, so that the built-in
kuma queries judge each release, and the TrafficRoute deleted with its Canary, since no owner
reference can collect a cluster-scoped object."""

from __future__ import annotations

import pytest

from canary.kube.client import Kube
from canary.waiting import wait_until
from tests.builders import make_deployment
from tests.e2e.canaries import (
    good_then_bad_release,
    judged_canary,
    wait_phase,
)
from tests.e2e.controllers import ControllerProcess

pytestmark = pytest.mark.usefixtures("kuma_crds")
KUMA = "kuma.io/v1alpha1"


def _weights(kube: Kube, namespace: str) -> tuple[int, int] | None:
    found = kube.get(KUMA, "TrafficRoute", "web")
    if found is None:
        return None
    split = {s["destination"]["kuma.io/service"]: s["weight"] for s in found["spec"]["conf"]["split"]}
    return split[f"web-primary_{namespace}_svc_9898"], split[f"web-canary_{namespace}_svc_9898"]


def test_kuma_steps_a_traffic_route_promotes_a_good_release_rolls_back_a_bad_one_and_goes_with_the_canary(
    kube: Kube, namespace: str, controller: ControllerProcess
) -> None:
    kube.create(make_deployment("web", namespace, replicas=2, image="web:1"))
    canary = judged_canary(namespace, "kuma", stepWeight=25, maxWeight=50)
    canary["metadata"]["annotations"] = {"kuma.io/mesh": "payments"}
    kube.create(canary)
    wait_phase(kube, namespace, "web", "Initialized")
    written = kube.get(KUMA, "TrafficRoute", "web")
    assert written is not None
    assert written["mesh"] == "payments"
    assert written["spec"]["destinations"] == [{"match": {"kuma.io/service": f"web_{namespace}_svc_9898"}}]
    assert _weights(kube, namespace) == (100, 0)

    good_then_bad_release(kube, namespace, lambda: _weights(kube, namespace),
                          counted="Envoy's series of the canary's Kuma service",
                          prometheus=controller.stack.prometheus_url)

    kube.delete("canary.dev/v1alpha1", "Canary", "web", namespace=namespace)
    wait_until(lambda: (kube.get(KUMA, "TrafficRoute", "web"),
                        kube.get("canary.dev/v1alpha1", "Canary", "web", namespace=namespace)),
               lambda found: found == (None, None), what="the TrafficRoute and then the Canary to be deleted",
               timeout=30, interval=0.1)
