"""``canary demo``: from a commit to a safe release, live, on the local stack.

It brings the local stack up (or uses the running one), installs the CRDs, makes a Git repository
(a bare one in the state folder, as a Git server would hold it) and starts the controller as a
separate process syncing it, with ``--git-rollback revert``. The first commit deploys podinfo
with a Canary routed through Gateway API and judged by the built-in success rate and a latency
MetricTemplate; two more commits release a healthy version and one answering 30% errors (the
traffic simulator reads the ``sim.canary.dev/error-rate`` annotation). The bad release is rolled
back and the controller pushes a revert commit, after which the cluster and Git agree. It draws
the report (``canary report``) of the good and the bad release into a folder of its own (kept when
the stack's files go), ends with a summary and where the reports are, and stops what it started.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import yaml
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from canary import status_view
from canary.defaults import CONTROLLER_NAMESPACE
from canary.kube import Obj
from canary.kube.client import Kube
from canary.local import stack
from canary.local.install import CANARY_CRDS, GATEWAY_API_CRDS, install_crds
from canary.local.ports import free_ports
from canary.models.base import API_VERSION
from canary.report.make import Prometheus, report
from canary.waiting import wait_until

NAMESPACE = "demo"
SYNC_NAMESPACE = CONTROLLER_NAMESPACE
MANIFEST = "k8s/podinfo.yaml"
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
    commit: str = ""
    report: Path | None = None


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


def manifests(version: str, *, error_rate: int) -> str:
    """The file the demo keeps in Git: the Namespace, the latency MetricTemplate, podinfo and its Canary."""
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}
    documents = [namespace, metric_template(), canary(), deployment(version, error_rate=error_rate)]
    return "# podinfo, released as a canary by every commit that changes its template\n" + \
        yaml.safe_dump_all(documents, sort_keys=False)


class Repository:
    """A bare repository (the "server") and a working clone the demo commits from, with the git CLI."""

    def __init__(self, folder: Path) -> None:
        self.bare, self.work = folder / "podinfo.git", folder / "work"
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        self.git("init", "--quiet", "--bare", "--initial-branch=main", str(self.bare), cwd=folder)
        self.git("clone", "--quiet", str(self.bare), str(self.work), cwd=folder)
        self.git("checkout", "--quiet", "-B", "main", cwd=self.work)

    @property
    def url(self) -> str:
        """What the controller is told to sync."""
        return self.bare.as_uri()

    def git(self, *args: str, cwd: Path) -> str:
        """Run git with a fixed identity and no user or system configuration."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
        env.update(GIT_CONFIG_GLOBAL=os.devnull, GIT_CONFIG_NOSYSTEM="1", GIT_AUTHOR_NAME="Demo",
                   GIT_AUTHOR_EMAIL="demo@example.com", GIT_COMMITTER_NAME="Demo",
                   GIT_COMMITTER_EMAIL="demo@example.com")
        return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True,
                              timeout=60).stdout.strip()

    def commit(self, text: str, message: str) -> str:
        """Write the manifest, commit and push it; the commit's id."""
        if self.head():
            self.git("pull", "--quiet", "--ff-only", "origin", "main", cwd=self.work)  # the controller may push
        path = self.work / MANIFEST
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        self.git("add", "--all", cwd=self.work)
        self.git("commit", "--quiet", "--message", message, cwd=self.work)
        self.git("push", "--quiet", "origin", "HEAD:refs/heads/main", cwd=self.work)
        return self.head()

    def head(self) -> str:
        """The branch's commit on the "server" ("" before the first push)."""
        found = subprocess.run(["git", "rev-parse", "--verify", "--quiet", "refs/heads/main"], cwd=self.bare,
                               capture_output=True, text=True, check=False, timeout=30)
        return found.stdout.strip()


