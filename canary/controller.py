"""Wiring of the controller: informers, workloads, routers, checks, reconciler, scheduler, HTTP, leases.

``run`` blocks until ``stop`` is set. With leader election, every replica keeps its caches warm
but only the holder of the Lease runs ticks, so a takeover is immediate.
"""

from __future__ import annotations

import datetime as dt
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import structlog

from analysis import outbound
from canary import __version__
from canary.defaults import shard_selector
from canary.engine.canaries import Canaries
from canary.engine.checks import CheckRunner
from canary.engine.generated import GeneratedCanaries
from canary.engine.gitreleases import FailedReleases
from canary.engine.reconciler import Reconciler
from canary.engine.scheduler import CanaryScheduler
from canary.errors import PermanentError
from canary.gitsync.apply import SyncReport
from canary.gitsync.config import sources_from
from canary.gitsync.inventory import SyncState
from canary.gitsync.loop import GitSync, SyncSettings, summary
from canary.gitsync.rollbacks import FailedRelease, Ledger, Rollbacks
from canary.gitsync.webhook import receiver
from canary.kube import Obj
from canary.kube.cache import Informer
from canary.kube.client import REDISCOVER_SECONDS, Kube, controller_agent
from canary.kube.events import EventRecorder
from canary.kube.lease import LeaseElector
from canary.kube.namespaces import ensure_namespace
from canary.models.base import API_VERSION
from canary.models.canary import Canary, CanaryHead, Phase, Severity
from canary.notify.base import Notice, Notifier, routes
from canary.notify.dispatch import AlertDispatcher, ProviderRef
from canary.routers import registry as router_registry
from canary.routers.base import RouterContext
from canary.routers.registry import RouterRegistry
from canary.settings import ControllerSettings
from canary.telemetry import metrics
from canary.telemetry.server import AsgiServer, HttpServer, app, beside
from canary.webhooks import EventHooks, WebhookCaller
from canary.workloads import autoscalers
from canary.workloads.deployments import Deployments

if TYPE_CHECKING:
    from starlette.types import ASGIApp

DashboardFactory = Callable[[Kube, Informer, str | None], "ASGIApp"]
"""Makes the dashboard (--dashboard) from the controller's client, Canary informer and namespace; the CLI
passes canary.dashboard's, so that this layer does not import it."""
log = structlog.get_logger(__name__)
_SYNC_TIMEOUT = 60.0
STOP_SECONDS = 5.0
"""How long stopping may take (SIGTERM): well within a pod's default grace period of 30 s."""
GENERATED_JOB = "generated-canaries"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass
class Controller:
    """The running parts, for ``run`` and for tests that drive a controller in-process."""

    kube: Kube
    informers: dict[str, Informer]
    scheduler: CanaryScheduler
    notifier: AlertDispatcher
    server: HttpServer | AsgiServer | None
    elector: LeaseElector | None
    hook_server: HttpServer | None = None
    """The Git webhook's own port (--git-webhook-port), when it is not served with /metrics."""
    gitsync: GitSync | None = None
    event_hooks: EventHooks | None = None
    reconciler: Reconciler | None = None
    optional: frozenset[str] = frozenset()
    """Informers of kinds that exist only with a router's CRDs: the controller is ready without them."""
    dashboard: ASGIApp | None = None
    """The dashboard served on the port beside /metrics (--dashboard)."""

    def ready(self) -> bool:
        """Caches are loaded (those of a router's CRDs may wait for the CRDs)."""
        return all(i.synced for name, i in self.informers.items() if name not in self.optional)

    def stop(self, timeout: float = STOP_SECONDS) -> None:
        """Give up the lease, stop acting and serving, within about ``timeout`` seconds whatever is in
        flight: a tick still running is left to end alone (its canary's state is in its status, so the
        next controller resumes it), and alerts not delivered stay pending in the statuses."""
        deadline = time.monotonic() + timeout

        def left() -> float:
            return max(0.5, deadline - time.monotonic())

        if self.elector is not None:
            self.elector.stop()
        self.scheduler.shutdown(wait=False)
        self.notifier.close(timeout=left())
        if self.reconciler is not None:
            self.reconciler.close()  # after the notifier: the alerts it delivered are removed from statuses
        if self.event_hooks is not None:
            self.event_hooks.close(timeout=left())
        for informer in self.informers.values():
            informer.stop()
        for server in (self.server, self.hook_server):
            if server is not None:
                server.stop()
        self.kube.close()


