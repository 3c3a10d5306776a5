from __future__ import annotations

import time

import pytest

from analysis.providers.base import Outcome, QueryResult
from analysis.providers.config import ProviderConfig
from analysis.providers.datadog import DatadogProvider, query_params, reduce_series
from analysis.providers.registry import provider_for
from analysis.providers.transport import HttpClient, QueryFailed
from tests.httpfakes import Answer, FakeServer


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


KEYS = {"apiKey": "dd-api", "applicationKey": "dd-app"}


def test_the_query_looks_back_the_configs_window_which_the_controller_sets_to_ten_intervals() -> None:
    with FakeServer(lambda seen: Answer(body={"status": "ok", "series": []})) as api:
        before = int(time.time())
        provider_for(ProviderConfig("datadog", api.url, credentials=KEYS, window=600)).query("avg:m{*}")
        provider_for(ProviderConfig("datadog", api.url, credentials=KEYS)).query("avg:m{*}")
        after = int(time.time())

    spans = [int(seen.query["to"][0]) - int(seen.query["from"][0]) for seen in api.seen]
    assert spans == [600, 300]  # the second, without a window, gets the config's default
    assert all(before <= int(seen.query["to"][0]) <= after for seen in api.seen)


def test_from_is_now_minus_the_window() -> None:
    with FakeServer(lambda seen: Answer(body={"status": "ok", "series": []})) as api:
        DatadogProvider(api.url, http=HttpClient(), window=600, wall_clock=lambda: 1700000600.0).query("avg:m{*}")
    (seen,) = api.seen
    assert (seen.query["from"], seen.query["to"]) == (["1700000000"], ["1700000600"])
