"""The controller's own Prometheus metrics: Flagger's recorder under our prefix (``flagger_`` becomes
``canary_``), plus our own. docs/metrics.md maps each to Flagger's name."""

from __future__ import annotations

import contextlib
import threading

from prometheus_client import Counter, Gauge, Histogram

TICKS = Counter("canary_ticks_total", "Canary ticks by result (ok, retry, backoff, error).", ["result"])
for _result in ("ok", "retry", "backoff", "error"):  # at 0 from the start, for rates and alerts
    TICKS.labels(result=_result)
TICK_SECONDS = Histogram("canary_tick_duration_seconds", "How long one tick of one canary took.",
                         buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
TICK_LAG = Histogram("canary_tick_lag_seconds", "How late a canary's tick started: from when it was due (its "
                     "interval, or a change that asked for it) to when a worker began it.",
                     buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
INFO = Gauge("canary_info", "The controller's version and default router (1).", ["version", "mesh_provider"])
TOTAL = Gauge("canary_total", "Canaries per namespace.", ["namespace"])
WEIGHT = Gauge("canary_weight", "Traffic weight per canary and workload.", ["name", "namespace", "workload"])
STATUS = Gauge("canary_status", "Where a canary stands: 0 running, 1 settled (initialised or succeeded), 2 failed.",
               ["name", "namespace"])
DURATION = Histogram("canary_duration_seconds", "Seconds from the start of a run to its end (promoted or rolled "
                     "back).", ["name", "namespace"], buckets=(10, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200))
ANALYSIS = Gauge("canary_metric_analysis", "The last value of each metric check.", ["name", "namespace", "metric"])
SUCCESSES = Counter("canary_successes", "Runs promoted, by strategy and whether the analysis ran (completed) or "
                    "was skipped.", ["name", "namespace", "deployment_strategy", "analysis_status"])
FAILURES = Counter("canary_failures", "Runs rolled back, by strategy.",
                   ["name", "namespace", "deployment_strategy", "analysis_status"])
LEADER = Gauge("canary_leader", "1 while this replica holds the leader lease.")

_metrics_of: dict[tuple[str, str], set[str]] = {}
_lock = threading.Lock()


def set_analysis(name: str, namespace: str, metric: str, value: float) -> None:
    """Record a metric check's value (remembered, so that the series go with the canary)."""
    with _lock:
        _metrics_of.setdefault((name, namespace), set()).add(metric)
    ANALYSIS.labels(name=name, namespace=namespace, metric=metric).set(value)


def forget_canary(name: str, namespace: str, *, workloads: tuple[str, ...]) -> None:
    """Drop the gauges of a deleted canary, so that dashboards stop showing it (counters and the
    histogram stay: they are history, and Prometheus sees them stop changing)."""
    with _lock:
        checked = _metrics_of.pop((name, namespace), set())
    series = [(STATUS, (name, namespace)), *((WEIGHT, (name, namespace, w)) for w in workloads),
              *((ANALYSIS, (name, namespace, m)) for m in checked)]
    for gauge, labels in series:
        with contextlib.suppress(KeyError):  # never set: the canary never got as far as a tick
            gauge.remove(*labels)
