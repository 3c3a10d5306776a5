"""The nginx router end to end: the user's Ingress, the canary Ingress the controller writes with
ingress-nginx's annotations, and the simulator's nginx_ingress_controller_* series following its
weight, so that the built-in nginx queries judge each release."""

from __future__ import annotations

from typing import Any

from canary.kube import Obj
from canary.kube.apply import APPLIED
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

INGRESS = "networking.k8s.io/v1"
WEIGHT = "nginx.ingress.kubernetes.io/canary-weight"


def _main_ingress(namespace: str) -> Obj:
    return {"apiVersion": INGRESS, "kind": "Ingress",
            "metadata": {"name": "web", "namespace": namespace,
                         "annotations": {"nginx.ingress.kubernetes.io/proxy-body-size": "8m"}},
            "spec": {"ingressClassName": "nginx", "rules": [{"host": "web.example.com", "http": {"paths": [
                {"path": "/", "pathType": "Prefix",
                 "backend": {"service": {"name": "web", "port": {"number": 9898}}}}]}}]}}


def _canary(namespace: str, **analysis: Any) -> Obj:
    body = judged_canary(namespace, "nginx", **analysis)
    body["spec"]["ingressRef"] = {"apiVersion": INGRESS, "kind": "Ingress", "name": "web"}
    return body


def _canary_ingress(kube: Kube, namespace: str) -> Obj | None:
    return kube.get(INGRESS, "Ingress", "web-canary", namespace=namespace)


def _weight(kube: Kube, namespace: str) -> str | None:
    annotations = ((_canary_ingress(kube, namespace) or {}).get("metadata") or {}).get("annotations") or {}
    return str(annotations[WEIGHT]) if WEIGHT in annotations else None


def test_nginx_writes_a_canary_ingress_steps_its_weight_and_promotes_a_good_release(
    kube: Kube, namespace: str, controller: ControllerProcess
) -> None:
    kube.create(_main_ingress(namespace))
    kube.create(make_deployment("web", namespace, replicas=2, image="web:1"))
    kube.create(_canary(namespace, stepWeight=25, maxWeight=50))
    wait_phase(kube, namespace, "web", "Initialized")

    canary_ingress = _canary_ingress(kube, namespace)
    assert canary_ingress is not None
    annotations = {k: v for k, v in canary_ingress["metadata"]["annotations"].items() if k != APPLIED}
    assert annotations == {"nginx.ingress.kubernetes.io/proxy-body-size": "8m",
                           "nginx.ingress.kubernetes.io/canary": "true", WEIGHT: "0"}
    backend = canary_ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend == {"name": "web-canary", "port": {"number": 9898}}
    main = kube.get(INGRESS, "Ingress", "web", namespace=namespace) or {}
    assert main["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["name"] == "web", "left as it was"

    release(kube, namespace, "web:2")
    seen, phase = follow_release(kube, namespace, lambda: _weight(kube, namespace))
    assert phase == "Succeeded", canary_status(kube, namespace, "web")
    assert seen == ["0", "25", "50", "0"]
    assert image_of(deployment(kube, namespace, "web-primary")) == "web:2"
    judged = {r["name"]: r for r in canary_status(kube, namespace, "web")["analysis"]}
    assert judged["request-success-rate"]["value"] == 100, "the canary Ingress's requests were counted"
    assert 10 < judged["request-duration"]["value"] < 50, "the simulator answers in about 20 ms"


def test_nginx_rolls_a_bad_release_back(kube: Kube, namespace: str, controller: ControllerProcess) -> None:
    kube.create(_main_ingress(namespace))
    kube.create(make_deployment("web", namespace, replicas=2, image="web:1"))
    kube.create(_canary(namespace, stepWeight=25, maxWeight=50))
    wait_phase(kube, namespace, "web", "Initialized")

    kube.apply(make_deployment("web", namespace, replicas=2, image="web:2",
                               annotations={"sim.canary.dev/error-rate": "30"}), field_manager="test")
    seen, phase = follow_release(kube, namespace, lambda: _weight(kube, namespace))
    assert phase == "Failed"
    assert seen[-1] == "0"
    failing = [r for r in canary_status(kube, namespace, "web")["analysis"] if r["verdict"] != "pass"]
    assert failing[-1]["name"] == "request-success-rate"
    assert failing[-1]["value"] < 99


def test_nginx_ab_testing_routes_a_header_to_the_canary(
    kube: Kube, namespace: str, controller: ControllerProcess
) -> None:
    kube.create(_main_ingress(namespace))
    kube.create(make_deployment("web", namespace, replicas=2, image="web:1"))
    kube.create(_canary(namespace, iterations=2, match=[{"headers": {"x-canary": {"exact": "insider"}}}]))
    wait_phase(kube, namespace, "web", "Initialized")

    release(kube, namespace, "web:2")
    annotations = wait_until(
        lambda: (_canary_ingress(kube, namespace) or {}).get("metadata", {}).get("annotations", {}),
        lambda found: "nginx.ingress.kubernetes.io/canary-by-header" in found,
        what="the canary Ingress to route by header", timeout=60, interval=0.05)
    assert annotations["nginx.ingress.kubernetes.io/canary-by-header"] == "x-canary"
    assert annotations["nginx.ingress.kubernetes.io/canary-by-header-value"] == "insider"
    wait_phase(kube, namespace, "web", "Succeeded", timeout=60)
    final = (_canary_ingress(kube, namespace) or {})["metadata"]["annotations"]
    assert final[WEIGHT] == "0"
    assert "nginx.ingress.kubernetes.io/canary-by-header" not in final
