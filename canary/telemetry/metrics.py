"""The controller's own Prometheus metrics (Flagger's names where they exist, prefixed canary_)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

TICKS = Counter("canary_ticks_total", "Canary ticks by result (ok, retry, error).", ["result"])
TICK_SECONDS = Histogram("canary_tick_duration_seconds", "How long one tick of one canary took.",
                         buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
WEIGHT = Gauge("canary_weight", "Traffic weight per canary and workload.", ["name", "namespace", "workload"])
STATUS = Gauge("canary_status", "Last run of a canary: 0 running, 1 succeeded, 2 failed.", ["name", "namespace"])
LEADER = Gauge("canary_leader", "1 while this replica holds the leader lease.")
