"""A DaemonSet target on the real control plane (kube-controller-manager runs its pods on the kwok
nodes): the primary DaemonSet, the target held at no pods while idle, a release promoted."""

from __future__ import annotations

from canary.kube import Obj
from canary.kube.client import Kube
from canary.waiting import wait_until
from tests.builders import make_canary
from tests.e2e.canaries import canary_status, wait_phase
from tests.e2e.controllers import ControllerProcess

HOLD = "canary.dev/scale-to-zero"


def _daemonset(namespace: str, image: str) -> Obj:
    labels = {"app": "web"}
    return {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "web", "namespace": namespace},
            "spec": {"selector": {"matchLabels": labels}, "template": {"metadata": {"labels": labels}, "spec": {
                "containers": [{"name": "app", "image": image, "ports": [{"containerPort": 9898}]}]}}}}


def _get(kube: Kube, namespace: str, name: str) -> Obj:
    found = kube.get("apps/v1", "DaemonSet", name, namespace=namespace)
    assert found is not None, f"DaemonSet {namespace}/{name} not found"
    return found


def _image(daemonset: Obj) -> str:
    return str(daemonset["spec"]["template"]["spec"]["containers"][0]["image"])


def _held(daemonset: Obj) -> bool:
    return HOLD in (daemonset["spec"]["template"]["spec"].get("nodeSelector") or {})


def test_a_daemonset_gets_a_primary_is_held_at_no_pods_while_idle_and_a_release_is_promoted(
    kube: Kube, namespace: str, controller: ControllerProcess
) -> None:
    kube.create(_daemonset(namespace, "web:1"))
    canary = make_canary("web", namespace, provider="kubernetes",
                         analysis={"interval": "1s", "threshold": 2, "iterations": 2})
    canary["spec"]["targetRef"]["kind"] = "DaemonSet"
    kube.create(canary)
    wait_phase(kube, namespace, "web", "Initialized", timeout=60)

    primary = _get(kube, namespace, "web-primary")
    assert primary["spec"]["selector"]["matchLabels"] == {"app": "web-primary"}
    assert not _held(primary)
    assert (primary["status"].get("numberAvailable") or 0) >= 1, "the primary's pods run on the kwok nodes"
    assert _held(_get(kube, namespace, "web")), "the idle target runs no pod"
    wait_until(lambda: _get(kube, namespace, "web").get("status", {}).get("currentNumberScheduled", 0),
               lambda scheduled: scheduled == 0, what="the held target to have no pods", timeout=30)

    kube.merge_patch("apps/v1", "DaemonSet", "web", {"spec": {"template": {"spec": {
        "containers": [{"name": "app", "image": "web:2"}]}}}}, namespace=namespace)
    done = wait_phase(kube, namespace, "web", "Succeeded", timeout=90)
    assert _image(_get(kube, namespace, "web-primary")) == "web:2"
    assert not _held(_get(kube, namespace, "web-primary")), "the hold is never copied to the primary"
    assert _held(_get(kube, namespace, "web")), "held again after the promotion"
    assert done["lastPromotedSpec"] == done["lastAppliedSpec"]
    assert canary_status(kube, namespace, "web")["phase"] == "Succeeded"
