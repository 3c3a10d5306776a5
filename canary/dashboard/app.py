"""The dashboard's Starlette app: two pages, their JSON, charts as SVG, a server-sent event stream and
the controls.

``serve`` builds a ``Dashboard`` (for ``canary dashboard`` or for the controller's port) and calls
``create_app``. Reads come from the Canary informer (no API request per page view), Events and the
Git sync state from the API when a canary page asks for them; the stream is fed by the informer's
watch (``feed``). Every answer forbids framing (a page of buttons must not be clickjacked) and scripts
from anywhere but here.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import structlog
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from canary.dashboard import charts, views
from canary.dashboard.actions import CSRF_COOKIE, Action, Guard, Mode, Refused, new_csrf_token, perform
from canary.dashboard.feed import Feed
from canary.dashboard.gitstate import GitState
from canary.dashboard.ranges import NONE, NoRanges, Ranges
from canary.errors import CanaryError, PermanentError
from canary.kube import Obj
from canary.kube.client import Kube
from canary.models.canary import Canary

log = structlog.get_logger(__name__)
STATIC = Path(__file__).parent / "static"
HEARTBEAT_SECONDS = 15.0
CHARTS_KEPT = 64
SECURITY_HEADERS = {
    # matplotlib's SVG styles its shapes with style attributes: inline styles, but no inline scripts.
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
                               "img-src 'self' data:; frame-ancestors 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


@dataclass
class Dashboard:
    """What the app reads and acts through."""

    kube: Kube
    feed: Feed
    get_canary: Callable[[str, str], Obj | None]
    guard: Guard
    git: GitState | None
    namespace: str | None
    """The only namespace shown, or None for all."""
    served_by: str
    """``canary dashboard`` or ``canary controller``, as the page says."""
    loopback: bool = False
    """Served on loopback only: requests must name a loopback host (no DNS rebinding)."""
    ranges: Ranges = field(default_factory=NoRanges)
    """Each metric's Prometheus series over the run, when a metrics server is set."""
    _charts: OrderedDict[tuple[str, str, str], bytes] = field(default_factory=OrderedDict)

    def canary(self, namespace: str, name: str) -> Obj:
        """The cached Canary, or 404 naming it (or naming the one namespace shown)."""
        if self.namespace is not None and namespace != self.namespace:
            raise HTTPException(404, f"this dashboard shows namespace {self.namespace} only, not {namespace}")
        found = self.get_canary(namespace, name)
        if found is None:
            raise HTTPException(404, f"Canary {namespace}/{name} not found")
        return found

    def chart(self, obj: Obj, name: str, draw: Callable[[Canary], bytes]) -> bytes:
        """A chart of this version of the Canary (and of the Prometheus series, read or not), drawn once
        however many pages show it."""
        key = (views.key(obj), name, str(obj["metadata"].get("resourceVersion") or ""))
        if key in self._charts:
            self._charts.move_to_end(key)
            return self._charts[key]
        canary = views.parse(obj)
        if isinstance(canary, str):
            raise HTTPException(409, f"Canary {views.key(obj)} is invalid: {canary}")
        drawn = draw(canary)
        self._charts[key] = drawn
        while len(self._charts) > CHARTS_KEPT:
            self._charts.popitem(last=False)
        return drawn


def _page(name: str) -> Callable[[Request], Awaitable[Response]]:
    async def page(request: Request) -> Response:
        response = FileResponse(STATIC / name, media_type="text/html")
        if not request.cookies.get(CSRF_COOKIE):
            # Readable by the page's script (it sends it back as a header), sent to this site only.
            response.set_cookie(CSRF_COOKIE, new_csrf_token(), httponly=False, samesite="strict", path="/")
        return response
    return page


def _events(kube: Kube, namespace: str, name: str) -> list[Obj]:
    return kube.list_objects("v1", "Event", namespace=namespace,
                             field_selector=f"involvedObject.kind=Canary,involvedObject.name={name}")


