"""The primary's autoscaler: an HPA or a KEDA ScaledObject pointed at the primary, as Flagger makes them."""

from __future__ import annotations

from typing import Any

from canary.models.base import API_VERSION
from canary.models.canary import Canary
from canary.workloads.autoscalers import PAUSED_REPLICAS, Autoscalers, primary_scaled_object
from tests.fakes import FakeKube, informer

SCALED_OBJECT: dict[str, Any] = {
    "apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject",
    "metadata": {"name": "web", "namespace": "shop", "labels": {"team": "a"}},
    "spec": {"scaleTargetRef": {"name": "web"}, "minReplicaCount": 1, "maxReplicaCount": 5,
             "advanced": {"horizontalPodAutoscalerConfig": {"name": "web-hpa"}},
             "triggers": [{"type": "prometheus", "name": "rps", "metadata": {
                 "query": 'sum(rate(http_requests_total{deployment="web-canary"}[1m]))', "threshold": "10"}}]}}


def _canary(**autoscaler: Any) -> Canary:
    return Canary.model_validate({"metadata": {"name": "web", "namespace": "shop", "uid": "u"}, "spec": {
        "targetRef": {"name": "web"}, "service": {"port": 80}, "analysis": {"stepWeight": 10},
        "autoscalerRef": {"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject", "name": "web", **autoscaler}}})


def test_the_primary_scaled_object_scales_the_primary_and_asks_about_it() -> None:
    primary = primary_scaled_object(SCALED_OBJECT, _canary(primaryScalerReplicas={"minReplicas": 2}), owner={})
    assert primary["metadata"]["name"] == "web-primary"
    assert primary["spec"]["scaleTargetRef"] == {"name": "web-primary"}
    assert primary["spec"]["triggers"][0]["metadata"]["query"] == \
        'sum(rate(http_requests_total{deployment="web-primary"}[1m]))'
    assert primary["spec"]["advanced"]["horizontalPodAutoscalerConfig"]["name"] == "web-hpa-primary"
    assert (primary["spec"]["minReplicaCount"], primary["spec"]["maxReplicaCount"]) == (2, 5)
    assert SCALED_OBJECT["spec"]["scaleTargetRef"] == {"name": "web"}, "the target's is left alone"


def test_primary_scaler_queries_replace_the_triggers_queries_by_name() -> None:
    canary = _canary(primaryScalerQueries={"rps": "sum(rate(x[1m]))"})
    primary = primary_scaled_object(SCALED_OBJECT, canary, owner={})
    assert primary["spec"]["triggers"][0]["metadata"]["query"] == "sum(rate(x[1m]))"


def test_the_targets_scaled_object_is_paused_while_the_target_is_down() -> None:
    kube = FakeKube(SCALED_OBJECT)
    scalers = Autoscalers(kube.as_kube(), hpas=informer(kube, "autoscaling/v2", "HorizontalPodAutoscaler"),
                          scaled_objects=informer(kube, "keda.sh/v1alpha1", "ScaledObject"))
    scalers.hold_target(_canary(), held=True)
    assert kube.objects[("ScaledObject", "shop", "web")]["metadata"]["annotations"] == {PAUSED_REPLICAS: "0"}
    kube.calls.clear()
    scalers.hold_target(_canary(), held=True)
    assert kube.writes() == [], "already paused: nothing written"
    scalers.hold_target(_canary(), held=False)
    assert PAUSED_REPLICAS not in kube.objects[("ScaledObject", "shop", "web")]["metadata"].get("annotations", {})
    scalers.reconcile_primary(_canary(), owner={"kind": "Canary", "apiVersion": API_VERSION})
    assert kube.objects[("ScaledObject", "shop", "web-primary")]["spec"]["scaleTargetRef"] == {"name": "web-primary"}
