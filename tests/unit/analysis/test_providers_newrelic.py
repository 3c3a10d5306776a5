from __future__ import annotations

import pytest

from analysis.providers.base import Outcome, QueryResult
from analysis.providers.newrelic import GRAPHQL, reduce_answer, reduce_rows, request_body
from analysis.providers.transport import QueryFailed


def test_the_nrql_goes_as_a_graphql_variable_not_into_the_document() -> None:
    nrql = "SELECT percentage(count(*), WHERE error IS true) FROM Transaction WHERE appName = 'web' SINCE 5 minutes ago"
    assert request_body(nrql, account_id=1234567) == {
        "query": GRAPHQL, "variables": {"accountId": 1234567, "nrql": nrql}}
    assert "$nrql: Nrql!" in GRAPHQL
    assert "nrql(query: $nrql)" in GRAPHQL
    assert "results" in GRAPHQL


def _answer(results: list[dict[str, object]]) -> dict[str, object]:
    return {"data": {"actor": {"account": {"nrql": {"results": results}}}}}


def test_one_row_with_one_value_is_the_answer() -> None:
    assert reduce_answer(_answer([{"average.duration": 0.25}])) == QueryResult(Outcome.VALUE, value=0.25)


def test_a_percentile_of_one_level_counts_as_one_value() -> None:
    assert reduce_rows([{"percentile.duration": {"95": 0.8}}]) == QueryResult(Outcome.VALUE, value=0.8)


def test_time_bounds_of_a_row_are_not_values() -> None:
    row = {"beginTimeSeconds": 1700000000, "endTimeSeconds": 1700000300, "count": 12}
    assert reduce_rows([row]) == QueryResult(Outcome.VALUE, value=12.0)


def test_no_rows_and_a_null_value_are_no_data() -> None:
    assert reduce_rows([]) == QueryResult(Outcome.NO_DATA, message="the query returned no rows")
    assert reduce_rows([{"average.duration": None}]) == QueryResult(Outcome.NO_DATA,
                                                                    message="average.duration is null")


def test_several_rows_or_values_are_not_one_value() -> None:
    rows = reduce_rows([{"count": 1}, {"count": 2}])
    assert rows == QueryResult(Outcome.SEVERAL_SERIES, message="the query returned 2 rows; drop its FACET and "
                                                               "TIMESERIES")
    values = reduce_rows([{"count": 1, "average.duration": 2}])
    assert values.message == "the query returned 2 values (average.duration, count); select one"


def test_graphql_errors_are_refusals_even_with_http_200() -> None:
    body = {"data": {"actor": {"account": {"nrql": None}}},
            "errors": [{"message": "NRQL Syntax Error: Error at line 1 position 7"}]}
    with pytest.raises(QueryFailed) as failure:
        reduce_answer(body)
    assert failure.value.outcome is Outcome.REJECTED
    assert failure.value.detail == "NRQL Syntax Error: Error at line 1 position 7"