class _Handlers:
    """The endpoints, reading and acting through one ``Dashboard``."""

    def __init__(self, dashboard: Dashboard) -> None:
        self.d = dashboard

    async def config(self, request: Request) -> Response:
        return JSONResponse({"servedBy": self.d.served_by, "namespace": self.d.namespace,
                             "actions": self.d.guard.mode.value, "git": self.d.git is not None})

    async def canaries(self, request: Request) -> Response:
        rows = self.d.feed.rows(request.query_params.get("namespace") or None)
        phase = request.query_params.get("phase")
        return JSONResponse([r for r in rows if not phase or r["phase"] == phase])

    async def canary(self, request: Request) -> Response:
        namespace, name = request.path_params["namespace"], request.path_params["name"]
        obj = self.d.canary(namespace, name)
        parsed = views.parse(obj)
        events, unread = self.d.feed.events.cached(namespace, name), None
        if events is None:
            try:
                events = await run_in_threadpool(_events, self.d.kube, namespace, name)
            except CanaryError as exc:  # say so on the page (RBAC without Events, say), not a 500
                events, unread = [], f"the Events could not be read: {exc}"
        git, ranged = None, NONE
        if isinstance(parsed, Canary):
            if self.d.git is not None:
                git = await run_in_threadpool(self.d.git.provenance, parsed)
            ranged = await run_in_threadpool(self.d.ranges.of, obj, parsed)
        return JSONResponse(views.detail(obj, events=events, git=git) | {"prometheus": ranged.as_json(),
                                                                         "eventsProblem": unread})

    async def weights(self, request: Request) -> Response:
        obj = self.d.canary(request.path_params["namespace"], request.path_params["name"])
        svg = await run_in_threadpool(self.d.chart, obj, "weights", lambda c: charts.weights_svg(
            views.weight_steps(c), start=views.run_start(c), salt="weights"))
        return Response(svg, media_type="image/svg+xml", headers={"Cache-Control": "no-store"})

    async def metric(self, request: Request) -> Response:
        obj = self.d.canary(request.path_params["namespace"], request.path_params["name"])
        wanted = request.path_params["metric"]
        parsed = views.parse(obj)
        ranged = NONE if isinstance(parsed, str) else await run_in_threadpool(self.d.ranges.of, obj, parsed)

        def draw(canary: Canary) -> bytes:
            series = next((s for s in views.metric_series(canary) if s.name == wanted), None)
            if series is None:
                raise HTTPException(404, f"Canary {views.key(obj)} has no metric {wanted!r} in spec.analysis.metrics")
            return charts.metric_svg(series, start=views.run_start(canary), salt=f"metric-{charts.chart_id(wanted)}",
                                     prometheus=ranged.series.get(wanted, ()))

        # A chart drawn while Prometheus did not answer is drawn again once it does.
        read = "prometheus" if ranged.problem is None else "no-prometheus"
        svg = await run_in_threadpool(self.d.chart, obj, f"metric/{wanted}/{read}", draw)
        return Response(svg, media_type="image/svg+xml", headers={"Cache-Control": "no-store"})

    async def gitsync(self, request: Request) -> Response:
        if self.d.git is None:
            return JSONResponse({"namespace": None, "sources": [], "problem": "the Git sync is not configured"})
        return JSONResponse(await run_in_threadpool(self.d.git.panel))

    async def stream(self, request: Request) -> Response:
        namespace = request.query_params.get("namespace") or self.d.namespace
        if self.d.namespace is not None and namespace != self.d.namespace:
            raise HTTPException(404, f"this dashboard shows namespace {self.d.namespace} only, not {namespace}")
        feed = self.d.feed
        # A canary page's stream also carries that canary's Events, from a watch held while it is open.
        subscription = feed.subscribe(namespace, request.query_params.get("canary") or None)

        async def events() -> AsyncIterator[str]:
            try:
                yield "retry: 2000\n\n"
                while True:
                    changes = await subscription.changes(timeout=HEARTBEAT_SECONDS)
                    if not changes:
                        yield ": alive\n\n"  # keeps proxies from closing an idle stream
                    for what, row in changes:
                        yield f"event: {what}\ndata: {json.dumps(row)}\n\n"
            finally:
                feed.unsubscribe(subscription)

        return StreamingResponse(events(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})

    async def act(self, request: Request) -> Response:
        namespace, name = request.path_params["namespace"], request.path_params["name"]
        try:
            action = Action(request.path_params["action"])
        except ValueError:
            return JSONResponse({"error": f"no action {request.path_params['action']!r}; the actions are "
                                 f"{', '.join(a.value for a in Action)}"}, status_code=404)
        client = request.client.host if request.client else "?"
        try:
            who = self.d.guard.check(request.headers, request.cookies, host=request.headers.get("host", ""))
        except Refused as refused:
            log.warning("dashboard action refused", action=action.value, canary=f"{namespace}/{name}",
                        client=client, reason=refused.reason)
            return JSONResponse({"error": refused.reason}, status_code=refused.status)
        self.d.canary(namespace, name)
        try:
            requested = await run_in_threadpool(perform, self.d.kube, namespace, name, action)
        except PermanentError as exc:
            return JSONResponse({"error": str(exc)}, status_code=404 if "not found" in str(exc) else 400)
        except CanaryError as exc:
            return JSONResponse({"error": str(exc)}, status_code=503)
        log.info("dashboard action", action=action.value, canary=f"{namespace}/{name}", who=who, client=client,
                 request=requested)
        return JSONResponse({"action": action.value, "request": requested, "who": who}, status_code=202)


def create_app(dashboard: Dashboard) -> Starlette:
    """The ASGI app of ``dashboard``."""
    h = _Handlers(dashboard)
    base = "/api/canaries/{namespace}/{name}"
    hosts = ["127.0.0.1", "localhost"] if dashboard.loopback else ["*"]
    return Starlette(routes=[
        Route("/", _page("index.html")),
        Route("/canaries/{namespace}/{name}", _page("canary.html")),
        Route("/favicon.ico", lambda request: Response(status_code=204)),
        Route("/api/config", h.config),
        Route("/api/canaries", h.canaries),
        Route("/api/gitsync", h.gitsync),
        Route("/api/stream", h.stream),
        Route(base, h.canary),
        Route(f"{base}/weights.svg", h.weights),
        Route(base + "/metrics/{metric}.svg", h.metric),
        Route(base + "/{action}", h.act, methods=["POST"]),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ], middleware=[Middleware(_SecurityHeaders), Middleware(TrustedHostMiddleware, allowed_hosts=hosts)],
        exception_handlers={HTTPException: _error})


async def _error(request: Request, exc: Exception) -> Response:
    """Errors as JSON, as every other answer of the API."""
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    return JSONResponse({"error": getattr(exc, "detail", str(exc))}, status_code=status)


class _SecurityHeaders:
    """Adds ``SECURITY_HEADERS`` to every answer."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []),
                                      *((k.lower().encode(), v.encode()) for k, v in SECURITY_HEADERS.items())]
            await send(message)

        await self.app(scope, receive, with_headers)


def mode_of(*, served_by_controller: bool, actions: bool) -> Mode:
    """Who may use the controls: the local user for ``canary dashboard``; token holders, or nobody, for the
    controller's (``--dashboard-actions``)."""
    if not served_by_controller:
        return Mode.LOCAL
    return Mode.TOKEN if actions else Mode.OFF
