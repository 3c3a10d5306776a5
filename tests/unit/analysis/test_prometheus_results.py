from __future__ import annotations

from analysis.providers.base import Outcome, QueryResult
from analysis.providers.prometheus import reduce_result


def _series(value: str, **labels: str) -> dict[str, object]:
    return {"metric": labels, "value": [1700000000.0, value]}


def test_one_series_gives_its_value() -> None:
    assert reduce_result([_series("99.5", app="web")]) == QueryResult(Outcome.VALUE, value=99.5)


def test_a_scalar_gives_its_value() -> None:
    assert reduce_result([1700000000.0, "3"]) == QueryResult(Outcome.VALUE, value=3.0)


def test_no_series_is_no_data() -> None:
    result = reduce_result([])
    assert result.outcome is Outcome.NO_DATA
    assert result.message == "the query returned no series"


def test_several_series_name_some_of_them() -> None:
    result = reduce_result([_series("1", pod="a"), _series("2", pod="b")])
    assert result.outcome is Outcome.SEVERAL_SERIES
    assert '{pod="a"}' in result.message
    assert "aggregate it to one" in result.message


def test_nan_and_infinity_are_not_numbers() -> None:
    assert reduce_result([_series("NaN")]).outcome is Outcome.NOT_A_NUMBER
    assert reduce_result([_series("+Inf")]).outcome is Outcome.NOT_A_NUMBER
