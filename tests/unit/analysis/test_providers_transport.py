from __future__ import annotations

import json
import time
from collections.abc import Callable

import pytest

from analysis.providers.base import Outcome, QueryResult
from analysis.providers.config import ProviderConfig
from analysis.providers.transport import (
    PAUSE,
    BearerAuth,
    DeadlineSession,
    HttpClient,
    QueryFailed,
    Reply,
    Tls,
    shown,
)
from tests.httpfakes import Answer, FakeServer, Seen, dead_url


def test_a_client_error_is_a_refusal_and_a_server_error_is_unavailable() -> None:
    assert Reply(400, "Bad Request", b"bad").refusal().outcome is Outcome.REJECTED
    assert Reply(401, "Unauthorized", b"").refusal().outcome is Outcome.REJECTED
    assert Reply(500, "Internal Server Error", b"oops").refusal().outcome is Outcome.UNAVAILABLE


def test_a_refusal_quotes_the_back_ends_own_words_when_it_can_and_never_the_body() -> None:
    reply = Reply(400, "Bad Request", b'{"status": "error", "errorType": "bad_data", "error": "parse error"}')
    assert reply.refusal(lambda body: f"{body['errorType']}: {body['error']}").detail == \
        "HTTP 400 Bad Request: bad_data: parse error"
    html = Reply(502, "Bad Gateway", b"<html>\n  <body>upstream   down</body>\n</html>")
    assert html.refusal(lambda body: body["error"]).detail == \
        "HTTP 502 Bad Gateway: (45 bytes of HTML)"
    wordy = Reply(400, "Bad Request", json.dumps({"error": "x" * 500}).encode())
    assert wordy.refusal(lambda body: body["error"]).detail == f"HTTP 400 Bad Request: {'x' * 160}...", \
        "cut short"
    secret = Reply(200, "OK", b"global:\n  scrape_interval: 1s\nbasic_auth:\n  password: hunter2\n")
    assert "hunter2" not in secret.not_json().detail


def test_a_body_that_is_not_json_is_unavailable() -> None:
    with pytest.raises(QueryFailed) as failure:
        Reply(200, "OK", b"<html>login</html>").json()
    assert failure.value.outcome is Outcome.UNAVAILABLE
    assert failure.value.detail == "HTTP 200: the answer is not JSON: (18 bytes of HTML)"


def test_failures_read_as_sentences_about_their_source() -> None:
    down = QueryFailed(Outcome.UNAVAILABLE, "cannot connect: Connection refused (2 attempts)")
    refused = QueryFailed(Outcome.REJECTED, "HTTP 401 Unauthorized: bad credentials")
    assert down.result("Graphite at http://g") == QueryResult(
        Outcome.UNAVAILABLE, message="Graphite at http://g is unavailable: cannot connect: Connection refused "
                                     "(2 attempts)")
    assert refused.range_result("Prometheus at http://p").message == \
        "Prometheus at http://p refused the query: HTTP 401 Unauthorized: bad credentials"


def test_messages_show_addresses_without_user_info_or_query_string() -> None:
    assert shown("https://reader:s3cret@influxdb:8086/?db=telegraf&p=s3cret") == "https://influxdb:8086/"
    assert shown("https://slo.internal/api/v1/check?api_key=abc") == "https://slo.internal/api/v1/check"


# --- HttpClient against a local server: retries (tenacity), deadlines, what each session carries -----------------


def _failure(call: Callable[[], object]) -> tuple[QueryFailed, float]:
    started = time.monotonic()
    with pytest.raises(QueryFailed) as failure:
        call()
    return failure.value, time.monotonic() - started


def test_a_gateway_error_is_retried_and_the_second_answer_counts() -> None:
    answers = iter([Answer(503, b"restarting"), Answer(body={"ok": True})])
    with FakeServer(lambda seen: next(answers)) as api:
        reply = HttpClient(attempts=2).send("GET", f"{api.url}/x")
    assert (reply.status, reply.json()) == (200, {"ok": True})
    assert len(api.seen) == 2


def test_a_server_that_stays_down_costs_the_attempts_with_a_pause_between_and_says_so() -> None:
    pauses: list[float] = []
    with FakeServer(lambda seen: Answer(503, b"no healthy upstream")) as api:
        failing, _ = _failure(lambda: HttpClient(attempts=3, sleep=pauses.append).send("GET", api.url))
    refused, _ = _failure(lambda: HttpClient(attempts=3).send("GET", dead_url()))

    assert (failing.outcome, failing.detail) == (Outcome.UNAVAILABLE,
                                                 "HTTP 503 Service Unavailable: (19 bytes of text) (3 attempts)")
    assert len(api.seen) == 3
    assert pauses == [PAUSE, PAUSE]
    assert refused.detail.startswith("cannot connect: ")
    assert refused.detail.endswith("Connection refused (3 attempts)")


def test_other_answers_come_back_at_once_for_the_provider_to_word() -> None:
    answers = iter([Answer(500, b"boom"), Answer(400, b"bad query")])
    with FakeServer(lambda seen: next(answers)) as api:
        client = HttpClient(attempts=3)
        replies = [client.send("GET", api.url), client.send("GET", api.url)]
    assert [(r.status, r.reason, r.body) for r in replies] == [(500, "Internal Server Error", b"boom"),
                                                               (400, "Bad Request", b"bad query")]
    assert len(api.seen) == 2


