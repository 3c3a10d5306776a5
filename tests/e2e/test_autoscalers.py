"""A Canary whose target KEDA scales: the primary gets its own ScaledObject, and the target's is paused
at zero replicas while the target is down (KEDA's CRD on the real control plane)."""

from __future__ import annotations

import pytest

from canary.kube import Obj
from canary.kube.client import Kube
from canary.waiting import wait_until
from tests.builders import make_canary, make_deployment
from tests.e2e.canaries import deployment, image_of, release, wait_phase
from tests.e2e.controllers import ControllerProcess

pytestmark = pytest.mark.usefixtures("keda_crds")
KEDA = "keda.sh/v1alpha1"
PAUSED = "autoscaling.keda.sh/paused-replicas"


def _scaled_object(namespace: str) -> Obj:
    return {"apiVersion": KEDA, "kind": "ScaledObject", "metadata": {"name": "web", "namespace": namespace},
            "spec": {"scaleTargetRef": {"name": "web"}, "minReplicaCount": 1, "maxReplicaCount": 4,
                     "triggers": [{"type": "prometheus", "name": "rps", "metadata": {
                         "serverAddress": "http://prometheus:9090", "threshold": "10",
                         "query": 'sum(rate(http_requests_total{deployment="web"}[1m]))'}}]}}


def _paused(kube: Kube, namespace: str) -> bool:
    found = kube.get(KEDA, "ScaledObject", "web", namespace=namespace) or {}
    return PAUSED in (found.get("metadata", {}).get("annotations") or {})


def test_a_keda_scaled_target_gets_a_primary_scaled_object_and_is_paused_while_idle(
    kube: Kube, namespace: str, controller: ControllerProcess
) -> None:
    kube.create(_scaled_object(namespace))
    kube.create(make_deployment("web", namespace, replicas=2, image="web:1"))
    canary = make_canary("web", namespace, provider="kubernetes",
                         analysis={"interval": "1s", "threshold": 2, "iterations": 2})
    canary["spec"]["autoscalerRef"] = {"apiVersion": KEDA, "kind": "ScaledObject", "name": "web",
                                       "primaryScalerReplicas": {"minReplicas": 2}}
    kube.create(canary)
    wait_phase(kube, namespace, "web", "Initialized")

    primary = kube.get(KEDA, "ScaledObject", "web-primary", namespace=namespace)
    assert primary is not None
    assert primary["spec"]["scaleTargetRef"]["name"] == "web-primary"
    assert primary["spec"]["minReplicaCount"] == 2
    assert primary["spec"]["triggers"][0]["metadata"]["query"] == \
        'sum(rate(http_requests_total{deployment="web-primary"}[1m]))'
    assert _paused(kube, namespace), "KEDA must not scale the idle target back up"

    release(kube, namespace, "web:2")
    wait_until(lambda: _paused(kube, namespace), lambda paused: not paused,
               what="the target's ScaledObject to be resumed for the run", timeout=30, interval=0.05)
    wait_phase(kube, namespace, "web", "Succeeded", timeout=60)
    assert image_of(deployment(kube, namespace, "web-primary")) == "web:2"
    assert _paused(kube, namespace), "paused again once the target is down"
