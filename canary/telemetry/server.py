"""The controller's HTTP port: /metrics, /healthz (jobs make progress) and /readyz (caches synced).

One WSGI app routes the paths, because prometheus_client's own server answers every path with
metrics, which would make health checks meaningless.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

from prometheus_client import make_wsgi_app
from prometheus_client.exposition import ThreadingWSGIServer

StartResponse = Callable[..., Any]
Extra = Callable[[dict[str, Any], StartResponse], Iterable[bytes] | None]


READ_TIMEOUT = 10.0
"""Seconds a client may take to send its request before the connection is dropped."""


class _Quiet(WSGIRequestHandler):
    # The socket timeout of each connection: a client that stops sending (or claims a body it
    # never sends) frees its thread after this, instead of holding it.
    timeout = READ_TIMEOUT

    def log_message(self, format: str, *args: Any) -> None:  # noqa: ANN401 - stdlib signature
        """Requests are not logged: probes would flood the log."""


def app(*, ready: Callable[[], bool], stalled: Callable[[], str | None] = lambda: None,
        extra: Extra | None = None, metrics: bool = True) -> Callable[..., Iterable[bytes]]:
    """The WSGI app: /healthz answers 503 with ``stalled``'s reason; ``extra`` may answer other paths
    (the Git webhook receiver, for instance); without ``metrics``, only ``extra`` is served."""
    metrics_app = make_wsgi_app()

    def route(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if not metrics:
            return _extra_only(extra, environ, start_response)
        if path == "/metrics":
            return metrics_app(environ, start_response)  # type: ignore[no-any-return]
        if path == "/healthz":
            problem = stalled()
            start_response("200 OK" if problem is None else "503 Service Unavailable",
                           [("Content-Type", "text/plain")])
            return [b"ok\n" if problem is None else f"stalled: {problem}\n".encode()]
        if path == "/readyz":
            ok = ready()
            start_response("200 OK" if ok else "503 Service Unavailable", [("Content-Type", "text/plain")])
            return [b"ok\n" if ok else b"not ready\n"]
        return _extra_only(extra, environ, start_response)

    return route


def _extra_only(extra: Extra | None, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    if extra is not None:
        answer = extra(environ, start_response)
        if answer is not None:
            return answer
    start_response("404 Not Found", [("Content-Type", "text/plain")])
    return [b"not found\n"]


class HttpServer:
    """Serves ``app`` on a port in a thread."""

    def __init__(self, port: int, wsgi: Callable[..., Iterable[bytes]], *,
                 host: str = "0.0.0.0", read_timeout: float = READ_TIMEOUT) -> None:  # noqa: S104 - --listen-address
        handler = type("Handler", (_Quiet,), {"timeout": read_timeout})
        self._server = make_server(host, port, wsgi, ThreadingWSGIServer, handler_class=handler)
        self.port = int(self._server.server_port)
        self._thread = threading.Thread(target=self._server.serve_forever, name="http", daemon=True)

    def start(self) -> HttpServer:
        """Start serving."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self._server.shutdown()
        self._server.server_close()
