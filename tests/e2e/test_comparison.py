"""Canary versus primary, end to end: a canary 30% slower than the primary is rolled back although
it stays within a fixed 500 ms bound, and the Slack receiver gets exactly one rollback message."""

from __future__ import annotations

from pathlib import Path

import pytest

from analysis.builtin import DURATION, builtin_query
from canary.kube.client import Kube
from canary.local import stack
from canary.waiting import wait_until
from tests.builders import make_canary, make_deployment
from tests.e2e.canaries import deployment, image_of, release, wait_phase
from tests.e2e.controllers import ControllerProcess
from tests.e2e.receivers import receiver

pytestmark = pytest.mark.usefixtures("gateway_api_crds", "canary_crds")


def test_a_slower_canary_fails_the_comparison_within_the_fixed_bound_and_alerts_once(
    kube: Kube, namespace: str, local_stack: stack.StackState, tmp_path: Path
) -> None:
    with receiver() as slack:
        controller = ControllerProcess(local_stack, namespace, tmp_path, extra=("--slack-url", slack.url("/slack")))
        controller.start()
        try:
            kube.create({"apiVersion": "canary.dev/v1alpha1", "kind": "MetricTemplate",
                         "metadata": {"name": "latency", "namespace": namespace},
                         "spec": {"provider": {"type": "prometheus"}, "query": builtin_query("istio", DURATION)}})
            kube.create(make_deployment("web", namespace, replicas=2, image="web:1",
                                        annotations={"sim.canary.dev/latency-ms": "200"}))
            kube.create(make_canary("web", namespace, analysis={
                "interval": "2s", "threshold": 2, "stepWeight": 20, "maxWeight": 60, "metrics": [
                    {"name": "p99-within-500ms", "templateRef": {"name": "latency"}, "interval": "10s",
                     "thresholdRange": {"max": 500}},
                    {"name": "p99-versus-primary", "templateRef": {"name": "latency"}, "interval": "10s",
                     "comparison": {"direction": "increase", "allowedChange": 0.1, "confidence": 0.95},
                     "noData": "pause"},  # hold the weight until both sides have samples to compare
                ]}))
            wait_phase(kube, namespace, "web", "Initialized")
            release(kube, namespace, "web:2", annotations={"sim.canary.dev/latency-ms": "260"})

            failed = wait_phase(kube, namespace, "web", "Failed", timeout=120)
            wait_until(lambda: [b for _, b in slack.calls if "Failed checks" in b.get("text", "")], bool,
                       what="the rollback alert", timeout=15)
        finally:
            controller.stop()

    latest = {r["name"]: r for r in failed["analysis"]}
    assert latest["p99-within-500ms"]["verdict"] == "pass"
    assert latest["p99-within-500ms"]["value"] < 500
    assert latest["p99-versus-primary"]["verdict"] == "fail"
    assert "High: canary higher than primary" in latest["p99-versus-primary"]["message"]
    assert image_of(deployment(kube, namespace, "web-primary")) == "web:1"

    rolled_back = [body for _, body in slack.calls if "Failed checks" in body.get("text", "")]
    assert len(rolled_back) == 1, [body.get("text") for _, body in slack.calls]
    message = str(rolled_back[0])
    assert "p99-versus-primary" in message
    assert "allowed ±10%" in message
    assert "median" in message
