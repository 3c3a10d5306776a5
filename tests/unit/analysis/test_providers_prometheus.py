from __future__ import annotations

import base64
import json
import math
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests
from prometheus_api_client.exceptions import PrometheusApiClientException
from prometheus_api_client.prometheus_connect import PrometheusConnect
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from analysis.providers.base import Outcome, QueryResult, RangeProvider, RangeResult
from analysis.providers.config import ProviderConfig
from analysis.providers.prometheus import PrometheusProvider, reduce_matrix
from analysis.providers.registry import provider_for
from tests.httpfakes import Answer, FakeServer, dead_url


def test_prometheus_is_a_range_provider_at_its_address_without_a_trailing_slash() -> None:
    provider = PrometheusProvider("http://prometheus:9090/")
    ranged: RangeProvider = provider  # mypy checks the protocol here
    assert ranged is provider
    assert provider.url == "http://prometheus:9090"


def _series(values: list[str], **labels: str) -> dict[str, object]:
    return {"metric": labels, "values": [[1700000000.0 + 15 * i, v] for i, v in enumerate(values)]}


def test_a_range_of_one_series_gives_its_samples_oldest_first() -> None:
    assert reduce_matrix([_series(["1", "2.5", "4"])]) == RangeResult(
        Outcome.VALUE, values=(1.0, 2.5, 4.0), times=(1700000000.0, 1700000015.0, 1700000030.0))


def test_a_range_without_series_is_no_data() -> None:
    assert reduce_matrix([]) == RangeResult(Outcome.NO_DATA, message="the query returned no series")


def test_a_range_of_several_series_names_them() -> None:
    result = reduce_matrix([_series(["1"], pod="a"), _series(["2"], pod="b")])
    assert result.outcome is Outcome.SEVERAL_SERIES
    assert result.message == 'the query returned 2 series ({pod="a"}, {pod="b"}); aggregate it to one'


def test_nan_samples_are_left_out_and_counted() -> None:
    result = reduce_matrix([_series(["1", "NaN", "3", "+Inf"])])
    assert result == RangeResult(Outcome.VALUE, values=(1.0, 3.0), times=(1700000000.0, 1700000030.0),
                                 message="2 of 4 samples were NaN or infinite and were left out")


def test_a_range_of_nothing_but_nan_is_not_a_number() -> None:
    result = reduce_matrix([_series(["NaN", "NaN"])])
    assert result.outcome is Outcome.NOT_A_NUMBER
    assert result.message == "all 2 samples are NaN or infinite"
    assert not any(math.isnan(v) for v in result.values)


def test_a_series_without_samples_is_no_data() -> None:
    assert reduce_matrix([_series([])]).outcome is Outcome.NO_DATA


# --- against a local server that speaks Prometheus's HTTP API ---------------------------------------------------------

ANSWER = {"status": "success",
          "data": {"resultType": "vector", "result": [{"metric": {}, "value": [1700000000, "0.5"]}]}}


def _vector(*values: str) -> dict[str, Any]:
    return {"status": "success", "data": {"resultType": "vector", "result": [
        {"metric": {"pod": f"p{i}"}, "value": [1700000000, v]} for i, v in enumerate(values)]}}


def _provider(api: FakeServer, **settings: Any) -> PrometheusProvider:
    provider = provider_for(ProviderConfig("prometheus", api.url, **settings))
    assert isinstance(provider, PrometheusProvider)
    return provider


def test_an_instant_query_sends_the_query_its_timeout_the_token_and_the_headers() -> None:
    with FakeServer(lambda seen: Answer(body=ANSWER)) as api:
        provider = _provider(api, headers={"X-Scope-OrgID": "team-a"}, credentials={"token": "t0ken"}, timeout=3)
        result = provider.query('sum(rate(http_requests_total{app="web"}[1m]))')

    assert result == QueryResult(Outcome.VALUE, value=0.5)
    (seen,) = api.seen
    assert (seen.method, seen.path) == ("GET", "/api/v1/query")
    assert seen.query == {"query": ['sum(rate(http_requests_total{app="web"}[1m]))'], "timeout": ["3000ms"]}
    assert seen.headers["authorization"] == "Bearer t0ken"
    assert seen.headers["x-scope-orgid"] == "team-a"


def test_basic_auth_comes_from_the_secrets_username_and_password() -> None:
    with FakeServer(lambda seen: Answer(body=ANSWER)) as api:
        _provider(api, credentials={"username": "canary", "password": "s3cret"}).query("up")
    assert api.seen[0].headers["authorization"] == "Basic " + base64.b64encode(b"canary:s3cret").decode()