def cross_namespace_refusal(settings: ControllerSettings) -> str | None:
    """Why a Canary's references to other namespaces are refused, or None: by the flag, or because a
    controller confined to one namespace (--namespace, a namespaced install) reads no other."""
    if settings.no_cross_namespace_refs:
        return "--no-cross-namespace-refs"
    if settings.namespace:
        return f"--namespace {settings.namespace}: no other namespace is read"
    return None


def outbound_policy(settings: ControllerSettings) -> outbound.OutboundPolicy:
    """The outbound policy of the flags; the destinations the flags themselves name (host and port) are
    always allowed."""
    own = []
    for url in (settings.metrics_server, settings.slack_url, settings.event_webhook):
        parts = urlsplit(url or "")
        if parts.hostname:
            port = parts.port or (443 if parts.scheme == "https" else 80)
            own.append(f"[{parts.hostname}]:{port}" if ":" in parts.hostname else f"{parts.hostname}:{port}")
    return outbound.OutboundPolicy.of(allow=(*settings.outbound_allow, *own), deny=settings.outbound_deny,
                                      strict=settings.outbound_strict,
                                      own_ports=(settings.port, *((settings.git_webhook_port,)
                                                                  if settings.git_webhook_port else ())))


def build(settings: ControllerSettings, *, dashboard: DashboardFactory | None = None) -> Controller:
    """Create every part; nothing runs until ``start``. ``dashboard`` is required with --dashboard."""
    if settings.dashboard.enabled and dashboard is None:
        raise PermanentError("--dashboard: no dashboard was wired in (canary.cli passes it)")
    # Its caches of routers' kinds retry all the time: one rediscovery per period serves them all.
    # A connection for every worker besides those the watches hold open and the alert, webhook and Git
    # threads use.
    kube = Kube.from_kubeconfig(settings.kubeconfig, rediscover_seconds=REDISCOVER_SECONDS,
                                user_agent=controller_agent(settings.shard), pool_size=settings.workers + 32)
    namespace = settings.namespace

    def informer(api_version: str, kind: str, *, lazy: bool = False) -> Informer:
        return Informer(kube, api_version, kind, namespace=namespace, lazy=lazy)

    informers = {
        # Only this shard's Canaries (--shard), so that each is handled by exactly one controller.
        "canaries": Informer(kube, API_VERSION, "Canary", namespace=namespace,
                             label_selector=shard_selector(settings.shard)),
        "deployments": informer("apps/v1", "Deployment"),
        "daemonsets": informer("apps/v1", "DaemonSet"),
        "configmaps": informer("v1", "ConfigMap"),
        "secrets": informer("v1", "Secret"),
        "services": informer("v1", "Service"),
        "hpas": informer(*autoscalers.HPA),
        "scaledobjects": informer(*autoscalers.SCALED_OBJECT, lazy=True),
        "metrictemplates": informer(API_VERSION, "MetricTemplate"),  # with --namespace, only its own
        "alertproviders": informer(API_VERSION, "AlertProvider"),
    }
    # KEDA's and the routers' kinds may not be installed, or not used: their caches start at their first
    # read (a canary that uses them), and the controller is ready without them.
    optional = {"scaledobjects"}
    for watch in router_registry.watches():
        name = f"{watch.kind.lower()}s.{watch.api_version}"
        informers.setdefault(name, informer(watch.api_version, watch.kind, lazy=watch.optional))
        if watch.optional:
            optional.add(name)
    by_kind = {(i.api_version, i.kind): i for i in informers.values()}
    deployments = Deployments(kube, deployments=informers["deployments"], configmaps=informers["configmaps"],
                              secrets=informers["secrets"],
                              autoscalers=autoscalers.Autoscalers(kube, hpas=informers["hpas"],
                                                                  scaled_objects=informers["scaledobjects"]),
                              selector_labels=settings.selector_labels,
                              track_configs=settings.enable_config_tracking,
                              label_prefixes=settings.include_label_prefix, daemonsets=informers["daemonsets"])
    routers = RouterRegistry(RouterContext(kube, cache=lambda api_version, kind: by_kind[(api_version, kind)]),
                             default=settings.mesh_provider)
    outbound.configure(outbound_policy(settings))
    webhooks = WebhookCaller()
    event_hooks = EventHooks(webhooks, default_url=settings.event_webhook)
    default_provider = None
    if settings.alert_provider:
        provider_namespace, provider_name = settings.alert_provider.split("/", 1)
        default_provider = ProviderRef(name=provider_name, namespace=provider_namespace)
    notifier = AlertDispatcher(informers["alertproviders"], informers["secrets"], default_url=settings.slack_url,
                               default_provider=default_provider, cluster=settings.cluster_name)
    canaries = Canaries(informers["canaries"])
    reconciler = Reconciler(
        kube=kube, canaries=canaries, deployments=deployments, routers=routers,
        checks=CheckRunner(webhooks=webhooks, templates=informers["metrictemplates"], secrets=informers["secrets"],
                           metrics_server=settings.metrics_server, clock=_now),
        webhooks=webhooks, events=EventRecorder(kube), notifier=notifier, clock=_now, event_hooks=event_hooks,
        cross_namespace_refusal=cross_namespace_refusal(settings))
    scheduler = CanaryScheduler(reconciler.tick, workers=settings.workers, canaries=canaries,
                                on_failure=reconciler.report)
    informers["canaries"].subscribe(scheduler.on_canary)
    informers["canaries"].subscribe(reconciler.forget)
    informers["canaries"].subscribe(lambda event, obj: _count_canaries(informers["canaries"], event, obj))
    metrics.INFO.labels(version=__version__, mesh_provider=settings.mesh_provider).set(1)
    informers["metrictemplates"].subscribe(scheduler.on_template)
    informers["deployments"].subscribe(scheduler.on_target)
    informers["daemonsets"].subscribe(scheduler.on_target)

    def targets(namespace: str) -> list[Obj]:
        return [*informers["deployments"].list_objects(namespace), *informers["daemonsets"].list_objects(namespace)]

    informers["configmaps"].subscribe(scheduler.on_config("ConfigMap", targets))
    informers["secrets"].subscribe(scheduler.on_config("Secret", targets))
    generated = GeneratedCanaries(kube, deployments=informers["deployments"], canaries=canaries,
                                  events=EventRecorder(kube), shard=settings.shard)
    scheduler.add_periodic(GENERATED_JOB, generated.sync, seconds=10)
    informers["deployments"].subscribe(lambda event, obj: scheduler.trigger_job(GENERATED_JOB)
                                       if generated.changed(event, obj) else None)
    gitsync = None
    if settings.git.enabled:
        sources = sources_from(settings.git, kube)
        events = EventRecorder(kube)
        state = SyncState(kube, settings.git.inventory_namespace, settings.git.sync_state)
        rollbacks = Rollbacks(kube, ledger=Ledger(state),
                              releases=FailedReleases(canaries, deployments),
                              announce=_RollbackAnnouncer(notifier, canaries, events),
                              author=settings.git.author)
        gitsync = GitSync(kube, SyncSettings(sources=sources, inventory_namespace=settings.git.inventory_namespace,
                                             poll_interval=settings.git.poll_interval,
                                             sync_interval=settings.git.sync_interval, prune=settings.git.prune,
                                             state_kind=settings.git.sync_state),
                          cache_root=cache_root(),
                          announce=_SyncAnnouncer(notifier, settings.git.inventory_namespace),
                          rollbacks=rollbacks, on_report=_SyncEvents(state, events))
        for source in sources:
            scheduler.add_periodic(gitsync_job(source.name), partial(gitsync.poll, source.name),
                                   seconds=settings.git.poll_interval)
        informers["canaries"].subscribe(lambda event, obj: _on_rollback(scheduler, gitsync, obj))
    elector = _elector(kube, settings, scheduler) if settings.enable_leader_election else None
    served = (dashboard(kube, informers["canaries"], namespace)
              if dashboard is not None and settings.dashboard.enabled else None)
    return Controller(kube=kube, informers=informers, optional=frozenset(optional), scheduler=scheduler,
                      notifier=notifier, server=None, event_hooks=event_hooks,
                      elector=elector, gitsync=gitsync, reconciler=reconciler, dashboard=served)


