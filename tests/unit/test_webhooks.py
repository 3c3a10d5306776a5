"""What a gating webhook's answer becomes: a verdict and a message that names the status, never the body."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from structlog.testing import capture_logs

from canary.models.canary import CanaryWebhook
from canary.waiting import wait_until
from canary.webhooks import EVENT_TIMEOUT, EventDelivery, EventHooks, HookOutcome, Pending, WebhookCaller, retry_pause
from tests.httpfakes import Answer, FakeServer

SECRET_PAGE = b"password: hunter2\n"


class _Answers(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        status = int(self.path.strip("/"))
        self.send_response(status)
        self.end_headers()
        self.wfile.write(SECRET_PAGE)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet."""


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Answers)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.mark.parametrize(("status", "passed", "message"), [
    (200, True, "webhook gate passed"),
    (403, False, "webhook gate answered HTTP 403 Forbidden"),
    (500, False, "webhook gate failed: HTTP 500 Internal Server Error"),
])
def test_the_verdict_names_the_status_and_never_quotes_the_body(server: str, status: int, passed: bool,
                                                                 message: str) -> None:
    hook = CanaryWebhook.model_validate({"name": "gate", "url": f"{server}/{status}", "timeout": "5s"})
    outcome = WebhookCaller().call(hook, {"name": "web"})
    assert (outcome.passed, outcome.message) == (passed, message)
    assert "hunter2" not in json.dumps(outcome.message)


class _Hangs(BaseHTTPRequestHandler):
    release = threading.Event()
    calls = 0

    def do_POST(self) -> None:
        type(self).calls += 1
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        type(self).release.wait(30)
        self.send_response(200)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        """Quiet."""


def test_a_gate_that_has_not_answered_is_pending_and_the_same_call_is_asked_again_until_it_answers() -> None:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Hangs)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        hook = CanaryWebhook.model_validate({"name": "gate", "url": f"http://127.0.0.1:{httpd.server_address[1]}/",
                                             "timeout": "1m"})
        caller = WebhookCaller(wait=0.2)
        key = ("shop", "web", "rev-2", "confirm-rollout", "gate")
        for _ in range(3):
            with pytest.raises(Pending, match="webhook gate has not answered yet"):
                caller.gate(hook, {"name": "web"}, key=key)
        assert (_Hangs.calls, caller.running()) == (1, 1), "one call, still under way"
        _Hangs.release.set()
        outcome = wait_until(lambda: _answer(caller, hook, key), lambda found: found is not None,
                             what="the gate's answer", timeout=10)
        assert outcome == HookOutcome("gate", True, "webhook gate passed")
        assert caller.running() == 0
        assert caller.gate(hook, {"name": "web"}, key=key).passed
        assert _Hangs.calls == 2, "an answer is used once; the next tick calls again"
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_a_later_tick_finds_the_call_under_way_pending_at_once_without_waiting_again() -> None:
    with socket.create_server(("127.0.0.1", 0)) as silent:  # accepts connections, never answers
        hook = CanaryWebhook.model_validate({"name": "gate", "url": f"http://127.0.0.1:{silent.getsockname()[1]}/",
                                             "timeout": "1m"})
        caller = WebhookCaller(wait=1.0)
        key = ("shop", "web", "rev-2", "pre-rollout", "gate")
        with pytest.raises(Pending):
            caller.gate(hook, {"name": "web"}, key=key)  # the tick that starts the call waits for it
        began = time.monotonic()
        with pytest.raises(Pending):
            caller.gate(hook, {"name": "web"}, key=key)
        assert time.monotonic() - began < 0.5, "a hook that hangs must not hold a worker on every tick"


def _answer(caller: WebhookCaller, hook: CanaryWebhook, key: tuple[str, ...]) -> HookOutcome | None:
    try:
        return caller.gate(hook, {"name": "web"}, key=key)
    except Pending:
        return None


def test_event_hooks_give_up_at_their_own_timeout_whatever_the_hooks_timeout() -> None:
    assert EVENT_TIMEOUT == "5s", "Flagger's CallEventWebhook: 5s, whatever the hook says"
    hook = CanaryWebhook.model_validate({"name": "events", "type": "event", "timeout": "1m", "url": "http://x"})
    with FakeServer(lambda seen: Answer(delay=10)) as slow, capture_logs() as logs:
        hooks = EventHooks(WebhookCaller(), timeout="300ms")
        began = time.monotonic()
        hooks.send([EventDelivery(hook=hook.model_copy(update={"url": slow.url}), body={"name": "web"})])
        failed = wait_until(lambda: [e for e in logs if e["event"] == "event webhook failed"], bool,
                            what="the event delivery to give up", timeout=5, interval=0.05)
        assert time.monotonic() - began < 2
        hooks.close()
    assert failed[0]["problem"].startswith("webhook events failed: ")


def test_a_hooks_timeout_bounds_the_whole_answer_as_flaggers_client_timeout_does() -> None:
    with FakeServer(lambda seen: Answer(body=b"x" * 40, trickle=0.05)) as trickling:  # 2 s, a byte at a time
        hook = CanaryWebhook.model_validate({"name": "gate", "url": trickling.url, "timeout": "500ms"})
        began = time.monotonic()
        outcome = WebhookCaller().call(hook, {"name": "web"})
        took = time.monotonic() - began
    assert outcome == HookOutcome("gate", False, "webhook gate failed: no answer within 0.5s")
    assert took < 1.5


def test_a_429_is_retried_after_the_pause_the_receiver_asks_for() -> None:
    answers = iter([Answer(status=429, headers={"Retry-After": "0"}), Answer(status=200)])
    with FakeServer(lambda seen: next(answers)) as busy:
        hook = CanaryWebhook.model_validate({"name": "gate", "url": busy.url, "retries": 1})
        began = time.monotonic()
        outcome = WebhookCaller().call(hook, {"name": "web"})
        took = time.monotonic() - began
    assert outcome.passed, outcome.message
    assert len(busy.seen) == 2
    assert took < 0.8, "Retry-After: 0 means at once, not the usual pause of 1 s"


def test_a_501_is_not_retried() -> None:
    with FakeServer(lambda seen: Answer(status=501)) as unimplemented:
        hook = CanaryWebhook.model_validate({"name": "gate", "url": unimplemented.url, "retries": 2})
        outcome = WebhookCaller().call(hook, {"name": "web"})
    assert outcome == HookOutcome("gate", False, "webhook gate answered HTTP 501 Not Implemented")
    assert len(unimplemented.seen) == 1


def test_retries_pause_as_flaggers_client_does_one_second_doubling_up_to_thirty() -> None:
    assert [retry_pause(attempt) for attempt in range(7)] == [1, 2, 4, 8, 16, 30, 30]
    assert retry_pause(3, retry_after=5) == 5
    assert retry_pause(0, retry_after=3600) == 300, "at most the longest webhook timeout"