def test_a_slow_server_never_holds_a_call_past_its_deadline() -> None:
    with FakeServer(lambda seen: Answer(body=b"{}", delay=10)) as api:
        failure, took = _failure(lambda: HttpClient(timeout=30, attempts=5).send("GET", api.url, deadline=0.5))
    assert (failure.outcome, failure.detail) == (Outcome.UNAVAILABLE, "no answer within the deadline of 0.5s")
    assert took < 0.9
    assert len(api.seen) == 1


def test_a_server_that_does_not_answer_in_time_costs_one_timeout() -> None:
    with FakeServer(lambda seen: Answer(body=b"{}", delay=10)) as api:
        failure, _ = _failure(lambda: HttpClient(timeout=0.3, attempts=3).send("GET", api.url))
    assert failure.detail == "no answer within 0.3s"
    assert len(api.seen) == 1


def test_a_trickling_answer_never_holds_a_call_past_its_deadline() -> None:
    # Each byte comes well within the socket timeout, so only the deadline can end the wait.
    with FakeServer(lambda seen: Answer(body=b'{"status": "success"}' * 4, trickle=0.05)) as api:
        failure, took = _failure(lambda: HttpClient(timeout=30).send("GET", api.url, deadline=0.8))
    assert failure.detail == "no answer within the deadline of 0.8s"
    assert took < 1.2


def test_no_retry_starts_that_the_deadline_could_not_wait_for() -> None:
    failure, took = _failure(lambda: HttpClient(attempts=10).send("GET", dead_url(), deadline=0.3))
    assert failure.outcome is Outcome.UNAVAILABLE
    assert failure.detail.endswith("Connection refused (2 attempts)")
    assert took < 0.5


def test_a_spent_deadline_sends_nothing() -> None:
    with FakeServer(lambda seen: Answer(body=b"{}")) as api:
        failure, _ = _failure(lambda: HttpClient().send("GET", api.url, deadline=0))
    assert failure.detail == "no answer within the deadline of 0s"
    assert api.seen == []


def test_a_redirect_is_followed_within_the_same_deadline() -> None:
    def respond(seen: Seen) -> Answer:
        return Answer(302, headers={"Location": "/new"}) if seen.path == "/old" else Answer(body=b"moved")

    with FakeServer(respond) as api:
        reply = HttpClient().send("GET", f"{api.url}/old", deadline=2)
    assert (reply.status, reply.body) == (200, b"moved")
    assert [seen.path for seen in api.seen] == ["/old", "/new"]


def test_tls_to_a_plain_http_server_fails_once_and_says_tls() -> None:
    with FakeServer(lambda seen: Answer(body=b"{}")) as api:
        failure, _ = _failure(lambda: HttpClient(attempts=3).send("GET", api.url.replace("http:", "https:")))
    assert failure.detail.startswith("TLS failed: ")
    assert "attempts" not in failure.detail


def test_each_attempt_gets_a_session_with_the_headers_credentials_tls_and_its_share_of_the_deadline() -> None:
    client = HttpClient(headers={"X-Scope-OrgID": "team-a"}, auth=BearerAuth("t0ken"), timeout=3,
                        tls=Tls(ProviderConfig(insecure_skip_verify=True), field="spec.provider"))
    sessions: list[DeadlineSession] = []
    client.call(sessions.append, deadline=1.5)
    client.call(sessions.append)

    first, second = sessions
    assert first is not second
    assert first.headers["X-Scope-OrgID"] == "team-a"
    assert isinstance(first.auth, BearerAuth)
    assert first.verify is False
    assert 1.0 < first.timeout <= 1.5
    assert second.timeout == 3
    assert HttpClient().call(lambda session: session.verify) is True


def test_headers_and_credentials_reach_the_server() -> None:
    with FakeServer(lambda seen: Answer(body=b"{}")) as api:
        client = HttpClient(headers={"X-Team": "payments"}, auth=BearerAuth("w3b"))
        client.send("POST", f"{api.url}/q", params=[("target", "a"), ("target", "b")], json_body={"n": 1},
                    headers={"Accept": "application/json"})
    (seen,) = api.seen
    assert (seen.method, seen.path, seen.query) == ("POST", "/q", {"target": ["a", "b"]})
    assert seen.headers["x-team"] == "payments"
    assert seen.headers["authorization"] == "Bearer w3b"
    assert seen.headers["accept"] == "application/json"
    assert json.loads(seen.body) == {"n": 1}


def test_a_plain_text_refusal_may_give_its_last_line_cut_short() -> None:
    page = b"Traceback (most recent call last):\n  File x\nValueError: unknown function noSuchFunction\n"
    assert Reply(400, "Bad Request", page).refusal(plain=True).detail == \
        "HTTP 400 Bad Request: ValueError: unknown function noSuchFunction"
    assert Reply(400, "Bad Request", b"<html>oops</html>").refusal(plain=True).detail == \
        "HTTP 400 Bad Request: (17 bytes of HTML)"
    assert len(Reply(400, "Bad Request", b"x" * 1000).refusal(plain=True).detail) < 200