def _elector(kube: Kube, settings: ControllerSettings, scheduler: CanaryScheduler) -> LeaseElector:
    """Leader election: one Lease per shard, so that each shard has one leader and its standbys."""
    identity = f"{socket.gethostname()}-{os.getpid()}"
    lease = f"{settings.leader_election_id}-{settings.shard}" if settings.shard else settings.leader_election_id
    return LeaseElector(kube, namespace=settings.leader_election_namespace, name=lease, identity=identity,
                        on_started=lambda: _lead(scheduler, True), on_stopped=lambda: _lead(scheduler, False),
                        lease_seconds=settings.leader_election_lease_seconds,
                        renew_seconds=settings.leader_election_lease_seconds / 3)


@dataclass(frozen=True)
class _SyncAnnouncer:
    """A sync failure or recovery goes to the default alert destinations (canaries' own alerts are theirs)."""

    notifier: Notifier
    namespace: str

    def __call__(self, source: str, severity: Severity, message: str, commit: str | None) -> None:
        self.notifier.notify(Notice(canary=f"gitsync/{source}", namespace=self.namespace, severity=severity,
                                    message=message, phase="Failed" if severity is Severity.ERROR else "Synced",
                                    revision=(commit or "")[:12], alerts=()))


@dataclass(frozen=True)
class _RollbackAnnouncer:
    """A handled rollback (pinned or reverted in Git) goes to the Canary's own alerts and events."""

    notifier: Notifier
    canaries: Canaries
    events: EventRecorder

    def __call__(self, release: FailedRelease, severity: Severity, reason: str, message: str) -> None:
        found = self.canaries.get(release.namespace, release.canary)
        if found is None:
            return
        obj, canary = found
        if not isinstance(canary, Canary):
            return
        self.events.record(obj, reason=reason, message=message, warning=severity is not Severity.INFO)
        self.notifier.notify(Notice(canary=release.canary, namespace=release.namespace, severity=severity,
                                    message=message, phase=str(canary.status.phase),
                                    revision=release.failed_revision, alerts=routes(canary.spec.analysis.alerts),
                                    details=release.checks))


