"""How far one controller process goes: idle canaries at N = 10 ... 2000, engine only.

The side-by-side benchmark (``bench.flagger``) needs a cluster that runs 2N Deployments, which this
2-core machine cannot do for N = 1000 in a reasonable time. This one takes the cluster out: the real
reconciler, canary index and scheduler (10 workers) run over the in-memory API
server of the unit tests (``tests.fakes.FakeKube``), with N initialised blue/green canaries ticking
every ``--interval`` seconds. An idle tick makes no API request (e2e tests hold the controller to
that), so what is measured is the engine's own cost: CPU ms per canary per tick (the process's CPU
time over the window) and the tick lag p50/p99 from ``canary_tick_lag_seconds``, against N.

Run: ``.venv/bin/python -m bench.engine_scale [--sizes 10,100,1000] [--interval 10] [--window 30]``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import time

from prometheus_client import REGISTRY

from bench.flagger.lag import quantile
from canary.engine.canaries import Canaries
from canary.engine.checks import CheckRunner
from canary.engine.reconciler import Reconciler
from canary.engine.scheduler import CanaryScheduler
from canary.kube.events import EventRecorder
from canary.logging import configure
from canary.models.base import API_VERSION
from canary.notify.base import LogNotifier
from canary.routers.base import RouterContext
from canary.routers.registry import RouterRegistry
from canary.webhooks import WebhookCaller
from canary.workloads.deployments import Deployments
from tests.builders import make_canary, make_deployment
from tests.fakes import FakeKube, informer

NAMESPACE = "bench"
WORKERS = 10


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _lag_buckets() -> dict[float, float]:
    found: dict[float, float] = {}
    for family in REGISTRY.collect():
        for sample in family.samples:
            if sample.name == "canary_tick_lag_seconds_bucket":
                found[float(sample.labels["le"])] = sample.value
    return found


def _ready(kube: FakeKube, name: str) -> None:
    obj = kube.objects[("Deployment", NAMESPACE, name)]
    replicas = obj["spec"].get("replicas", 1)
    obj["metadata"]["generation"] = 1
    obj["status"] = {"observedGeneration": 1, "replicas": replicas, "updatedReplicas": replicas,
                     "availableReplicas": replicas, "readyReplicas": replicas}


def measure(size: int, *, interval: int, window: float) -> str:
    """One size: initialise ``size`` canaries, then tick them idle for ``window`` seconds."""
    names = [f"app-{i:04d}" for i in range(size)]
    objects = []
    for name in names:
        objects.append(make_deployment(name, NAMESPACE, replicas=1))
        objects.append(make_canary(name, NAMESPACE, provider="kubernetes",
                                   analysis={"interval": f"{interval}s", "threshold": 2, "iterations": 3}))
    kube = FakeKube(*objects)
    client = kube.as_kube()
    caches = {kind: informer(kube, version, kind) for version, kind in (
        (API_VERSION, "Canary"), ("apps/v1", "Deployment"), ("v1", "ConfigMap"), ("v1", "Secret"),
        ("v1", "Service"), (API_VERSION, "MetricTemplate"))}
    canaries = Canaries(caches["Canary"])
    by_kind = {(c.api_version, c.kind): c for c in caches.values()}
    webhooks = WebhookCaller()
    reconciler = Reconciler(
        kube=client, canaries=canaries,
        deployments=Deployments(client, deployments=caches["Deployment"], configmaps=caches["ConfigMap"],
                                secrets=caches["Secret"]),
        routers=RouterRegistry(RouterContext(client, cache=lambda api_version, kind: by_kind[(api_version, kind)]),
                               default="kubernetes"),
        checks=CheckRunner(webhooks=webhooks, templates=caches["MetricTemplate"], secrets=caches["Secret"],
                           metrics_server="http://prometheus.invalid", clock=_now),
        webhooks=webhooks, events=EventRecorder(client), notifier=LogNotifier(), settle_in_background=False,
        clock=_now)
    for name in names:  # initialise: primary made, then ready
        reconciler.tick(NAMESPACE, name)
        _ready(kube, f"{name}-primary")
        caches["Deployment"].store(kube.objects[("Deployment", NAMESPACE, f"{name}-primary")])
        reconciler.tick(NAMESPACE, name)
    phases = {(c.get("status") or {}).get("phase") for c in caches["Canary"].peek_all()}
    assert phases == {"Initialized"}, phases

    scheduler = CanaryScheduler(reconciler.tick, workers=WORKERS, canaries=canaries)
    scheduler.start()
    try:
        for obj in caches["Canary"].peek_all():
            scheduler.on_canary("ADDED", obj)
        time.sleep(interval * 1.5)  # the first ticks (all at once) and the spreading that follows
        kube.calls.clear()
        lag_before, cpu_before, began = _lag_buckets(), time.process_time(), time.monotonic()
        time.sleep(window)
        cpu, elapsed = time.process_time() - cpu_before, time.monotonic() - began
        lag = {le: count - lag_before.get(le, 0.0) for le, count in _lag_buckets().items()}
        requests = len(kube.calls)
    finally:
        scheduler.shutdown()
    ticks = lag.get(float("inf"), 0.0)  # the +Inf bucket counts every tick
    p50, p99 = quantile(0.5, lag), quantile(0.99, lag)
    per_tick = 1000 * cpu / ticks if ticks else float("nan")
    return (f"| {size} | {ticks:.0f} | {per_tick:.2f} | {1000 * (p50 or 0):.1f} / {1000 * (p99 or 0):.1f} | "
            f"{100 * (p99 or 0) / interval:.2f}% | {requests} | {elapsed:.0f} s |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10,100,1000")
    parser.add_argument("--interval", type=int, default=10)
    parser.add_argument("--window", type=float, default=30.0)
    args = parser.parse_args()
    configure("info", json=True)  # as the controller runs: idle ticks log nothing at info
    print(f"engine only, {WORKERS} workers, interval {args.interval} s, idle window {args.window:g} s")
    print("| N | ticks | CPU ms per tick | lag p50 / p99 ms | p99 / interval | API requests | window |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for size in (int(s) for s in args.sizes.split(",")):
        print(measure(size, interval=args.interval, window=args.window), flush=True)


if __name__ == "__main__":
    main()
