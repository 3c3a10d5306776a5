"""Traffic mirroring and session affinity end to end: the router's own object read back from the API
server at every step, the simulator counting mirrored requests on the canary, and the cookies the
controller keeps in the Canary's status."""

from __future__ import annotations

from typing import Any

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
)
from tests.e2e.controllers import ControllerProcess

pytestmark = pytest.mark.usefixtures("istio_crds", "gateway_api_crds")
ISTIO = "networking.istio.io/v1"
GATEWAY = "gateway.networking.k8s.io/v1"
Split = tuple[int, int, int]
"""(primary weight, canary weight, percent mirrored to the canary)."""


def _istio_split(kube: Kube, namespace: str) -> Split | None:
    vs = kube.get(ISTIO, "VirtualService", "web", namespace=namespace)
    if vs is None:
        return None
    [rule] = vs["spec"]["http"]
    weights = {d["destination"]["host"]: d.get("weight", 0) for d in rule["route"]}
    mirrored = 0
    if rule.get("mirror") == {"host": "web-canary"}:
        mirrored = int(rule.get("mirrorPercentage", {}).get("value", 100))
    return weights["web-primary"], weights["web-canary"], mirrored


def _istio_canary(namespace: str, **analysis: Any) -> Obj:
    body = judged_canary(namespace, "istio", **analysis)
    body["spec"]["service"] = {"port": 9898, "hosts": ["web.example.com"], "gateways": ["mesh"]}
    return body


def test_istio_mirrors_requests_to_the_canary_for_one_analysed_step_then_shifts_weight(
    kube: Kube, namespace: str, controller: ControllerProcess
) -> None:
    kube.create(make_deployment("web", namespace, replicas=2, image="web:1"))
    kube.create(_istio_canary(namespace, stepWeight=50, maxWeight=50, mirror=True, mirrorWeight=50))
    wait_phase(kube, namespace, "web", "Initialized")

    release(kube, namespace, "web:2")
    seen, phase = follow_release(kube, namespace, lambda: _istio_split(kube, namespace))
    assert phase == "Succeeded", canary_status(kube, namespace, "web")
    assert seen == [(100, 0, 0), (100, 0, 50), (50, 50, 0), (100, 0, 0)]
    assert image_of(deployment(kube, namespace, "web-primary")) == "web:2"
    messages = [e["message"] for e in kube.list_objects("v1", "Event", namespace=namespace)]
    assert "Start traffic mirroring to web" in messages


def test_a_bad_canary_fails_on_mirrored_requests_before_it_answers_any(
    kube: Kube, namespace: str, controller: ControllerProcess
) -> None:
    kube.create(make_deployment("web", namespace, replicas=2, image="web:1"))
    kube.create(_istio_canary(namespace, stepWeight=50, maxWeight=50, mirror=True))
    wait_phase(kube, namespace, "web", "Initialized")

    kube.apply(make_deployment("web", namespace, replicas=2, image="web:2",
                               annotations={"sim.canary.dev/error-rate": "30"}), field_manager="test")
    seen, phase = follow_release(kube, namespace, lambda: _istio_split(kube, namespace))
    assert phase == "Failed"
    assert seen == [(100, 0, 0), (100, 0, 100), (100, 0, 0)], "the canary only ever had copies of the requests"
    failed = [r for r in canary_status(kube, namespace, "web")["analysis"] if r["verdict"] != "pass"]
    assert failed[-1]["name"] == "request-success-rate"
    assert failed[-1]["value"] < 99, "the mirrored requests' errors were counted"
    assert image_of(deployment(kube, namespace, "web-primary")) == "web:1"


def _sticky(rules: list[Obj], cookie: str) -> list[Obj]:
    """The rules whose match tests the Cookie header for ``cookie`` (``name=token``)."""
    name, _, token = cookie.partition("=")
    return [r for r in rules if f".*{name}.*{token}.*" in str(r.get("match") or r.get("matches"))]


def _rules(kube: Kube, namespace: str, provider: str) -> list[Obj]:
    """The routing rules of the canary's VirtualService or HTTPRoute (none before it exists)."""
    if provider == "istio":
        found = kube.get(ISTIO, "VirtualService", "web", namespace=namespace)
        return found["spec"]["http"] if found is not None else []
    found = kube.get(GATEWAY, "HTTPRoute", "web", namespace=namespace)
    return found["spec"]["rules"] if found is not None else []


def _cookie_state(kube: Kube, namespace: str, provider: str) -> tuple[int, str | None, int]:
    """(canary weight, the canary cookie in the status, how many rules route by that cookie)."""
    status = canary_status(kube, namespace, "web")
    cookie = status.get("sessionAffinityCookie")
    sticky = len(_sticky(_rules(kube, namespace, provider), cookie)) if cookie else 0
    return int(status.get("canaryWeight") or 0), cookie, sticky


@pytest.mark.parametrize("provider", ["istio", "gatewayapi"])
def test_session_affinity_keeps_cookie_holders_on_the_canary_and_expires_the_cookie_after_the_run(
    kube: Kube, namespace: str, controller: ControllerProcess, provider: str
) -> None:
    kube.create(make_deployment("web", namespace, replicas=2, image="web:1"))
    affinity = {"cookieName": "canary-session", "maxAge": 120}
    body = _istio_canary(namespace, stepWeight=25, maxWeight=50, sessionAffinity=affinity) if provider == "istio" \
        else judged_canary(namespace, "gatewayapi", stepWeight=25, maxWeight=50, sessionAffinity=affinity)
    kube.create(body)
    wait_phase(kube, namespace, "web", "Initialized")

    release(kube, namespace, "web:2")
    seen, phase = follow_release(kube, namespace, lambda: _cookie_state(kube, namespace, provider))
    assert phase == "Succeeded", canary_status(kube, namespace, "web")
    during = [s for s in seen if s[0] > 0 and s[2] == 1]
    assert during, f"a cookie rule routed to the canary while it took traffic: {seen}"
    cookie = during[0][1]
    assert cookie is not None
    assert cookie.startswith("canary-session=")

    status = canary_status(kube, namespace, "web")
    assert status.get("sessionAffinityCookie") is None
    assert status["previousSessionAffinityCookie"] == cookie
    rules = _rules(kube, namespace, provider)
    [expire] = _sticky(rules, cookie)
    assert f"{cookie}; Max-Age=-1" in str(expire), "the cookie's holders are told to drop it"
    assert "Max-Age=120" not in str(rules), "no answer sets the canary cookie any more"
