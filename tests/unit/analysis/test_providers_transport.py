from __future__ import annotations

import pytest

from analysis.providers.base import Outcome, QueryResult
from analysis.providers.transport import QueryFailed, Reply, shown


def test_a_client_error_is_a_refusal_and_a_server_error_is_unavailable() -> None:
    assert Reply(400, "Bad Request", b"bad").refusal().outcome is Outcome.REJECTED
    assert Reply(401, "Unauthorized", b"").refusal().outcome is Outcome.REJECTED
    assert Reply(500, "Internal Server Error", b"oops").refusal().outcome is Outcome.UNAVAILABLE


def test_a_refusal_quotes_the_back_ends_own_words_when_it_can() -> None:
    reply = Reply(400, "Bad Request", b'{"status": "error", "errorType": "bad_data", "error": "parse error"}')
    assert reply.refusal(lambda body: f"{body['errorType']}: {body['error']}").detail == \
        "HTTP 400 Bad Request: bad_data: parse error"
    html = Reply(502, "Bad Gateway", b"<html>\n  <body>upstream   down</body>\n</html>")
    assert html.refusal(lambda body: body["error"]).detail == \
        "HTTP 502 Bad Gateway: <html> <body>upstream down</body> </html>"


def test_a_body_that_is_not_json_is_unavailable() -> None:
    with pytest.raises(QueryFailed) as failure:
        Reply(200, "OK", b"<html>login</html>").json()
    assert failure.value.outcome is Outcome.UNAVAILABLE
    assert failure.value.detail == "HTTP 200: the answer is not JSON: <html>login</html>"


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
