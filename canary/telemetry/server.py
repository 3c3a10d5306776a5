"""The controller's HTTP port: /metrics, /healthz (jobs make progress) and /readyz (caches synced).

One WSGI app routes the paths, because prometheus_client's own server answers every path with
metrics, which would make health checks meaningless. With ``--dashboard`` the port also serves an
ASGI app (the dashboard, whose live updates are long-lived streams): uvicorn serves the port
(``AsgiServer``) and hands our paths to the same WSGI app (``beside``), so they answer exactly as without it.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

from prometheus_client import make_wsgi_app
from prometheus_client.exposition import ThreadingWSGIServer

if TYPE_CHECKING:
    from starlette.types import ASGIApp, Receive, Scope, Send

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


OWN_PATHS = ("/metrics", "/healthz", "/readyz")
OWN_PREFIXES = ("/hooks/",)
"""The paths of the WSGI app (the Git webhook receiver's under /hooks/); the other app has the rest."""


def beside(wsgi: Callable[..., Iterable[bytes]], asgi: ASGIApp) -> ASGIApp:
    """One ASGI app: our paths go to ``wsgi`` (in worker threads, through a2wsgi), every other to ``asgi``."""
    from a2wsgi import WSGIMiddleware  # noqa: PLC0415 - only with --dashboard

    ours = WSGIMiddleware(wsgi)

    async def route(scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] == "http" and (path in OWN_PATHS or path.startswith(OWN_PREFIXES)):
            await ours(scope, receive, send)  # type: ignore[arg-type]
        else:
            await asgi(scope, receive, send)

    return route


class AsgiServer:
    """Serves an ASGI app with uvicorn in a thread: the controller's port when it also serves the dashboard."""

    def __init__(self, port: int, asgi: ASGIApp, *, host: str = "0.0.0.0",  # noqa: S104 - --listen-address
                 stop_seconds: int = 1) -> None:
        import uvicorn  # noqa: PLC0415 - only with --dashboard

        self._socket = socket.create_server((host, port), family=socket.AF_INET6 if ":" in host else socket.AF_INET)
        self.port = int(self._socket.getsockname()[1])
        # Open event streams are closed after stop_seconds, so stopping stays within the controller's budget.
        config = uvicorn.Config(asgi, log_config=None, access_log=False, lifespan="off",
                                timeout_graceful_shutdown=stop_seconds, timeout_keep_alive=int(READ_TIMEOUT))
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._socket]}, name="http",
                                        daemon=True)

    def start(self) -> AsgiServer:
        """Start serving."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving (open streams are cut after ``stop_seconds``) and close the socket."""
        self._server.should_exit = True
        self._thread.join(timeout=5)
        self._socket.close()
