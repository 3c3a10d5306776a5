"""Quantiles of a Prometheus histogram between two scrapes: our controller's tick lag.

``run.py`` reads our controller's /metrics when a window opens and closes; the difference of the two
cumulative bucket sets is the window's own histogram, and its quantiles are estimated as Prometheus's
``histogram_quantile`` does (linear within the bucket that holds the rank).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from prometheus_client.parser import text_string_to_metric_families

TICK_LAG = "canary_tick_lag_seconds"
"""Our controller's histogram of how late each tick started against its schedule."""

Buckets = dict[float, float]
"""Upper bound (``le``) -> cumulative count, summed over every label set."""


def buckets(metrics_text: str, name: str) -> Buckets:
    """The cumulative buckets of histogram ``name`` in a /metrics page (empty when it has none)."""
    found: Buckets = {}
    for family in text_string_to_metric_families(metrics_text):
        for sample in family.samples:
            if sample.name == f"{name}_bucket":
                bound = float(sample.labels["le"])
                found[bound] = found.get(bound, 0.0) + sample.value
    return found


def difference(after: Mapping[float, float], before: Mapping[float, float]) -> Buckets:
    """The buckets of what was observed between two scrapes."""
    return {bound: count - before.get(bound, 0.0) for bound, count in after.items()}


def quantile(q: float, cumulative: Mapping[float, float]) -> float | None:
    """The ``q`` quantile (0..1) of cumulative buckets, as histogram_quantile estimates it; None without
    observations. A rank in the +Inf bucket gives the highest finite bound."""
    if not 0 <= q <= 1:
        raise ValueError(f"a quantile is between 0 and 1, got {q}")
    bounds = sorted(cumulative)
    if not bounds or cumulative[bounds[-1]] <= 0:
        return None
    rank = q * cumulative[bounds[-1]]
    lower, below = 0.0, 0.0
    for bound in bounds:
        count = cumulative[bound]
        if count >= rank:
            if math.isinf(bound):
                return lower
            if count == below:
                return bound
            return lower + (bound - lower) * (rank - below) / (count - below)
        lower, below = bound, count
    return lower
