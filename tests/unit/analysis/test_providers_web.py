from __future__ import annotations

import pytest

from analysis.providers.base import Outcome, QueryResult
from analysis.providers.transport import QueryFailed
from analysis.providers.web import WebQuery, parse_query, pick

ANSWER = {"data": {"errorRate": 0.02, "ok": True, "count": "17", "status": "green", "empty": None,
                   "pods": [{"name": "a", "load": 0.5}, {"name": "b", "load": 0.7}]}}


def test_a_bare_jsonpath_is_a_get() -> None:
    assert parse_query(" $.data.errorRate ") == WebQuery("$.data.errorRate")


def test_argos_braces_are_accepted() -> None:
    assert parse_query("{$.data.errorRate}") == WebQuery("$.data.errorRate")


def test_an_object_query_with_a_body_is_a_post() -> None:
    query = '{"jsonPath": "{$.result}", "body": {"service": "web", "window": "5m"}}'
    assert parse_query(query) == WebQuery("$.result", "POST", {"service": "web", "window": "5m"})
    assert parse_query('{"jsonPath": "$.x", "method": "get"}') == WebQuery("$.x", "GET")


@pytest.mark.parametrize("query", ['{"jsonPath": 3}', '{"jsonPath": "$.x", "url": "http://elsewhere"}',
                                   '{"jsonPath": "$.x", "method": "DELETE"}', "{not json"])
def test_a_malformed_query_object_is_refused(query: str) -> None:
    with pytest.raises(QueryFailed) as failure:
        parse_query(query)
    assert failure.value.outcome is Outcome.REJECTED


@pytest.mark.parametrize(("path", "value"), [
    ("$.data.errorRate", 0.02), ("$.data.ok", 1.0), ("$.data.count", 17.0),
    ('$.data.pods[?(@.name == "b")].load', 0.7),
])
def test_the_path_picks_one_number(path: str, value: float) -> None:
    assert pick(ANSWER, path) == QueryResult(Outcome.VALUE, value=value)


def test_nothing_matched_and_null_are_no_data() -> None:
    assert pick(ANSWER, "$.data.missing") == QueryResult(Outcome.NO_DATA,
                                                         message="$.data.missing matched nothing in the answer")
    assert pick(ANSWER, "$.data.empty").outcome is Outcome.NO_DATA


def test_several_matches_are_several_series() -> None:
    assert pick(ANSWER, "$.data.pods[*].load") == QueryResult(
        Outcome.SEVERAL_SERIES, message="$.data.pods[*].load matched 2 values; narrow it to one")


def test_words_and_objects_are_not_numbers() -> None:
    assert pick(ANSWER, "$.data.status") == QueryResult(Outcome.NOT_A_NUMBER,
                                                        message="$.data.status selected a string, not a number")
    assert pick(ANSWER, "$.data.pods[0]").outcome is Outcome.NOT_A_NUMBER


def test_a_path_that_does_not_parse_is_refused() -> None:
    with pytest.raises(QueryFailed) as failure:
        pick(ANSWER, "$.data[")
    assert failure.value.outcome is Outcome.REJECTED
    assert "is not a JSONPath" in failure.value.detail
