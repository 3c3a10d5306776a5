"""The skipper router end to end: the user's Ingress, the canary Ingress the controller writes with
Skipper's backend weights, and the simulator's skipper_* series on the routes Skipper would build from
it, so that the built-in skipper queries (Flagger's, selecting routes by name) judge each release."""

from __future__ import annotations

import json

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

INGRESS = "networking.k8s.io/v1"
WEIGHTS = "zalando.org/backend-weights"
PREDICATE = "zalando.org/skipper-predicate"


def _main_ingress(namespace: str) -> Obj:
    return {"apiVersion": INGRESS, "kind": "Ingress",
            "metadata": {"name": "web-ingress", "namespace": namespace,
                         "annotations": {"kubernetes.io/ingress.class": "skipper"}},
            "spec": {"rules": [{"host": "web.example.com", "http": {"paths": [
                {"path": "/", "pathType": "Prefix",
                 "backend": {"service": {"name": "web", "port": {"number": 9898}}}}]}}]}}


def _canary_ingress(kube: Kube, namespace: str) -> Obj | None:
    return kube.get(INGRESS, "Ingress", "web-ingress-canary", namespace=namespace)


def _weights(kube: Kube, namespace: str) -> tuple[int, int] | None:
    annotations = ((_canary_ingress(kube, namespace) or {}).get("metadata") or {}).get("annotations") or {}
    if WEIGHTS not in annotations:
        return None
    found = json.loads(annotations[WEIGHTS])
    return found["web-primary"], found["web-canary"]


def test_skipper_steps_the_canary_ingress_weights_and_promotes_a_good_release_then_rolls_back_a_bad_one(
    kube: Kube, namespace: str, controller: ControllerProcess
) -> None:
    kube.create(_main_ingress(namespace))
    kube.create(make_deployment("web", namespace, replicas=2, image="web:1"))
    canary = judged_canary(namespace, "skipper", stepWeight=25, maxWeight=50)
    canary["spec"]["ingressRef"] = {"apiVersion": INGRESS, "kind": "Ingress", "name": "web-ingress"}
    kube.create(canary)
    wait_phase(kube, namespace, "web", "Initialized")

    written = _canary_ingress(kube, namespace)
    assert written is not None
    paths = [(p["path"], p["backend"]["service"]["name"]) for p in written["spec"]["rules"][0]["http"]["paths"]]
    assert paths == [("/", "web-primary"), ("/", "web-canary")]
    assert written["metadata"]["annotations"][PREDICATE] == "False()", "no canary traffic: the canary Ingress is off"
    assert _weights(kube, namespace) == (100, 0)
    main = kube.get(INGRESS, "Ingress", "web-ingress", namespace=namespace) or {}
    assert main["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["name"] == "web", "left as it was"

    release(kube, namespace, "web:2")
    seen, phase = follow_release(kube, namespace, lambda: _weights(kube, namespace))
    assert phase == "Succeeded", canary_status(kube, namespace, "web")
    assert seen == [(100, 0), (75, 25), (50, 50), (100, 0)]
    assert image_of(deployment(kube, namespace, "web-primary")) == "web:2"
    judged = {r["name"]: r for r in canary_status(kube, namespace, "web")["analysis"]}
    assert judged["request-success-rate"]["value"] == 100, "Skipper's series of the canary route were counted"
    assert 10 < judged["request-duration"]["value"] < 50, "the simulator answers in about 20 ms"

    promoted = canary_status(kube, namespace, "web")["lastPromotedSpec"]
    wait_target_quiet(controller.stack.prometheus_url, namespace)
    release(kube, namespace, "web:3", annotations={"sim.canary.dev/error-rate": "30"})
    wait_phase(kube, namespace, "web", "Progressing")
    seen, phase = follow_release(kube, namespace, lambda: _weights(kube, namespace))
    assert phase == "Failed"
    assert seen[-1] == (100, 0)
    failing = [r for r in canary_status(kube, namespace, "web")["analysis"] if r["verdict"] != "pass"]
    assert failing[-1]["name"] == "request-success-rate"
    assert failing[-1]["value"] < 99
    assert canary_status(kube, namespace, "web")["lastPromotedSpec"] == promoted
    final = _canary_ingress(kube, namespace) or {}
    assert final["metadata"]["annotations"][PREDICATE] == "False()"
