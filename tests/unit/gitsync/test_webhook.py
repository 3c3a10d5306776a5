from __future__ import annotations

import io
from typing import Any

from canary.gitsync.webhook import receiver, signature

SECRET = "hook-s3cret"  # noqa: S105 - a test secret


def _post(body: bytes, headers: dict[str, str], path: str = "/hooks/git/apps") -> tuple[str, str, list[str]]:
    triggered: list[str] = []
    handle = receiver(SECRET, lambda: {"apps": "refs/heads/main"}, triggered.append)
    status: list[str] = []
    environ: dict[str, Any] = {"PATH_INFO": path, "REQUEST_METHOD": "POST", "CONTENT_LENGTH": str(len(body)),
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
