from __future__ import annotations

import pytest

from analysis.providers.base import Outcome, QueryResult
from analysis.providers.datadog import query_params, reduce_series
from analysis.providers.transport import QueryFailed


def test_the_query_covers_the_window_that_ends_now_in_whole_seconds() -> None:
    assert query_params("avg:trace.http.request.errors{service:web}.as_count()", now=1700000300.7, window=300) == {
        "from": "1700000000", "to": "1700000300", "query": "avg:trace.http.request.errors{service:web}.as_count()"}


def _answer(*pointlists: list[list[float | None]]) -> dict[str, object]:
    return {"status": "ok", "res_type": "time_series",
            "series": [{"scope": f"service:s{i}", "pointlist": p} for i, p in enumerate(pointlists)]}


def test_the_answer_is_the_last_non_null_point() -> None:
    answer = _answer([[1700000000000.0, 1.5], [1700000060000.0, 2.5], [1700000120000.0, None]])
    assert reduce_series(answer) == QueryResult(Outcome.VALUE, value=2.5)


def test_no_series_and_no_points_are_no_data() -> None:
    assert reduce_series({"status": "ok", "series": []}) == QueryResult(Outcome.NO_DATA,
                                                                         message="the query returned no series")
    assert reduce_series(_answer([])) == QueryResult(Outcome.NO_DATA, message="the series has no points in the window")


def test_several_series_name_their_scopes() -> None:
    result = reduce_series(_answer([[0.0, 1.0]], [[0.0, 2.0]]))
    assert result.outcome is Outcome.SEVERAL_SERIES
    assert result.message.startswith("the query returned 2 series (service:s0, service:s1)")


def test_an_error_status_is_a_refusal_in_datadogs_words() -> None:
    with pytest.raises(QueryFailed) as failure:
        reduce_series({"status": "error", "error": "Rule 'avg:' is invalid"})
    assert failure.value.outcome is Outcome.REJECTED
    assert failure.value.detail == "Rule 'avg:' is invalid"
