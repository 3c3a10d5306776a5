"""What a Canary may reach, in a running controller: a MetricTemplate pointed at the controller's own
/metrics is refused and nothing of that endpoint reaches the Canary's status; with
--no-cross-namespace-refs, a reference to another namespace is refused by name."""

from __future__ import annotations

import json
from pathlib import Path

from canary.kube.client import Kube
from canary.local import stack
from canary.waiting import wait_until
from tests.builders import make_canary, make_deployment
from tests.e2e.canaries import canary_status, release, wait_phase
from tests.e2e.controllers import ControllerProcess


def test_a_metric_template_aimed_at_the_controllers_own_port_is_refused_and_nothing_leaks(
    kube: Kube, namespace: str, controller: ControllerProcess
) -> None:
    kube.create({"apiVersion": "canary.dev/v1alpha1", "kind": "MetricTemplate",
                 "metadata": {"name": "peek", "namespace": namespace},
                 "spec": {"provider": {"type": "prometheus", "address": f"http://127.0.0.1:{controller.port}"},
                          "query": "up"}})
    kube.create(make_deployment("web", namespace, replicas=1, image="web:1"))
    kube.create(make_canary("web", namespace, provider="kubernetes", analysis={
        "interval": "1s", "threshold": 1, "iterations": 2,
        "metrics": [{"name": "peek", "templateRef": {"name": "peek"}, "thresholdRange": {"min": 0}}]}))
    wait_phase(kube, namespace, "web", "Initialized")

    release(kube, namespace, "web:2")
    wait_phase(kube, namespace, "web", "Failed", timeout=60)
    status = canary_status(kube, namespace, "web")
    [judged] = [r for r in status["analysis"] if r["name"] == "peek"][-1:]
    assert f"the outbound policy refuses 127.0.0.1:{controller.port} is the controller's own port" in \
        judged["message"], judged
    assert "canary_" not in json.dumps(status), "nothing of the controller's /metrics reached the status"


def test_with_no_cross_namespace_refs_a_template_in_another_namespace_is_refused_by_name(
    kube: Kube, namespace: str, local_stack: stack.StackState, canary_crds: list[str], tmp_path: Path
) -> None:
    controller = ControllerProcess(local_stack, namespace, tmp_path, extra=("--no-cross-namespace-refs",))
    controller.start()
    try:
        kube.create(make_deployment("web", namespace, replicas=1, image="web:1"))
        kube.create(make_canary("web", namespace, provider="kubernetes", analysis={
            "interval": "1s", "threshold": 1, "iterations": 2,
            "metrics": [{"name": "shared", "templateRef": {"name": "latency", "namespace": "monitoring"},
                         "thresholdRange": {"max": 500}}]}))
        conditions = wait_until(lambda: canary_status(kube, namespace, "web").get("conditions", []),
                                lambda found: any(c.get("reason") == "CrossNamespaceRef" for c in found),
                                what="the CrossNamespaceRef condition", timeout=30)
        message = next(c["message"] for c in conditions if c["type"] == "Ready")
        assert "spec.analysis.metrics[0].templateRef.namespace monitoring" in message
        assert kube.get("apps/v1", "Deployment", "web-primary", namespace=namespace) is None, "nothing was made"
    finally:
        controller.stop()
