"""Local HTTP back ends for tests: a server that records what it is asked and answers as told
(slowly, byte by byte, or with an error), for metric providers, webhooks and alert receivers."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass(frozen=True)
class Seen:
    """One request as the server received it; header names in lower case."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        """The body as JSON."""
        return json.loads(self.body)


@dataclass(frozen=True)
class Answer:
    """What the server sends: ``delay`` seconds before the headers; ``trickle`` seconds between body bytes."""

    status: int = 200
    body: bytes | dict[str, Any] | list[Any] = b""
    delay: float = 0.0
    trickle: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)


class FakeServer:
    """A threaded HTTP server on loopback that records each request and answers with ``respond(seen)``;
    a context manager, stopped (and its slow answers cut short) when the block ends."""

    def __init__(self, respond: Callable[[Seen], Answer]) -> None:
        self.respond = respond
        self.seen: list[Seen] = []
        self._closing = threading.Event()
        api = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                seen = Seen(self.command, parts.path, parse_qs(parts.query, keep_blank_values=True),
                            {name.lower(): value for name, value in self.headers.items()}, self.rfile.read(length))
                api.seen.append(seen)
                answer = api.respond(seen)
                body = answer.body if isinstance(answer.body, bytes) else json.dumps(answer.body).encode()
                if api._closing.wait(answer.delay):  # a slow server, stopped early when the test ends
                    return
                try:
                    self.send_response(answer.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    for name, value in answer.headers.items():
                        self.send_header(name, value)
                    self.end_headers()
                    for index in range(len(body)) if answer.trickle else ():
                        if api._closing.wait(answer.trickle):
                            return
                        self.wfile.write(body[index:index + 1])
                        self.wfile.flush()
                    if not answer.trickle:
                        self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    return  # the client gave up, as the deadline tests want it to

            do_GET = do_POST = _serve

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet."""

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> FakeServer:
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._closing.set()
        self._server.shutdown()
        self._server.server_close()


def dead_url() -> str:
    """A loopback address where nothing listens: connections are refused at once."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"
