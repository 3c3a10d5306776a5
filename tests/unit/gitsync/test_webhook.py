from __future__ import annotations

import io
from typing import Any

from canary.gitsync.webhook import receiver, signature

SECRET = "hook-s3cret"  # noqa: S105 - a test secret


def _post(body: bytes, headers: dict[str, str], path: str = "/hooks/git/apps", *,
          length: str | None = None) -> tuple[str, str, list[str]]:
    triggered: list[str] = []
    handle = receiver(SECRET, lambda: {"apps": "refs/heads/main"}, triggered.append)
    status: list[str] = []
    environ: dict[str, Any] = {"PATH_INFO": path, "REQUEST_METHOD": "POST",
                               "CONTENT_LENGTH": str(len(body)) if length is None else length,
                               "wsgi.input": io.BytesIO(body),
                               **{"HTTP_" + k.upper().replace("-", "_"): v for k, v in headers.items()}}
    answer = handle(environ, lambda code, _headers: status.append(code))
    assert answer is not None
    return status[0], b"".join(answer).decode().strip(), triggered


def test_a_signed_push_to_the_followed_branch_starts_a_sync() -> None:
    body = b'{"ref": "refs/heads/main"}'
    assert _post(body, {"X-Hub-Signature-256": signature(SECRET, body)}) == (
        "202 Accepted", "sync of apps started", ["apps"])
    assert _post(b"", {"X-Gitlab-Token": SECRET})[2] == ["apps"], "a body without a ref syncs too"


def test_a_push_to_another_branch_is_acknowledged_and_ignored() -> None:
    body = b'{"ref": "refs/heads/feature"}'
    status, text, triggered = _post(body, {"X-Hub-Signature-256": signature(SECRET, body)})
    assert (status, triggered) == ("200 OK", [])
    assert text == "ignored: the push is to refs/heads/feature, source apps follows refs/heads/main"


def test_forged_or_unknown_requests_change_nothing() -> None:
    body = b'{"ref": "refs/heads/main"}'
    assert _post(body, {"X-Hub-Signature-256": "sha256=forged"})[::2] == ("401 Unauthorized", [])
    assert _post(body, {"X-Gitlab-Token": "guess"})[::2] == ("401 Unauthorized", [])
    assert _post(body, {"X-Hub-Signature-256": signature(SECRET, body)}, path="/hooks/git/other")[::2] == (
        "404 Not Found", [])


def test_malformed_requests_get_a_400_or_401_never_a_server_error() -> None:
    body = b'{"ref": "refs/heads/main"}'
    assert _post(body, {"X-Hub-Signature-256": "sha256=\u00e9t\u00e9"})[::2] == ("401 Unauthorized", [])
    assert _post(body, {"X-Gitlab-Token": "t\u00f6ken"})[::2] == ("401 Unauthorized", [])
    for length in ("abc", "-1", "1e3", "\u0661"):
        status, text, triggered = _post(body, {"X-Gitlab-Token": SECRET}, length=length)
        assert (status, text, triggered) == ("400 Bad Request", "Content-Length must be a non-negative number", []), \
            length
