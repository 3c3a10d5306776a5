"""Serving the dashboard: ``canary dashboard`` on loopback in the foreground, or a factory the controller
calls to serve it on its own port.

The CLI is the composition root: it calls ``run_local`` for ``canary dashboard`` and hands
``for_controller(...)`` to ``canary.controller.build`` for ``canary controller --dashboard``, which
passes its Canary informer and client in (the controller layer never imports this package).
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import structlog
from starlette.types import ASGIApp

from canary.dashboard.actions import Guard, Mode, tokens_from
from canary.dashboard.app import Dashboard, create_app
from canary.dashboard.events import CanaryEvents, informer_of
from canary.dashboard.feed import Feed
from canary.dashboard.gitstate import GitState
from canary.dashboard.ranges import NoRanges, PrometheusRanges
from canary.gitsync.inventory import StateKind
from canary.kube.cache import Informer
from canary.kube.client import Kube
from canary.models.base import API_VERSION
from canary.settings import DashboardSettings

log = structlog.get_logger(__name__)
LOOPBACK = "127.0.0.1"
SYNC_SECONDS = 30.0
STOP_SECONDS = 1.0
"""How long open event streams may take to close when the server stops."""


@dataclass(frozen=True)
class MetricsServer:
    """The Prometheus whose range series the metric charts add (``--metrics-server``), and the router whose
    built-in queries apply to a Canary without spec.provider (``--mesh-provider``)."""

    url: str
    mesh_provider: str

    def ranges(self, kube: Kube) -> PrometheusRanges:
        """The series source, reading MetricTemplates through ``kube``."""
        return PrometheusRanges(self.url, mesh_provider=self.mesh_provider,
                                templates=lambda ns, n: kube.get(API_VERSION, "MetricTemplate", n, namespace=ns))


@dataclass(frozen=True)
class GitOptions:
    """Where the Git sync keeps its state (the controller's --git-inventory-namespace and --git-sync-state)."""

    namespace: str
    kind: StateKind = "configmap"


def build(kube: Kube, canaries: Informer, *, namespace: str | None, guard: Guard, git: GitOptions | None,
          metrics: MetricsServer | None, served_by: str, loopback: bool) -> ASGIApp:
    """The app over an informer of Canaries; call before the informer starts (it subscribes to it)."""
    events = CanaryEvents(informer_of(kube))
    feed = Feed(canaries.list_objects, namespace=namespace, events=events)
    canaries.subscribe(feed.on_canary)
    events.subscribe(feed.on_event)
    return create_app(Dashboard(kube=kube, feed=feed, get_canary=canaries.get, guard=guard,
                                git=GitState(kube, git.namespace, git.kind) if git else None, namespace=namespace,
                                served_by=served_by, loopback=loopback,
                                ranges=metrics.ranges(kube) if metrics else NoRanges()))


def for_controller(settings: DashboardSettings, *, git: GitOptions | None,
                   metrics: MetricsServer | None) -> Callable[[Kube, Informer, str | None], ASGIApp]:
    """What ``canary controller --dashboard`` serves: read-only, or with actions for holders of its tokens;
    its charts add the series of the controller's own --metrics-server."""

    def make(kube: Kube, canaries: Informer, namespace: str | None) -> ASGIApp:
        tokens = settings.tokens
        guard = Guard(Mode.TOKEN, tokens_from(tokens, kube)) if settings.actions and tokens else Guard(Mode.OFF)
        return build(kube, canaries, namespace=namespace, guard=guard, git=git, metrics=metrics,
                     served_by="canary controller", loopback=False)

    return make


def serve(app: ASGIApp, sock: socket.socket) -> None:
    """Serve ``app`` on ``sock`` with uvicorn until SIGINT or SIGTERM (in the main thread) or forever."""
    import uvicorn  # noqa: PLC0415 - only the commands that serve need it

    config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="off",
                            timeout_graceful_shutdown=int(STOP_SECONDS))
    uvicorn.Server(config).run(sockets=[sock])


def run_local(*, kubeconfig: Path | None, port: int, namespace: str | None, git: GitOptions,
              metrics: MetricsServer | None, announce: Callable[[str], None]) -> None:
    """``canary dashboard``: watch the Canaries (of ``namespace``, or all) with the user's kubeconfig and serve
    the page on loopback until Ctrl-C; ``announce`` is told the URL once it answers."""
    kube = Kube.from_kubeconfig(kubeconfig)
    canaries = Informer(kube, API_VERSION, "Canary", namespace=namespace)
    app = build(kube, canaries, namespace=namespace, guard=Guard(Mode.LOCAL), git=git, metrics=metrics,
                served_by="canary dashboard", loopback=True)
    sock = socket.create_server((LOOPBACK, port))
    canaries.start()
    try:
        if not canaries.wait_synced(SYNC_SECONDS):
            log.warning("Canaries not listed yet; the page fills in once they are", namespace=namespace or "all")
        announce(f"http://{LOOPBACK}:{sock.getsockname()[1]}/")
        serve(app, sock)
    finally:
        canaries.stop()
        kube.close()
