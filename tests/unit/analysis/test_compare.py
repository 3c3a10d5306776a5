from __future__ import annotations

import itertools

import pytest

from analysis.compare import Classification, Comparison, Direction, Verdict, compare, score, verdict

PRIMARY = [100.0, 102.0, 98.0, 101.0, 99.0, 103.0, 97.0, 100.5]
SLOWER = [v * 1.3 for v in PRIMARY]


def exact_two_sided_p(x: list[float], y: list[float]) -> float:
    """Mann-Whitney's exact p-value by enumerating every split of the pooled sample (no ties)."""
    pooled = x + y

    def u_of(first: tuple[float, ...]) -> int:
        second = list(pooled)
        for value in first:
            second.remove(value)
        return sum(1 for a in first for b in second if a > b)

    observed = u_of(tuple(x))
    all_u = [u_of(first) for first in itertools.combinations(pooled, len(x))]
    low = sum(1 for u in all_u if u <= observed) / len(all_u)
    high = sum(1 for u in all_u if u >= observed) / len(all_u)
    return min(1.0, 2 * min(low, high))


def test_the_p_value_is_mann_whitneys_exact_one() -> None:
    canary = [101.5, 104.0, 99.5, 106.0, 103.5]
    primary = [100.0, 98.0, 101.0, 99.0, 97.0]
    result = compare(canary, primary, confidence=0.95)
    assert result.p_value == pytest.approx(exact_two_sided_p(canary, primary))
    # By hand: U = 23 of 25 pairs; of the 252 ways to split ten values, 4 give U >= 23 (U = 25, 24, and
    # two with 23), so the two-sided p is 2 x 4/252.
    assert result.p_value == pytest.approx(8 / 252)


def test_a_canary_thirty_percent_slower_is_high() -> None:
    result = compare(SLOWER, PRIMARY, direction=Direction.INCREASE, allowed_change=0.1)
    assert result.classification is Classification.HIGH
    assert result.change == pytest.approx(0.3)
    assert result.p_value is not None
    assert result.p_value < 0.001
    assert result.message.startswith("canary higher than primary: median 130.325 vs 100.25 (+30.0%, allowed ±10%)")


def test_a_significant_but_small_change_passes() -> None:
    assert compare([v * 1.05 for v in PRIMARY], PRIMARY, allowed_change=0.1).classification is Classification.PASS


def test_the_direction_decides_which_change_fails() -> None:
    faster = [v * 0.7 for v in PRIMARY]
    assert compare(faster, PRIMARY, direction=Direction.INCREASE).classification is Classification.PASS
    assert compare(faster, PRIMARY, direction=Direction.DECREASE).classification is Classification.LOW
    assert compare(faster, PRIMARY, direction=Direction.EITHER).classification is Classification.LOW
    assert compare(SLOWER, PRIMARY, direction=Direction.DECREASE).classification is Classification.PASS


def test_a_large_but_insignificant_difference_passes() -> None:
    noisy = compare([10.0, 400.0, 12.0], [11.0, 9.0, 300.0], allowed_change=0.1)
    assert noisy.classification is Classification.PASS


def test_too_few_samples_is_no_data() -> None:
    result = compare([1.0, 2.0], PRIMARY)
    assert result.classification is Classification.NO_DATA
    assert result.message == "too few samples (canary 2, primary 8; need 3)"


def test_the_score_counts_passes_among_judged_metrics_and_sets_the_verdict() -> None:
    passed = Comparison(Classification.PASS, 0.5, 0.0, "")
    high = Comparison(Classification.HIGH, 0.001, 0.3, "")
    missing = Comparison(Classification.NO_DATA, None, None, "")
    assert score([passed, high, missing]) == 50.0
    assert score([missing]) is None
    assert verdict(100, pass_score=95, marginal_score=75) is Verdict.PASS
    assert verdict(80, pass_score=95, marginal_score=75) is Verdict.HOLD
    assert verdict(50, pass_score=95, marginal_score=75) is Verdict.FAIL