def test_each_result_shape_gives_its_outcome() -> None:
    answers = iter([Answer(body=_vector()), Answer(body=_vector("1", "2")), Answer(body=_vector("NaN")),
                    Answer(body={"status": "success", "data": {"resultType": "scalar", "result": [1700000000, "7"]}})])
    with FakeServer(lambda seen: next(answers)) as api:
        provider = _provider(api)
        results = [provider.query("q") for _ in range(4)]
    assert results[0] == QueryResult(Outcome.NO_DATA, message="the query returned no series")
    assert results[1].outcome is Outcome.SEVERAL_SERIES
    assert '{pod="p0"}, {pod="p1"}' in results[1].message
    assert results[2] == QueryResult(Outcome.NOT_A_NUMBER, message="the query returned nan")
    assert results[3] == QueryResult(Outcome.VALUE, value=7.0)


def test_a_range_query_sends_whole_second_bounds_the_step_and_the_timeout() -> None:
    matrix = {"status": "success", "data": {"resultType": "matrix", "result": [_series(["1", "2", "3"])]}}
    with FakeServer(lambda seen: Answer(body=matrix)) as api:
        end = datetime(2023, 11, 14, 22, 15, 0, 400000, tzinfo=UTC)
        result = _provider(api, timeout=2).query_range("vector(1)", start=end - timedelta(minutes=1), end=end,
                                                       step=timedelta(seconds=15))

    assert result == RangeResult(Outcome.VALUE, values=(1.0, 2.0, 3.0),
                                 times=(1700000000.0, 1700000015.0, 1700000030.0))
    (seen,) = api.seen
    assert seen.path == "/api/v1/query_range"
    # PrometheusConnect rounds start and end to whole seconds.
    assert seen.query == {"query": ["vector(1)"], "start": [str(round(end.timestamp()) - 60)],
                          "end": [str(round(end.timestamp()))], "step": ["15"], "timeout": ["2000ms"]}


def test_a_range_answered_with_something_other_than_a_matrix_is_unavailable() -> None:
    with FakeServer(lambda seen: Answer(body=ANSWER)) as api:
        end = datetime.now(UTC)
        result = _provider(api).query_range("up", start=end - timedelta(minutes=1), end=end, step=timedelta(seconds=15))
    assert result == RangeResult(Outcome.UNAVAILABLE, message=f"Prometheus at {api.url} answered a range query with "
                                                              "something other than a matrix")


def test_a_refusal_quotes_prometheus_error_type_and_error() -> None:
    answers = iter([Answer(400, {"status": "error", "errorType": "bad_data", "error": "parse error at char 5"}),
                    Answer(422, {"status": "error", "errorType": "execution", "error": "many-to-many matching"}),
                    Answer(401, b"Unauthorized\n")])
    with FakeServer(lambda seen: next(answers)) as api:
        provider = _provider(api, attempts=3)
        bad, failing, unauthorised = (provider.query("sum(") for _ in range(3))

    assert bad == QueryResult(Outcome.REJECTED, message=f"Prometheus at {api.url} refused the query: HTTP 400 Bad "
                                                        "Request: bad_data: parse error at char 5")
    assert failing.message.endswith("HTTP 422 Unprocessable Entity: execution: many-to-many matching")
    assert unauthorised == QueryResult(Outcome.REJECTED, message=f"Prometheus at {api.url} refused the query: HTTP "
                                                                 "401 Unauthorized: (13 bytes of text)")
    assert len(api.seen) == 3


def test_a_range_refusal_reads_the_same() -> None:
    with FakeServer(lambda seen: Answer(400, {"status": "error", "errorType": "bad_data", "error": "nope"})) as api:
        end = datetime.now(UTC)
        result = _provider(api).query_range("x", start=end - timedelta(minutes=1), end=end, step=timedelta(seconds=15))
    assert result == RangeResult(Outcome.REJECTED, message=f"Prometheus at {api.url} refused the query: HTTP 400 "
                                                           "Bad Request: bad_data: nope")


def test_gateway_errors_are_retried_by_tenacity_alone_and_server_errors_not_at_all() -> None:
    with FakeServer(lambda seen: Answer(503, b"no healthy upstream")) as down:
        failing = _provider(down, attempts=3).query("up")
    with FakeServer(lambda seen: Answer(500, b"internal")) as broken:
        error = _provider(broken, attempts=3).query("up")
    answers = iter([Answer(502, b"bad gateway"), Answer(body=ANSWER)])
    with FakeServer(lambda seen: next(answers)) as flaky:
        recovered = _provider(flaky, attempts=2).query("up")

    assert failing == QueryResult(Outcome.UNAVAILABLE, message=f"Prometheus at {down.url} is unavailable: HTTP 503 "
                                                               "Service Unavailable: (19 bytes of text) (3 attempts)")
    assert len(down.seen) == 3  # PrometheusConnect's own Retry would have made it 12
    assert error == QueryResult(Outcome.UNAVAILABLE, message=f"Prometheus at {broken.url} is unavailable: HTTP 500 "
                                                             "Internal Server Error: (8 bytes of text)")
    assert len(broken.seen) == 1
    assert recovered == QueryResult(Outcome.VALUE, value=0.5)


