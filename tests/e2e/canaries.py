"""Reading canaries and their routes in end-to-end tests, with waits that say what they saw."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import requests

from canary.kube import Obj
from canary.kube.client import Kube
from canary.waiting import wait_until
from tests.builders import make_canary

T = TypeVar("T")


def canary_status(kube: Kube, namespace: str, name: str) -> Obj:
    """The Canary's status (empty when it has none yet)."""
    found = kube.get("canary.dev/v1alpha1", "Canary", name, namespace=namespace) or {}
    return dict(found.get("status") or {})


def wait_phase(kube: Kube, namespace: str, name: str, phase: str, *, timeout: float = 60) -> Obj:
    """Wait for the Canary to reach ``phase``; returns its status."""
    return wait_until(lambda: canary_status(kube, namespace, name), lambda s: s.get("phase") == phase,
                      what=f"Canary {namespace}/{name} to reach phase {phase}", timeout=timeout, interval=0.1)


def route_weights(kube: Kube, namespace: str, name: str) -> tuple[int, int] | None:
    """(primary, canary) weights of the HTTPRoute's first rule, or None without a route."""
    route = kube.get("gateway.networking.k8s.io/v1", "HTTPRoute", name, namespace=namespace)
    if route is None:
        return None
    refs = {r["name"]: r.get("weight", 1) for r in route["spec"]["rules"][0]["backendRefs"]}
    return refs[f"{name}-primary"], refs[f"{name}-canary"]


def deployment(kube: Kube, namespace: str, name: str) -> Obj:
    """A Deployment that must exist."""
    found = kube.get("apps/v1", "Deployment", name, namespace=namespace)
    assert found is not None, f"Deployment {namespace}/{name} not found"
    return found


def image_of(obj: Obj) -> str:
    """The first container's image of a Deployment."""
    return str(obj["spec"]["template"]["spec"]["containers"][0]["image"])


def events(kube: Kube, namespace: str, name: str) -> list[Obj]:
    """Events about the Canary ``name``."""
    return [e for e in kube.list_objects("v1", "Event", namespace=namespace)
            if e["involvedObject"]["kind"] == "Canary" and e["involvedObject"]["name"] == name]


def release(kube: Kube, namespace: str, image: str, *, name: str = "web",
            annotations: dict[str, str] | None = None) -> None:
    """Change the target's image (and pod annotations): a new revision for the controller."""
    template: Obj = {"spec": {"containers": [{"name": "app", "image": image}]}}
    if annotations:
        template["metadata"] = {"annotations": annotations}
    kube.merge_patch("apps/v1", "Deployment", name, {"spec": {"template": template}}, namespace=namespace)


def follow_release(kube: Kube, namespace: str, read: Callable[[], T | None], *, name: str = "web",
                   timeout: float = 120) -> tuple[list[T], str]:
    """The values ``read`` went through (the router's weights, say) until the release ended, and its phase."""
    seen: list[T] = []

    def observe() -> str:
        value = read()
        if value is not None and (not seen or seen[-1] != value):
            seen.append(value)
        return str(canary_status(kube, namespace, name).get("phase", ""))

    phase = wait_until(observe, lambda p: p in ("Succeeded", "Failed"), what=f"the release of Canary {name} to end",
                       timeout=timeout, interval=0.05)
    return seen, phase


def prometheus_query(prometheus: str, expr: str) -> list[dict[str, Any]]:
    """The result vector of an instant query; a refused query fails the test with Prometheus's answer."""
    answer = requests.get(f"{prometheus}/api/v1/query", params={"query": expr}, timeout=10)
    assert answer.status_code == 200, f"{expr}: {answer.text}"
    body = answer.json()
    assert body["status"] == "success", f"{expr}: {body}"
    return list(body["data"]["result"])


def wait_target_quiet(prometheus: str, namespace: str, *, name: str = "web", window: str = "10s") -> None:
    """Wait until the last ``window`` holds no request answered by the target's pods.

    The metric checks judge the last ``window`` of the target's series (as Flagger's do), so the first
    checks of a release begun right after another also count the requests of the run before: a bad
    release would pass on its predecessor's successes while its own pods' series are too young for
    a rate. The pods' own series, which the simulator keeps whatever the router, show when that
    traffic has left the window.
    """
    pods = f'{name}-[0-9a-zA-Z]+-[0-9a-zA-Z]+'  # the target's pods, not the primary's (fully anchored)
    expr = (f'sum(increase(http_request_duration_seconds_count{{kubernetes_namespace="{namespace}",'
            f'kubernetes_pod_name=~"{pods}"}}[{window}]))')
    wait_until(lambda: prometheus_query(prometheus, expr), lambda r: not r or float(r[0]["value"][1]) == 0,
               what=f"the requests of {namespace}/{name}'s last run to leave the {window} metric window",
               timeout=60, interval=0.5)


def judged_canary(namespace: str, provider: str, **analysis: object) -> Obj:
    """Canary ``web`` on ``provider``, judged by its built-in success rate (at least 99%) and duration
    (at most 500 ms) over 10 s, a tick every 2 s, rolled back after two failed checks."""
    return make_canary("web", namespace, provider=provider, analysis={
        "interval": "2s", "threshold": 2, "metrics": [
            {"name": "request-success-rate", "interval": "10s", "thresholdRange": {"min": 99}},
            {"name": "request-duration", "interval": "10s", "thresholdRange": {"max": 500}}],
        **analysis})


def good_then_bad_release(kube: Kube, namespace: str, weights: Callable[[], tuple[int, int] | None], *,
                          counted: str, prometheus: str) -> None:
    """The flow every weighted router's test shows on a ``judged_canary`` with stepWeight 25 and
    maxWeight 50: web:2 steps through the weights, is judged on the router's own series (``counted``
    says whose) and promoted; web:3, with 30% errors, fails on the success rate and is rolled back,
    the primary keeping web:2. ``prometheus`` is the server the controller queries."""
    release(kube, namespace, "web:2")
    seen, phase = follow_release(kube, namespace, weights)
    assert phase == "Succeeded", canary_status(kube, namespace, "web")
    assert seen == [(100, 0), (75, 25), (50, 50), (100, 0)]
    assert image_of(deployment(kube, namespace, "web-primary")) == "web:2"
    judged = {r["name"]: r for r in canary_status(kube, namespace, "web")["analysis"]}
    assert judged["request-success-rate"]["value"] == 100, f"{counted} were counted"
    assert 10 < judged["request-duration"]["value"] < 100

    promoted = canary_status(kube, namespace, "web")["lastPromotedSpec"]
    wait_target_quiet(prometheus, namespace)
    release(kube, namespace, "web:3", annotations={"sim.canary.dev/error-rate": "30"})
    wait_phase(kube, namespace, "web", "Progressing")
    seen, phase = follow_release(kube, namespace, weights)
    assert phase == "Failed"
    assert seen[-1] == (100, 0)
    failing = [r for r in canary_status(kube, namespace, "web")["analysis"] if r["verdict"] != "pass"]
    assert failing[-1]["name"] == "request-success-rate"
    assert canary_status(kube, namespace, "web")["lastPromotedSpec"] == promoted
    assert image_of(deployment(kube, namespace, "web-primary")) == "web:2"
