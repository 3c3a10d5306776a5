from __future__ import annotations

import pytest

from analysis.gates import MetricVerdict, judge
from analysis.providers.base import Outcome, QueryResult


def test_a_value_within_bounds_passes() -> None:
    verdict = judge("request-success-rate", QueryResult.of(99.5), min=99, max=None)
    assert verdict == MetricVerdict("request-success-rate", 99.5, 99, None, "pass",
                                    "request-success-rate 99.5 within bounds (min 99)")


@pytest.mark.parametrize("value", [99.0, 100.0])
def test_a_value_on_a_bound_passes(value: float) -> None:
    assert judge("m", QueryResult.of(value), min=99, max=100).verdict == "pass"


def test_a_value_below_the_minimum_fails() -> None:
    verdict = judge("request-success-rate", QueryResult.of(80.5), min=99, max=None)
    assert (verdict.verdict, verdict.value) == ("fail", 80.5)
    assert verdict.message == "request-success-rate 80.5 < 99"


def test_a_value_above_the_maximum_fails() -> None:
    verdict = judge("request-duration", QueryResult.of(612.3), min=None, max=500)
    assert verdict.verdict == "fail"
    assert verdict.message == "request-duration 612.3 > 500"


def test_a_value_without_bounds_passes_and_says_so() -> None:
    assert judge("m", QueryResult.of(3), min=None, max=None).message == "m 3 (no bounds)"


def test_no_data_is_its_own_verdict_naming_the_metric() -> None:
    result = QueryResult(Outcome.NO_DATA, message="the query returned no series")
    verdict = judge("request-success-rate", result, min=99, max=None)
    assert verdict == MetricVerdict("request-success-rate", None, 99, None, "no-data",
                                    "request-success-rate: no values found: the query returned no series")


@pytest.mark.parametrize("outcome", [Outcome.SEVERAL_SERIES, Outcome.NOT_A_NUMBER, Outcome.UNAVAILABLE])
def test_a_query_that_gave_no_single_number_is_an_error_with_its_message(outcome: Outcome) -> None:
    verdict = judge("m", QueryResult(outcome, message="why"), min=None, max=1)
    assert (verdict.verdict, verdict.value, verdict.message) == ("error", None, "m: why")


@pytest.mark.parametrize(("value", "text"), [
    (80.5, "80.5"), (99.0, "99"), (612.34567, "612.3457"), (0.0, "0"), (-0.0, "0"), (0.00001234, "1.234e-05"),
    (-2.5, "-2.5"),
])
def test_numbers_are_written_compactly(value: float, text: str) -> None:
    assert judge("m", QueryResult.of(value), min=None, max=-10).message == f"m {text} > -10"
