"""What a gating webhook's answer becomes: a verdict and a message that names the status, never the body."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from canary.models.canary import CanaryWebhook
from canary.webhooks import WebhookCaller

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