def test_an_unreachable_server_costs_the_attempts() -> None:
    address = dead_url()
    result = provider_for(ProviderConfig("prometheus", address, attempts=3)).query("up")
    assert result.outcome is Outcome.UNAVAILABLE
    assert result.message.startswith(f"Prometheus at {address} is unavailable: cannot connect: ")
    assert result.message.endswith("Connection refused (3 attempts)")


def test_an_answer_that_is_not_json_or_not_prometheus_is_unavailable() -> None:
    answers = iter([Answer(body=b"<html>login</html>"), Answer(body={"status": "success"}),
                    Answer(body={"status": "success", "data": {"result": [{"metric": {}}]}})])
    with FakeServer(lambda seen: next(answers)) as api:
        provider = _provider(api)
        html, no_result, no_value = (provider.query("up") for _ in range(3))
    assert html == QueryResult(Outcome.UNAVAILABLE, message=f"Prometheus at {api.url} is unavailable: HTTP 200: the "
                                                            "answer is not JSON: (18 bytes of HTML)")
    assert no_result == QueryResult(Outcome.UNAVAILABLE, message=f"Prometheus at {api.url} is unavailable: unexpected "
                                                               "answer: (21 bytes of JSON)")
    assert no_value == QueryResult(Outcome.UNAVAILABLE, message=f"Prometheus at {api.url} answered with an "
                                                                "unexpected result")


def test_a_slow_prometheus_never_holds_a_query_past_its_deadline_and_is_told_the_deadline() -> None:
    with FakeServer(lambda seen: Answer(body=ANSWER, delay=10)) as api:
        started = time.monotonic()
        result = _provider(api, timeout=30, attempts=5).query("up", deadline=0.5)
        took = time.monotonic() - started
    assert result == QueryResult(Outcome.UNAVAILABLE, message=f"Prometheus at {api.url} is unavailable: no answer "
                                                              "within the deadline of 0.5s")
    assert took < 0.9
    assert api.seen[0].query["timeout"] == ["500ms"]


def test_a_prometheus_that_does_not_answer_in_time_costs_one_timeout() -> None:
    with FakeServer(lambda seen: Answer(body=ANSWER, delay=10)) as api:
        result = _provider(api, timeout=0.3, attempts=3).query("up")
    assert result == QueryResult(Outcome.UNAVAILABLE, message=f"Prometheus at {api.url} is unavailable: no answer "
                                                              "within 0.3s")
    assert len(api.seen) == 1


def test_a_trickling_prometheus_never_holds_a_query_past_its_deadline() -> None:
    with FakeServer(lambda seen: Answer(body=ANSWER, trickle=0.05)) as api:
        started = time.monotonic()
        result = _provider(api, timeout=30).query("up", deadline=0.8)
        took = time.monotonic() - started
    assert result == QueryResult(Outcome.UNAVAILABLE, message=f"Prometheus at {api.url} is unavailable: no answer "
                                                              "within the deadline of 0.8s")
    assert took < 1.2


def test_tls_settings_reach_prometheusconnect() -> None:
    with FakeServer(lambda seen: Answer(body=ANSWER)) as api:
        result = provider_for(ProviderConfig("prometheus", api.url.replace("http:", "https:"), attempts=3,
                                             insecure_skip_verify=True)).query("up")
    assert result.outcome is Outcome.UNAVAILABLE
    assert "is unavailable: TLS failed: " in result.message  # verification off, yet no TLS on a plain HTTP port


# --- what prometheus-api-client 0.7 itself does, which the provider works with ------------------------------------


def test_prometheusconnect_retries_on_its_own_unless_told_not_to() -> None:
    default = PrometheusConnect("http://prometheus:9090")
    adapter = default._session.get_adapter("http://prometheus:9090/api/v1/query")
    assert isinstance(adapter, HTTPAdapter)
    retry = adapter.max_retries
    assert (retry.total, retry.backoff_factor) == (3, 1)
    assert {500, 502, 503, 504}.issubset(retry.status_forcelist or ())


def test_prometheusconnect_keeps_the_error_body_only_as_a_repr_in_its_message() -> None:
    body = {"status": "error", "errorType": "bad_data", "error": "parse error"}
    with FakeServer(lambda seen: Answer(400, body)) as api, pytest.raises(PrometheusApiClientException) as error:
        PrometheusConnect(api.url, retry=Retry(0, read=False)).custom_query("sum(")
    assert str(error.value) == f"HTTP Status Code 400 ({json.dumps(body).encode()!r})"
    assert error.value.args == (str(error.value),)  # no status, reason or body to read back


def test_without_read_false_a_read_timeout_comes_back_as_a_connection_error() -> None:
    with FakeServer(lambda seen: Answer(body=ANSWER, delay=10)) as api:
        with pytest.raises(requests.ConnectionError) as plain:
            PrometheusConnect(api.url, retry=Retry(0), timeout=0.2).custom_query("up")  # type: ignore[arg-type]
        with pytest.raises(requests.ReadTimeout):
            PrometheusConnect(api.url, retry=Retry(0, read=False), timeout=0.2).custom_query("up")  # type: ignore[arg-type]
    assert not isinstance(plain.value, requests.Timeout)
