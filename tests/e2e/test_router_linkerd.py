"""The linkerd router end to end: SMI's TrafficSplit CRD (converted to apiextensions v1) on the real
control plane, and the simulator's Linkerd series (response_total, response_latency_ms) following its
weights, so that the built-in linkerd queries judge each release."""

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

pytestmark = pytest.mark.usefixtures("smi_crds")
SMI = "split.smi-spec.io/v1alpha1"


def _split(kube: Kube, namespace: str) -> Obj | None:
    return kube.get(SMI, "TrafficSplit", "web", namespace=namespace)


def _weights(kube: Kube, namespace: str) -> tuple[int, int] | None:
    found = _split(kube, namespace)
    if found is None:
        return None
    backends = {b["service"]: int(b["weight"]) for b in found["spec"]["backends"]}
    return backends["web-primary"], backends["web-canary"]


def test_linkerd_steps_a_traffic_split_and_promotes_a_good_release_then_rolls_back_a_bad_one(
    kube: Kube, namespace: str, controller: ControllerProcess
) -> None:
    kube.create(make_deployment("web", namespace, replicas=2, image="web:1"))
    kube.create(judged_canary(namespace, "linkerd", stepWeight=25, maxWeight=50))
    wait_phase(kube, namespace, "web", "Initialized")
    written = _split(kube, namespace)
    assert written is not None
    assert written["spec"] == {"service": "web", "backends": [{"service": "web-canary", "weight": 0},
                                                              {"service": "web-primary", "weight": 100}]}

    good_then_bad_release(kube, namespace, lambda: _weights(kube, namespace),
                          counted="Linkerd's series of the canary", prometheus=controller.stack.prometheus_url)


def test_the_converted_crd_takes_flaggers_v1alpha1_quantity_weights_and_serves_every_version(
    kube: Kube, namespace: str
) -> None:
    kube.create({"apiVersion": SMI, "kind": "TrafficSplit", "metadata": {"name": "web", "namespace": namespace},
                 "spec": {"service": "web", "backends": [{"service": "web-canary", "weight": "10"},
                                                         {"service": "web-primary", "weight": "90"}]}})
    assert _weights(kube, namespace) == (90, 10)
    for version in ("v1alpha2", "v1alpha3", "v1alpha4"):
        found = kube.get(f"split.smi-spec.io/{version}", "TrafficSplit", "web", namespace=namespace)
        assert found is not None, version
        assert found["spec"]["service"] == "web"
