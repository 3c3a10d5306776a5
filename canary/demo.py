"""``canary demo``: a good release promoted and a bad one rolled back, live, on the local stack.

It brings the local stack up (or uses the running one), installs the CRDs, starts the controller
as a separate process (as it would run in a cluster), deploys podinfo with a Canary routed through
Gateway API and judged by the built-in success rate and a latency MetricTemplate, and then
releases two versions: one healthy, one answering 30% errors (the traffic simulator reads the
``sim.canary.dev/error-rate`` annotation). It ends with a summary and stops what it started.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from canary import status_view
from canary.kube.client import Kube
from canary.local import stack
from canary.local.install import CANARY_CRDS, GATEWAY_API_CRDS, install_crds
from canary.local.ports import free_ports
from canary.models.base import API_VERSION
from canary.waiting import wait_until

Obj = dict[str, Any]
NAMESPACE = "demo"
APP = "podinfo"
IMAGE = "ghcr.io/stefanprodan/podinfo"
LATENCY_QUERY = (
    'histogram_quantile(0.99, sum(rate(istio_request_duration_milliseconds_bucket{reporter="destination", '
    'destination_workload_namespace="{{ namespace }}", destination_workload="{{ target }}"}[{{ interval }}])) '
    "by (le))"
)


@dataclass(frozen=True)
class Release:
    """One release the demo makes, and what became of it."""

    title: str
    version: str
    error_rate: int
    phase: str = ""
    seconds: float = 0.0
    weights: tuple[str, ...] = ()
    reason: str = ""


def deployment(version: str, *, error_rate: int) -> Obj:
    """podinfo at ``version``; the simulator makes ``error_rate`` percent of its requests fail."""
    annotations = {"sim.canary.dev/latency-ms": "25", "sim.canary.dev/error-rate": str(error_rate)}
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": APP, "namespace": NAMESPACE, "labels": {"app": APP}},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": APP}},
                 "template": {"metadata": {"labels": {"app": APP}, "annotations": annotations},
                              "spec": {"containers": [{"name": APP, "image": f"{IMAGE}:{version}",
                                                       "ports": [{"name": "http", "containerPort": 9898}]}]}}},
    }


def canary() -> Obj:
    """The demo's Canary: steps of 10 up to 50 every 2s, two failed checks roll back."""
    return {
        "apiVersion": API_VERSION, "kind": "Canary", "metadata": {"name": APP, "namespace": NAMESPACE},
        "spec": {
            "provider": "gatewayapi",
            "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": APP},
            "service": {"port": 9898},
            "analysis": {"interval": "2s", "threshold": 2, "stepWeight": 10, "maxWeight": 50, "metrics": [
                {"name": "request-success-rate", "interval": "10s", "thresholdRange": {"min": 99}},
                {"name": "latency", "interval": "10s", "thresholdRange": {"max": 500},
                 "templateRef": {"name": "latency"}},
            ]},
        },
    }


def metric_template() -> Obj:
    """P99 latency from the simulator's Istio-shaped histogram."""
    return {"apiVersion": API_VERSION, "kind": "MetricTemplate",
            "metadata": {"name": "latency", "namespace": NAMESPACE},
            "spec": {"provider": {"type": "prometheus"}, "query": LATENCY_QUERY}}