@dataclass(frozen=True)
class _SyncEvents:
    """Events on a source's sync-state object (ConfigMap or Secret) for passes that changed something or failed."""

    state: SyncState
    events: EventRecorder

    def __call__(self, report: SyncReport) -> None:
        if report.ok and not (report.created or report.changed or report.pruned):
            return
        state = self.state.get(report.source)
        if state is not None:
            self.events.record(state, reason="Synced" if report.ok else "SyncFailed", message=summary(report),
                               warning=not report.ok)


def _on_rollback(scheduler: CanaryScheduler, gitsync: GitSync, obj: Obj) -> None:
    """A canary that just failed may be a release from Git: let the sync handle it now, not at the next poll."""
    if CanaryHead.of(obj).status.phase == Phase.FAILED.value:
        for source in gitsync.settings.sources:
            scheduler.trigger_job(gitsync_job(source.name))


def gitsync_job(source: str) -> str:
    """The scheduler job that polls and syncs ``source``."""
    return f"gitsync-{source}"


def cache_root() -> Path:
    """Where Git checkouts are cached (``CANARY_CACHE_DIR``, else ~/.cache/canary-delivery)."""
    return Path(os.environ.get("CANARY_CACHE_DIR", Path.home() / ".cache" / "canary-delivery"))


def _count_canaries(canaries: Informer, event: str, obj: Obj) -> None:
    """canary_total{namespace}: the Canaries of the namespace an event came from (only an addition or a
    deletion changes it: status writes, most of the events, do not)."""
    if event not in ("ADDED", "DELETED"):
        return
    namespace = obj["metadata"].get("namespace") or ""
    metrics.TOTAL.labels(namespace=namespace).set(canaries.count(namespace))


