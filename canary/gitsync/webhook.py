"""The webhook receiver for instant syncs, on the controller's HTTP port: ``POST /hooks/git/<source>``.

GitHub signs the body with HMAC-SHA256 (``X-Hub-Signature-256: sha256=<hex>``), GitLab sends the
shared secret (``X-Gitlab-Token``), anything else may sign like GitHub in ``X-Signature-256``. A
request that proves nothing gets 401 and changes nothing; a good one starts the source's sync.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable, Iterable, Mapping
from typing import Any

PREFIX = "/hooks/git/"
MAX_BODY = 1 << 20
StartResponse = Callable[..., Any]


def signature(secret: str, body: bytes) -> str:
    """GitHub's signature header value for ``body``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _same(sent: str, expected: str) -> bool:
    # Bytes, because compare_digest refuses str with non-ASCII characters (a header may hold any);
    # WSGI gives header values decoded as latin-1, so this is the bytes the client sent.
    return hmac.compare_digest(sent.encode("latin-1", "replace"), expected.encode())


def verified(secret: str, headers: Mapping[str, str], body: bytes) -> bool:
    """Whether the request proves it knows ``secret`` (constant-time comparisons)."""
    for header in ("x-hub-signature-256", "x-signature-256"):
        sent = headers.get(header)
        if sent is not None:
            return _same(sent, signature(secret, body))
    token = headers.get("x-gitlab-token")
    return token is not None and _same(token, secret)


def content_length(environ: Mapping[str, Any]) -> int | None:
    """The request's Content-Length (0 when absent); None when it is not a non-negative number."""
    text = str(environ.get("CONTENT_LENGTH") or "0").strip()
    if not text.isascii() or not text.isdigit():
        return None
    return int(text)


def pushed_ref(body: bytes) -> str | None:
    """The ``ref`` a push event names, if the body is a JSON object with one."""
    try:
        payload = json.loads(body)
    except ValueError:
        return None
    ref = payload.get("ref") if isinstance(payload, dict) else None
    return ref if isinstance(ref, str) else None


def _body(environ: Mapping[str, Any]) -> bytes | tuple[str, str]:
    """The request body, or the answer for a request whose body cannot be read."""
    length = content_length(environ)
    if length is None:
        return "400 Bad Request", "Content-Length must be a non-negative number"
    if length > MAX_BODY:
        return "413 Payload Too Large", "body too large"
    try:
        return environ["wsgi.input"].read(length) if length else b""
    except TimeoutError:  # the server's read deadline: the client stopped sending
        return "408 Request Timeout", "the body did not arrive in time"


def receiver(secret: str, sources: Callable[[], Mapping[str, str]], trigger: Callable[[str], None]
             ) -> Callable[[dict[str, Any], StartResponse], Iterable[bytes] | None]:
    """A WSGI handler for the telemetry server's extra paths; None for paths that aren't its own.

    ``sources`` maps each source's name to the ref it follows (``refs/heads/main``, say).
    """

    def handle(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes] | None:
        path = environ.get("PATH_INFO", "")
        if not path.startswith(PREFIX):
            return None
        name = path[len(PREFIX):]
        status, text = _verdict(environ, name)
        if status.startswith("202"):
            trigger(name)
        start_response(status, [("Content-Type", "text/plain")])
        return [text.encode() + b"\n"]

    def _verdict(environ: dict[str, Any], name: str) -> tuple[str, str]:
        if environ.get("REQUEST_METHOD") != "POST":
            return "405 Method Not Allowed", "POST only"
        body = _body(environ)
        if isinstance(body, tuple):
            return body
        headers = {k[5:].replace("_", "-").lower(): v for k, v in environ.items() if k.startswith("HTTP_")}
        if not verified(secret, headers, body):
            return "401 Unauthorized", "bad or missing signature"
        follows = sources().get(name)
        if follows is None:
            return "404 Not Found", f"no git source {name!r}"
        ref = pushed_ref(body)
        if ref is not None and ref != follows:
            return "200 OK", f"ignored: the push is to {ref}, source {name} follows {follows}"
        return "202 Accepted", f"sync of {name} started"

    return handle
