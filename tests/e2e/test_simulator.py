"""The stack's traffic simulator: Flagger's built-in queries, run unchanged, see what the workloads declare."""

from __future__ import annotations

import signal
import subprocess
import sys
import urllib.request
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from analysis.builtin import DURATION, SUCCESS_RATE, builtin_query
from analysis.providers.base import Outcome, QueryResult
from analysis.providers.prometheus import PrometheusProvider
from analysis.templates import TemplateContext, render_promql
from canary.kube.client import Kube
from canary.local import stack
from canary.local.ports import free_ports
from canary.local.simulator import ERROR_RATE
from canary.waiting import wait_until
from tests.builders import make_canary, make_deployment


def _ready_replicas(kube: Kube, namespace: str, name: str) -> int:
    found = kube.get("apps/v1", "Deployment", name, namespace=namespace) or {}
    return int(found.get("status", {}).get("readyReplicas", 0))


def _between(low: float, high: float) -> Callable[[QueryResult], bool]:
    def check(result: QueryResult) -> bool:
        return result.outcome is Outcome.VALUE and result.value is not None and low <= result.value <= high
    return check


def test_builtin_queries_see_the_targets_declared_error_rate_and_a_clean_primary(
    kube: Kube, namespace: str, canary_crds: list[str], local_stack: stack.StackState
) -> None:
    kube.create(make_deployment("web", namespace, replicas=2, annotations={ERROR_RATE: "20"}))
    kube.create(make_deployment("web-primary", namespace, replicas=2))
    wait_until(lambda: [_ready_replicas(kube, namespace, name) for name in ("web", "web-primary")],
               lambda ready: ready == [2, 2], what="Deployments web and web-primary to have 2 ready pods each",
               timeout=60)
    kube.create(make_canary("web", namespace, provider="kubernetes"))

    provider = PrometheusProvider(local_stack.prometheus_url)

    def query(mesh: str, metric: str, target: str) -> QueryResult:
        context = TemplateContext(name="web", namespace=namespace, target=target, service="web",
                                  interval=timedelta(seconds=10))
        return provider.query(render_promql(builtin_query(mesh, metric), context))

    # Each wait is an assertion: it fails with the last result seen when its deadline passes.
    wait_until(lambda: query("istio", SUCCESS_RATE, "web"), _between(75, 85),
               what="Istio's success rate of web to be about 80", timeout=60)
    wait_until(lambda: query("istio", SUCCESS_RATE, "web-primary"), _between(100, 100),
               what="Istio's success rate of web-primary to be 100", timeout=30)
    wait_until(lambda: query("kubernetes", SUCCESS_RATE, "web"), _between(75, 85),
               what="the pod histogram's success rate of web to be about 80", timeout=30)
    # Latencies of 18 to 22 ms all fall in the (10 ms, 25 ms] bucket; the P99 interpolates inside it.
    wait_until(lambda: query("kubernetes", DURATION, "web"), _between(10, 25),
               what="the pod histogram's P99 of web to be in the 10-25 ms bucket", timeout=30)


def test_the_simulator_serves_health_and_metrics_and_exits_cleanly_on_sigterm(
    local_stack: stack.StackState, tmp_path: Path
) -> None:
    (port,) = free_ports(1)
    log = tmp_path / "simulator.log"
    argv = [sys.executable, "-m", "canary.local.simulator", "--kubeconfig", local_stack.kubeconfig,
            "--port", str(port), "--period", "0.2"]
    with log.open("wb") as out:
        process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
    try:
        def get(path: str) -> bytes:
            assert process.poll() is None, f"the simulator exited: {log.read_text()}"
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as response:
                return bytes(response.read())

        assert wait_until(lambda: get("/healthz"), bool, what="the simulator to serve /healthz", timeout=30) == b"ok\n"
        assert b"# TYPE istio_requests_total counter" in get("/metrics")
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=10)
    assert code == 0, log.read_text()