class Demo:
    """The steps of one demo run."""

    def __init__(self, *, state_dir: Path, console: Console) -> None:
        self.state_dir = state_dir
        self.console = console
        self.started_stack = False
        self.controller: subprocess.Popen[bytes] | None = None

    def run(self, *, keep: bool) -> list[Release]:
        """Run the demo; unless ``keep``, stop the controller and the stack it started."""
        try:
            state = self._stack()
            kube = Kube.from_kubeconfig(Path(state.kubeconfig))
            self._install(kube, state)
            releases = [self._release(kube, Release("good release", "6.7.1", error_rate=0)),
                        self._release(kube, Release("bad release", "6.7.2", error_rate=30))]
            self.console.print(summary(releases))
            return releases
        finally:
            if not keep:
                self._stop()
            else:
                self.console.print(f"left running; stop it with: canary local down --state-dir {self.state_dir}")

    def _stack(self) -> stack.StackState:
        existing = stack.load_state(self.state_dir)
        self.started_stack = existing is None or not existing.ready
        self.console.print("[bold]1. local stack[/] (Kubernetes with kwok nodes, Prometheus, traffic simulator)")
        return stack.up(stack.StackOptions(state_dir=self.state_dir),
                        progress=lambda line: self.console.print(f"   {line}", highlight=False))

    def _install(self, kube: Kube, state: stack.StackState) -> None:
        self.console.print("[bold]2. CRDs[/] (ours and Gateway API v1.4.1) and the controller")
        install_crds(kube, CANARY_CRDS)
        install_crds(kube, GATEWAY_API_CRDS)
        (port,) = free_ports(1)
        log = Path(state.state_dir) / "logs" / "controller.log"
        with log.open("ab") as out:
            self.controller = subprocess.Popen(
                [sys.executable, "-m", "canary", "controller", "--kubeconfig", state.kubeconfig,
                 "--metrics-server", state.prometheus_url, "--port", str(port)], stdout=out, stderr=subprocess.STDOUT)
        self.console.print(f"   controller pid {self.controller.pid}, log {log}")
        self.console.print(f"[bold]3. namespace {NAMESPACE}[/]: podinfo 6.7.0, a latency MetricTemplate, a Canary")
        self._fresh_namespace(kube)
        kube.create(metric_template())
        kube.create(deployment("6.7.0", error_rate=0))
        kube.create(canary())
        began = time.monotonic()
        wait_until(lambda: _phase(kube), lambda phase: phase == "Initialized",
                   what="the Canary to be initialised", timeout=120, interval=0.2)
        self.console.print(f"   initialised in {time.monotonic() - began:.1f}s: podinfo-primary serves, "
                           "podinfo is scaled to zero")

    def _fresh_namespace(self, kube: Kube) -> None:
        if kube.get("v1", "Namespace", NAMESPACE) is not None:
            kube.delete("v1", "Namespace", NAMESPACE)
            wait_until(lambda: kube.get("v1", "Namespace", NAMESPACE), lambda ns: ns is None,
                       what=f"namespace {NAMESPACE} to be deleted", timeout=120)
        kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}})
        wait_until(lambda: kube.get("v1", "ServiceAccount", "default", namespace=NAMESPACE), bool,
                   what="the default ServiceAccount", timeout=60)

    def _release(self, kube: Kube, release: Release) -> Release:
        number = 4 if release.error_rate == 0 else 5
        self.console.print(f"[bold]{number}. {release.title}[/]: podinfo {release.version}"
                           + (f", answering {release.error_rate}% errors" if release.error_rate else ""))
        kube.apply(deployment(release.version, error_rate=release.error_rate), field_manager="canary-demo")
        began = time.monotonic()
        weights: list[str] = []
        with Live(console=self.console, refresh_per_second=4, transient=False) as live:
            def watch() -> str:
                obj = kube.get(API_VERSION, "Canary", APP, namespace=NAMESPACE) or {}
                current = _weights(kube)
                if current and (not weights or weights[-1] != current):
                    weights.append(current)
                live.update(Group(status_view.table([obj]) if obj else Text("..."),
                                  Text(f"   HTTPRoute weights (primary/canary): {' → '.join(weights)}")))
                return str((obj.get("status") or {}).get("phase", ""))

            started = _until(watch, lambda phase: phase == "Progressing", timeout=60)
            phase = _until(watch, lambda phase: phase in ("Succeeded", "Failed"), timeout=300) if started else ""
        self.console.print()
        status = (kube.get(API_VERSION, "Canary", APP, namespace=NAMESPACE) or {}).get("status") or {}
        failing = [r for r in status.get("analysis") or [] if r.get("verdict") != "pass"]
        reason = failing[-1].get("message", "") if phase == "Failed" and failing else ""
        return Release(release.title, release.version, release.error_rate, phase=phase,
                       seconds=time.monotonic() - began, weights=tuple(weights), reason=reason)

    def _stop(self) -> None:
        if self.controller is not None and self.controller.poll() is None:
            self.controller.terminate()
            self.controller.wait(timeout=30)
        if self.started_stack:
            stack.down(self.state_dir, progress=lambda line: self.console.print(f"   {line}", highlight=False))


def _until(probe: Callable[[], str], done: Callable[[str], bool], *, timeout: float) -> str:
    return wait_until(probe, done, what="the canary", timeout=timeout, interval=0.25)


def _phase(kube: Kube) -> str:
    return str(((kube.get(API_VERSION, "Canary", APP, namespace=NAMESPACE) or {}).get("status") or {}).get("phase"))


def _weights(kube: Kube) -> str:
    route = kube.get("gateway.networking.k8s.io/v1", "HTTPRoute", APP, namespace=NAMESPACE)
    if route is None:
        return ""
    refs = {r["name"]: r.get("weight", 1) for r in route["spec"]["rules"][0]["backendRefs"]}
    return f"{refs.get(f'{APP}-primary')}/{refs.get(f'{APP}-canary')}"


def summary(releases: list[Release]) -> Table:
    """What became of each release, and how long it took."""
    table = Table(title="demo summary")
    for column in ("release", "version", "outcome", "time", "weights (primary/canary)", "why"):
        table.add_column(column, overflow="fold")
    for release in releases:
        outcome = {"Succeeded": "[green]promoted[/]", "Failed": "[red]rolled back[/]"}.get(release.phase,
                                                                                           release.phase)
        table.add_row(release.title, release.version, outcome, f"{release.seconds:.1f}s",
                      " → ".join(release.weights), release.reason)
    return table
