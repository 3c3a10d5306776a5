from __future__ import annotations

import math

from analysis.providers.base import Outcome, RangeProvider, RangeResult
from analysis.providers.prometheus import PrometheusProvider, reduce_matrix


def test_prometheus_is_a_range_provider_at_its_address_without_a_trailing_slash() -> None:
    provider = PrometheusProvider("http://prometheus:9090/")
    ranged: RangeProvider = provider  # mypy checks the protocol here
    assert ranged is provider
    assert provider.url == "http://prometheus:9090"


def _series(values: list[str], **labels: str) -> dict[str, object]:
    return {"metric": labels, "values": [[1700000000.0 + 15 * i, v] for i, v in enumerate(values)]}


def test_a_range_of_one_series_gives_its_samples_oldest_first() -> None:
    assert reduce_matrix([_series(["1", "2.5", "4"])]) == RangeResult(Outcome.VALUE, values=(1.0, 2.5, 4.0))


def test_a_range_without_series_is_no_data() -> None:
    assert reduce_matrix([]) == RangeResult(Outcome.NO_DATA, message="the query returned no series")


def test_a_range_of_several_series_names_them() -> None:
    result = reduce_matrix([_series(["1"], pod="a"), _series(["2"], pod="b")])
    assert result.outcome is Outcome.SEVERAL_SERIES
    assert result.message == 'the query returned 2 series ({pod="a"}, {pod="b"}); aggregate it to one'


def test_nan_samples_are_left_out_and_counted() -> None:
    result = reduce_matrix([_series(["1", "NaN", "3", "+Inf"])])
    assert result == RangeResult(Outcome.VALUE, values=(1.0, 3.0),
                                 message="2 of 4 samples were NaN or infinite and were left out")


def test_a_range_of_nothing_but_nan_is_not_a_number() -> None:
    result = reduce_matrix([_series(["NaN", "NaN"])])
    assert result.outcome is Outcome.NOT_A_NUMBER
    assert result.message == "all 2 samples are NaN or infinite"
    assert not any(math.isnan(v) for v in result.values)


def test_a_series_without_samples_is_no_data() -> None:
    assert reduce_matrix([_series([])]).outcome is Outcome.NO_DATA