class Demo:
    """The steps of one demo run."""

    def __init__(self, *, state_dir: Path, console: Console, reports: Path) -> None:
        self.state_dir = state_dir
        self.reports = reports
        self.console = console
        self.started_stack = False
        self.controller: subprocess.Popen[bytes] | None = None

    def run(self, *, keep: bool) -> list[Release]:
        """Run the demo; unless ``keep``, stop the controller and the stack it started."""
        try:
            state = self._stack()
            kube = Kube.from_kubeconfig(Path(state.kubeconfig))
            repository = self._install(kube, state)
            # Each report right after its release: the next run replaces the canary's record of this one.
            releases = [self._report(kube, state.prometheus_url, self._release(kube, repository, release))
                        for release in (Release("good release", "6.7.1", error_rate=0),
                                        Release("bad release", "6.7.2", error_rate=30))]
            if releases[-1].phase == "Failed":
                releases.append(self._revert(kube, repository, releases[-1]))
            self.console.print(summary(releases))
            for release in releases:
                if release.report is not None:
                    self.console.print(f"report of the {release.title}: {release.report}", highlight=False)
            return releases
        finally:
            if not keep:
                self._stop()
            else:
                pid = self.controller.pid if self.controller is not None else "?"
                self.console.print(f"left running; stop it with: kill {pid}; canary local down --state-dir "
                                   f"{self.state_dir}", highlight=False)

    def _stack(self) -> stack.StackState:
        existing = stack.load_state(self.state_dir)
        self.started_stack = existing is None or not existing.ready
        self.console.print("[bold]1. local stack[/] (Kubernetes with kwok nodes, Prometheus, traffic simulator)")
        return stack.up(stack.StackOptions(state_dir=self.state_dir),
                        progress=lambda line: self.console.print(f"   {line}", highlight=False))

    def _install(self, kube: Kube, state: stack.StackState) -> Repository:
        self.console.print("[bold]2. CRDs[/] (ours and Gateway API v1.4.1), a Git repository and the controller")
        install_crds(kube, CANARY_CRDS)
        install_crds(kube, GATEWAY_API_CRDS)
        self._fresh_start(kube)
        repository = Repository(Path(state.state_dir) / "demo-git")
        first = repository.commit(manifests("6.7.0", error_rate=0), "podinfo 6.7.0 with a Canary")
        (port,) = free_ports(1)
        log = Path(state.state_dir) / "logs" / "controller.log"
        with log.open("ab") as out:
            self.controller = subprocess.Popen(
                [sys.executable, "-m", "canary", "controller", "--kubeconfig", state.kubeconfig,
                 "--metrics-server", state.prometheus_url, "--port", str(port), "--git-url", repository.url,
                 "--git-path", "k8s", "--git-poll-interval", "1", "--git-rollback", "revert",
                 "--git-inventory-namespace", SYNC_NAMESPACE],
                stdout=out, stderr=subprocess.STDOUT,
                env={**os.environ, "CANARY_CACHE_DIR": str(Path(state.state_dir) / "gitsync-cache")})
        self.console.print(f"   repository {repository.url}, working copy {repository.work}")
        self.console.print(f"   controller pid {self.controller.pid} (--git-rollback revert), log {log}")
        self.console.print(f"[bold]3. commit {first[:7]}[/]: namespace {NAMESPACE}, podinfo 6.7.0, a latency "
                           "MetricTemplate and a Canary, all from Git")
        began = time.monotonic()
        wait_until(lambda: _phase(kube), lambda phase: phase == "Initialized",
                   what="the Canary to be initialised", timeout=120, interval=0.2)
        self.console.print(f"   synced and initialised in {time.monotonic() - began:.1f}s: podinfo-primary serves, "
                           "podinfo is scaled to zero")
        return repository

    def _fresh_start(self, kube: Kube) -> None:
        """Remove what an earlier run left: the namespace and the sync state of its repository."""
        if kube.get("v1", "Namespace", SYNC_NAMESPACE) is None:
            kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": SYNC_NAMESPACE}})
        for name in ("canary-gitsync-default",):
            if kube.get("v1", "ConfigMap", name, namespace=SYNC_NAMESPACE) is not None:
                kube.delete("v1", "ConfigMap", name, namespace=SYNC_NAMESPACE)
        if kube.get("v1", "Namespace", NAMESPACE) is not None:
            kube.delete("v1", "Namespace", NAMESPACE)
            wait_until(lambda: kube.get("v1", "Namespace", NAMESPACE), lambda ns: ns is None,
                       what=f"namespace {NAMESPACE} to be deleted", timeout=120)

    def _release(self, kube: Kube, repository: Repository, release: Release) -> Release:
        number = 4 if release.error_rate == 0 else 5
        commit = repository.commit(manifests(release.version, error_rate=release.error_rate),
                                   f"podinfo {release.version}")
        self.console.print(f"[bold]{number}. {release.title}[/]: commit {commit[:7]}, podinfo {release.version}"
                           + (f", answering {release.error_rate}% errors" if release.error_rate else ""))
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
                       seconds=time.monotonic() - began, weights=tuple(weights), reason=reason, commit=commit)

    def _report(self, kube: Kube, prometheus_url: str, release: Release) -> Release:
        """The release's picture (canary report), with the Prometheus series of its metrics."""
        if release.phase not in ("Succeeded", "Failed"):
            return release
        path = self.reports / f"{release.title.replace(' ', '-')}.png"
        report(kube, NAMESPACE, APP, path, prometheus=Prometheus(prometheus_url, mesh_provider="gatewayapi"))
        return replace(release, report=path)

    def _revert(self, kube: Kube, repository: Repository, failed: Release) -> Release:
        self.console.print("[bold]6. Git after the rollback[/]: the controller reverts the bad commit")
        began = time.monotonic()
        revert = wait_until(repository.head, lambda head: head != failed.commit,
                            what="the controller to push a revert commit", timeout=60, interval=0.1)
        subject = repository.git("log", "-1", "--format=%s (%an)", revert, cwd=repository.bare)
        self.console.print(f"   commit {revert[:7]} on main: {subject}", highlight=False)
        diff = repository.git("diff", failed.commit, revert, cwd=repository.bare)
        for line in diff.splitlines():
            if line[:1] in "+-" and line[:3] not in ("+++", "---"):
                self.console.print(f"     {line}", highlight=False, markup=False)
        status = wait_until(lambda: (kube.get(API_VERSION, "Canary", APP, namespace=NAMESPACE) or {}).get("status")
                            or {}, lambda s: s.get("lastAppliedSpec") == s.get("lastPromotedSpec"),
                            what="the cluster to agree with Git", timeout=60, interval=0.1)
        self.console.print(f"   synced: podinfo is back at revision {status.get('lastPromotedSpec')}, the one "
                           "podinfo-primary runs; nothing to release, the cluster and Git agree")
        return Release("revert in Git", "6.7.1", error_rate=0, phase="Reverted", seconds=time.monotonic() - began,
                       reason=f"commit {revert[:7]}: {subject}", commit=revert)

    def _stop(self) -> None:
        if self.controller is not None and self.controller.poll() is None:
            self.controller.terminate()
            self.controller.wait(timeout=30)
        if self.started_stack:
            stack.down(self.state_dir, purge=True,
                       progress=lambda line: self.console.print(f"   {line}", highlight=False))


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
        outcome = {"Succeeded": "[green]promoted[/]", "Failed": "[red]rolled back[/]",
                   "Reverted": "[yellow]Git = cluster[/]"}.get(release.phase, release.phase)
        table.add_row(release.title, release.version, outcome, f"{release.seconds:.1f}s",
                      " → ".join(release.weights), release.reason)
    return table
