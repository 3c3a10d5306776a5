"""A real HTTP receiver for webhook tests: records every call and answers as the test says."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Receiver:
    """Calls received per path, and the status code each path answers with (default 200).

    ``headers[i]`` holds the request headers of ``calls[i]``, names in lower case.
    """

    port: int = 0
    answers: dict[str, int] = field(default_factory=dict)
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, path: str) -> str:
        """The URL of ``path`` on this receiver."""
        return f"http://127.0.0.1:{self.port}{path}"

    def answer(self, path: str, status: int) -> None:
        """Make ``path`` answer ``status`` from now on."""
        with self.lock:
            self.answers[path] = status

    def paths(self) -> list[str]:
        """The paths called, in order."""
        with self.lock:
            return [path for path, _ in self.calls]


@contextmanager
def receiver() -> Iterator[Receiver]:
    """Serve a Receiver on a free loopback port for the duration of the block."""
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
            with state.lock:
                state.calls.append((self.path, body))
                state.headers.append({name.lower(): value for name, value in self.headers.items()})
                status = state.answers.get(self.path, 200)
            self.send_response(status)
            self.end_headers()
            self.wfile.write(b"ok" if status < 300 else b"no")

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.port = server.server_port
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
