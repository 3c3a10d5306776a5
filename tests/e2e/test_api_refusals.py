"""What the API server refuses reaches the Canary: a ResourceQuota that leaves no room for the
canary's Services gives a condition and an Event with the API server's message, and the canary
goes on once there is room."""

from __future__ import annotations

from canary.kube.client import Kube
from canary.waiting import wait_until
from tests.builders import make_canary, make_deployment
from tests.e2e.canaries import canary_status, events, wait_phase
from tests.e2e.controllers import ControllerProcess


def _quota(namespace: str, services: int) -> dict[str, object]:
    return {"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "services", "namespace": namespace},
            "spec": {"hard": {"services": str(services)}}}


def test_a_quota_that_refuses_the_canarys_services_is_reported_and_the_canary_goes_on_when_raised(
    kube: Kube, namespace: str, controller: ControllerProcess
) -> None:
    kube.create(_quota(namespace, 1))
    wait_until(lambda: kube.get("v1", "ResourceQuota", "services", namespace=namespace),
               lambda q: q is not None and bool((q.get("status") or {}).get("hard")), what="the quota to be enforced",
               timeout=30)
    kube.create(make_deployment("web", namespace, replicas=1, image="web:1"))
    kube.create(make_canary("web", namespace, provider="kubernetes",
                            analysis={"interval": "1s", "threshold": 2, "iterations": 2}))

    conditions = wait_until(lambda: canary_status(kube, namespace, "web").get("conditions", []),
                            lambda found: any(c.get("reason") == "Forbidden" for c in found),
                            what="the Forbidden condition", timeout=30)
    ready = next(c for c in conditions if c["type"] == "Ready")
    assert ready["status"] == "False"
    assert "exceeded quota" in ready["message"], ready["message"]
    assert any(e["reason"] == "Forbidden" and "exceeded quota" in e["message"]
               for e in events(kube, namespace, "web"))

    kube.apply(_quota(namespace, 10), field_manager="test")
    wait_phase(kube, namespace, "web", "Initialized", timeout=60)
    # The condition is cleared by its own status write, just after the tick that initialised.
    wait_until(lambda: canary_status(kube, namespace, "web").get("conditions", []),
               lambda found: any(c["type"] == "Ready" and c["status"] == "True" for c in found),
               what="the Ready condition to clear", timeout=10)
