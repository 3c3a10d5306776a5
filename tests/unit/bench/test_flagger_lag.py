from __future__ import annotations

import math

import pytest

from bench.flagger import lag

PAGE = """# HELP canary_tick_lag_seconds How late each tick started.
# TYPE canary_tick_lag_seconds histogram
canary_tick_lag_seconds_bucket{le="0.01"} 50.0
canary_tick_lag_seconds_bucket{le="0.1"} 90.0
canary_tick_lag_seconds_bucket{le="1.0"} 100.0
canary_tick_lag_seconds_bucket{le="+Inf"} 100.0
canary_tick_lag_seconds_count 100.0
canary_tick_lag_seconds_sum 2.0
"""


def test_buckets_are_read_from_a_metrics_page() -> None:
    assert lag.buckets(PAGE, lag.TICK_LAG) == {0.01: 50, 0.1: 90, 1.0: 100, math.inf: 100}
    assert lag.buckets(PAGE, "canary_other_seconds") == {}


def test_quantiles_interpolate_within_a_bucket_as_prometheus_does() -> None:
    cumulative = lag.buckets(PAGE, lag.TICK_LAG)
    assert lag.quantile(0.5, cumulative) == pytest.approx(0.01)
    assert lag.quantile(0.25, cumulative) == pytest.approx(0.005)
    assert lag.quantile(0.95, cumulative) == pytest.approx(0.55)


def test_a_rank_in_the_infinite_bucket_gives_the_highest_bound() -> None:
    assert lag.quantile(0.99, {0.1: 10, math.inf: 100}) == pytest.approx(0.1)


def test_a_window_is_the_difference_of_two_scrapes() -> None:
    before = {0.01: 40.0, 0.1: 40.0, math.inf: 40.0}
    after = {0.01: 40.0, 0.1: 50.0, math.inf: 50.0}
    window = lag.difference(after, before)
    assert window == {0.01: 0, 0.1: 10, math.inf: 10}
    assert lag.quantile(0.5, window) == pytest.approx(0.055)


def test_no_observations_give_no_quantile() -> None:
    assert lag.quantile(0.5, {}) is None
    assert lag.quantile(0.5, {0.1: 0, math.inf: 0}) is None


def test_a_quantile_outside_0_to_1_is_refused() -> None:
    with pytest.raises(ValueError, match="between 0 and 1"):
        lag.quantile(99, {0.1: 1})
