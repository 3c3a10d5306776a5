"""The controller's own Prometheus metrics (Flagger's names where they exist, prefixed canary_)."""

from __future__ import annotations

import contextlib

from prometheus_client import Counter, Gauge, Histogram

TICKS = Counter("canary_ticks_total", "Canary ticks by result (ok, retry, backoff, error).", ["result"])
TICK_SECONDS = Histogram("canary_tick_duration_seconds", "How long one tick of one canary took.",
                         buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
WEIGHT = Gauge("canary_weight", "Traffic weight per canary and workload.", ["name", "namespace", "workload"])
STATUS = Gauge("canary_status", "Where a canary stands: 0 running, 1 settled (initialised or succeeded), 2 failed.",
               ["name", "namespace"])
LEADER = Gauge("canary_leader", "1 while this replica holds the leader lease.")



def forget_canary(name: str, namespace: str, *, workloads: tuple[str, ...]) -> None:
    """Drop the series of a deleted canary, so that dashboards stop showing it."""
    series = [(STATUS, (name, namespace)), *((WEIGHT, (name, namespace, w)) for w in workloads)]
    for gauge, labels in series:
        with contextlib.suppress(KeyError):  # never set: the canary never got as far as a tick
            gauge.remove(*labels)