def _lead(scheduler: CanaryScheduler, leading: bool) -> None:
    metrics.LEADER.set(1 if leading else 0)
    if leading:
        scheduler.resume()
    else:
        scheduler.pause()


def start(controller: Controller, settings: ControllerSettings) -> None:
    """Start caches, the HTTP port, and (once leading, or at once without election) the ticks."""
    own = []
    if settings.enable_leader_election:
        own.append((settings.leader_election_namespace, "--leader-election-namespace"))
    if settings.git.enabled:
        own.append((settings.git.inventory_namespace, "--git-inventory-namespace"))
    for namespace, flag in own:
        if ensure_namespace(controller.kube, namespace, flag=flag):
            log.info("namespace created", namespace=namespace, why=flag)
    for informer in controller.informers.values():
        informer.start()
    hooks = None
    if controller.gitsync is not None and settings.git.webhook_secret:
        gitsync = controller.gitsync
        hooks = receiver(settings.git.webhook_secret, lambda: {s.name: s.ref for s in gitsync.settings.sources},
                         lambda name: controller.scheduler.trigger_job(gitsync_job(name)))
    separate = hooks is not None and settings.git_webhook_port is not None
    port = app(ready=controller.ready, stalled=lambda: controller.scheduler.stalled(settings.stall_seconds),
               extra=None if separate else hooks)
    controller.server = (HttpServer(settings.port, port, host=settings.listen_address) if controller.dashboard is None
                         else AsgiServer(settings.port, beside(port, controller.dashboard),
                                         host=settings.listen_address)).start()
    if separate and settings.git_webhook_port is not None:
        hooks_only = app(ready=controller.ready, extra=hooks, metrics=False)
        controller.hook_server = HttpServer(settings.git_webhook_port, hooks_only, host=settings.listen_address).start()
    for name, informer in controller.informers.items():
        if name not in controller.optional and not informer.wait_synced(_SYNC_TIMEOUT):
            log.warning("cache not synced yet", kind=informer.kind)
    if controller.elector is None:
        metrics.LEADER.set(1)
        controller.scheduler.start()
    else:
        controller.scheduler.start(paused=True)
        controller.elector.start()
    log.info("controller started", port=controller.server.port,
             git_webhook_port=controller.hook_server.port if controller.hook_server else None,
             namespace=settings.namespace or "all",
             leader_election=settings.enable_leader_election, mesh_provider=settings.mesh_provider,
             shard=settings.shard, dashboard="off" if controller.dashboard is None else
             ("actions with a token" if settings.dashboard.actions else "read-only"))


def run(settings: ControllerSettings, stop: threading.Event, *, dashboard: DashboardFactory | None = None) -> None:
    """Run the controller until ``stop`` is set."""
    controller = build(settings, dashboard=dashboard)
    start(controller, settings)
    try:
        stop.wait()
    finally:
        controller.stop()
