"""The controller's Notifier: routes each notice to its AlertProviders and delivers it from a thread.

The controller builds one ``AlertDispatcher`` with the AlertProvider and Secret caches; the
reconciler calls ``notify`` during a tick. ``notify`` only reads caches, builds payloads and
queues; each destination has its own queue and delivery thread, which posts with retries and
exponential backoff (tenacity) and a timeout per request, so a slow or dead chat never holds a tick
nor the alerts bound elsewhere.

Routing, as Flagger's: a canary with ``spec.analysis.alerts`` sends to each alert whose severity
admits the notice (info hears everything, warn hears warn and error, error hears errors only); an
alert without severity counts as info, where Flagger sends nothing. A canary without alerts sends
to the default destinations (``--slack-url``, a default AlertProvider); with none, the notice is
logged. The address comes from ``spec.address`` or, preferred, from key ``address`` of the Secret
named by ``spec.secretRef`` (which may also hold ``token``, sent as ``Authorization: Bearer``,
and ``proxy``, preferred to ``spec.proxy``).

Whatever is not delivered (provider or Secret missing, queue full, retries exhausted) is counted
in ``canary_alerts_dropped_total{reason}`` and logged. Addresses, proxies and tokens are secrets:
they never reach a log line or an error message.
"""

from __future__ import annotations

import base64
import binascii
import queue
import threading
import time
from dataclasses import dataclass, field, replace
from typing import Any, Protocol
from urllib.parse import SplitResult, urlsplit

import requests
import structlog
from prometheus_client import Counter
from pydantic import ValidationError
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential

from analysis.outbound import GuardedSession, OutboundRefused
from canary.errors import PermanentError
from canary.models.resources import AlertProvider
from canary.notify.base import SEVERITIES, AlertRoute, LogNotifier, Notice, Settled
from canary.notify.registry import service_for
from canary.notify.slack import slack_payload

log = structlog.get_logger(__name__)
DROPPED = Counter("canary_alerts_dropped_total",
                  "Alerts not delivered, by reason (unresolved, queue-full, undeliverable, closed).", ["reason"])
SENT = Counter("canary_alerts_sent_total", "Alerts delivered, by AlertProvider type.", ["type"])
for _reason in ("unresolved", "queue-full", "undeliverable", "closed"):  # at 0 from the start, for rates
    DROPPED.labels(reason=_reason)
_MAX_BACKOFF = 30.0


class Cache(Protocol):
    """A read-only object cache, as ``canary.kube.cache.Informer`` is one."""

    def get(self, namespace: str | None, name: str) -> dict[str, Any] | None:
        """The object, or None."""
        ...


@dataclass(frozen=True)
class ProviderRef:
    """An AlertProvider by namespace and name: the controller's default destination."""

    name: str
    namespace: str


class _Countdown:
    """Calls ``settled`` once every delivery of one notice has ended: with True only if none of them
    may pass when sent again."""

    def __init__(self, count: int, settled: Settled | None) -> None:
        self._left, self._final, self._settled = count, True, settled
        self._lock = threading.Lock()

    def one(self, final: bool) -> None:
        with self._lock:
            self._left -= 1
            self._final = self._final and final
            done = self._left == 0
        if done and self._settled is not None:
            self._settled(self._final)


@dataclass(frozen=True)
class _Lane:
    """One destination's queue and the thread that posts its deliveries, in order."""

    queue: queue.Queue[Delivery | None]
    thread: threading.Thread


@dataclass(frozen=True)
class Delivery:
    """One POST to make. ``url``, ``headers`` and ``proxy`` may hold secrets, so they stay out of repr."""

    destination: str
    type: str
    body: dict[str, Any]
    notice: Notice
    url: str = field(repr=False)
    headers: dict[str, str] = field(default_factory=dict, repr=False)
    proxy: str | None = field(default=None, repr=False)
    countdown: _Countdown | None = field(default=None, repr=False, compare=False)

    def ended(self, *, final: bool) -> None:
        """This delivery is over: delivered or given up for good (final), or not made (may be retried)."""
        if self.countdown is not None:
            self.countdown.one(final)


class _Failed(Exception):
    """One attempt failed; ``problem`` is safe to log (a status code or an exception's class)."""

    def __init__(self, problem: str, *, retry: bool) -> None:
        super().__init__(problem)
        self.problem, self.retry = problem, retry


def admits(route_severity: str | None, notice_severity: str) -> bool:
    """Whether an alert of ``route_severity`` (None means info) hears a notice of ``notice_severity``."""
    return SEVERITIES.index(notice_severity) >= SEVERITIES.index(route_severity or "info")


def _decoded(secret: dict[str, Any], key: str, *, owner: str) -> str | None:
    value = (secret.get("data") or {}).get(key)
    if value is None:
        return None
    try:
        text = base64.b64decode(value, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise PermanentError(f"Secret {owner}: data.{key} is not base64-encoded UTF-8") from None
    # Secrets made with `kubectl create secret --from-file` often end in a newline.
    return text.strip() or None


def _split(url: str) -> SplitResult | None:
    """The parts of ``url``, or None when it cannot be parsed (``http://[::1``)."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises for a port that is not a number
    except ValueError:
        return None
    return parts


def _check_address(url: str, *, owner: str) -> None:
    parts = _split(url)
    if parts is None or parts.scheme not in {"http", "https"} or not parts.netloc:
        # The value may be secret (a webhook URL is its own credential), so it is not shown.
        raise PermanentError(f"AlertProvider {owner}: the address must be an http or https URL")


def _check_proxy(url: str, *, owner: str) -> None:
    # Any scheme requests can use (http, https, socks5 with PySocks); only the shape is checked here.
    parts = _split(url)
    if parts is None or not parts.scheme or not parts.netloc:
        raise PermanentError(f"AlertProvider {owner}: the proxy must be a URL such as http://proxy:3128")


class AlertDispatcher:
    """Routes notices to AlertProviders and posts them from one delivery thread per destination."""

    def __init__(self, providers: Cache, secrets: Cache, *, default_url: str | None = None,
                 default_provider: ProviderRef | None = None, cluster: str = "", capacity: int = 100,
                 attempts: int = 3, timeout: float = 5.0, backoff: float = 0.5) -> None:
        if capacity < 1 or attempts < 1:
            # Queue(maxsize=0) would be unbounded, and no attempt would drop everything silently.
            raise ValueError(f"AlertDispatcher: capacity and attempts must be at least 1, got {capacity}, {attempts}")
        self._providers, self._secrets = providers, secrets
        self._default_url, self._default_provider = default_url, default_provider
        self._cluster = cluster
        self._attempts, self._timeout, self._backoff = attempts, timeout, backoff
        self._fallback = LogNotifier()
        self._said: set[str] = set()
        self._said_lock = threading.Lock()
        self._closing = threading.Event()
        self._capacity = capacity
        self._lanes: dict[str, _Lane] = {}
        self._lanes_lock = threading.Lock()

    def notify(self, notice: Notice, settled: Settled | None = None) -> None:
        """Resolve where ``notice`` goes and queue one delivery per destination; never waits."""
        if not notice.cluster and self._cluster:
            notice = replace(notice, cluster=self._cluster)
        if not notice.alerts and self._default_url is None and self._default_provider is None:
            self._fallback.notify(notice, settled)
            return
        deliveries = self._deliveries(notice)
        if not deliveries and settled is not None:
            settled(True)  # nowhere it could go: sending it again would not help
        countdown = _Countdown(len(deliveries), settled)
        for delivery in deliveries:
            self._enqueue(replace(delivery, countdown=countdown))

    def delivers(self, alerts: tuple[AlertRoute, ...]) -> bool:
        """Whether a notice routed by ``alerts`` has a destination: its routes, else a default one."""
        return bool(alerts) or self._default_url is not None or self._default_provider is not None

    def _deliveries(self, notice: Notice) -> list[Delivery]:
        """One delivery per destination that admits ``notice`` and resolves (the others are counted as dropped)."""
        found: list[Delivery | None] = []
        if notice.alerts:
            for route in notice.alerts:
                if admits(route.severity, notice.severity):
                    found.append(self._route(notice, route, source=f"Canary {notice.namespace}/{notice.canary}: "
                                                                   f"spec.analysis.alerts[{route.name}].providerRef"))
            return [d for d in found if d is not None]
        if self._default_url is not None:
            found.append(Delivery(destination="--slack-url", type="slack", body=slack_payload(notice),
                                  notice=notice, url=self._default_url))
        if self._default_provider is not None:
            ref = self._default_provider
            found.append(self._route(notice, AlertRoute(name="default", severity=None, provider=ref.name,
                                                        provider_namespace=ref.namespace),
                                     source="the controller's default AlertProvider"))
        return [d for d in found if d is not None]

    def close(self, timeout: float = 5.0) -> None:
        """Deliver what is queued (no more waiting between retries) within ``timeout``, then stop."""
        deadline = time.monotonic() + timeout
        self._closing.set()
        with self._lanes_lock:
            lanes = dict(self._lanes)
        for destination, lane in lanes.items():
            try:
                lane.queue.put(None, timeout=max(0.0, deadline - time.monotonic()))
            except queue.Full:
                log.warning("alerts still queued at shutdown", destination=destination, queued=lane.queue.qsize())
        for lane in lanes.values():
            lane.thread.join(max(0.0, deadline - time.monotonic()))

    def _route(self, notice: Notice, route: AlertRoute, *, source: str) -> Delivery | None:
        try:
            return self._resolve(notice, route, source=source)
        except PermanentError as exc:
            DROPPED.labels(reason="unresolved").inc()
            self._say_once(str(exc), notice)
            return None

    def _resolve(self, notice: Notice, route: AlertRoute, *, source: str) -> Delivery:
        namespace = route.provider_namespace or notice.namespace
        owner = f"{namespace}/{route.provider}"
        obj = self._providers.get(namespace, route.provider)
        if obj is None:
            raise PermanentError(f"{source}: AlertProvider {owner} not found")
        try:
            spec = AlertProvider.model_validate(obj).spec
        except ValidationError as exc:
            first = exc.errors()[0]
            if tuple(first["loc"]) == ("spec", "type") and first["type"] == "literal_error":  # names the types
                service_for(first["input"], owner=owner)
            where = ".".join(str(part) for part in first["loc"])
            raise PermanentError(f"AlertProvider {owner}: {where}: {first['msg']}") from None
        service = service_for(spec.type, owner=owner)
        address, proxy, token = spec.address, spec.proxy, None
        if spec.secret_ref is not None:
            secret_owner = f"{namespace}/{spec.secret_ref.name}"
            secret = self._secrets.get(namespace, spec.secret_ref.name)
            if secret is None:
                raise PermanentError(f"AlertProvider {owner}: spec.secretRef: Secret {secret_owner} not found")
            address = _decoded(secret, "address", owner=secret_owner) or address
            proxy = _decoded(secret, "proxy", owner=secret_owner) or proxy
            token = _decoded(secret, "token", owner=secret_owner)
        if not address:
            raise PermanentError(f"AlertProvider {owner}: spec.address (or key address of the Secret of "
                                 "spec.secretRef) must be set")
        url = service.endpoint(address)
        _check_address(url, owner=owner)
        if proxy:
            _check_proxy(proxy, owner=owner)
        return Delivery(destination=f"AlertProvider {owner}", type=spec.type,
                        body=service.build(notice, channel=spec.channel, username=spec.username), notice=notice,
                        url=url, headers={"Authorization": f"Bearer {token}"} if token else {}, proxy=proxy)

    def _say_once(self, message: str, notice: Notice) -> None:
        # Every tick of a misconfigured canary would repeat the same line; once per message tells enough.
        with self._said_lock:
            if message in self._said:
                return
            self._said.add(message)
        log.warning("alert dropped", problem=message, canary=notice.canary, namespace=notice.namespace,
                    phase=notice.phase, revision=notice.revision)

    def _enqueue(self, delivery: Delivery) -> None:
        notice = delivery.notice
        if self._closing.is_set():
            DROPPED.labels(reason="closed").inc()
            log.warning("alert dropped: notifier closed", canary=notice.canary, namespace=notice.namespace,
                        destination=delivery.destination)
            delivery.ended(final=False)
            return
        try:
            self._lane(delivery.destination).queue.put_nowait(delivery)
        except queue.Full:
            DROPPED.labels(reason="queue-full").inc()
            log.warning("alert dropped: queue full", canary=notice.canary, namespace=notice.namespace,
                        phase=notice.phase, revision=notice.revision, destination=delivery.destination,
                        message=notice.message)
            delivery.ended(final=False)

    def _lane(self, destination: str) -> _Lane:
        """The lane of ``destination``, started on its first delivery."""
        with self._lanes_lock:
            lane = self._lanes.get(destination)
            if lane is None:
                deliveries: queue.Queue[Delivery | None] = queue.Queue(maxsize=self._capacity)
                thread = threading.Thread(target=self._run, args=(deliveries,), name=f"alerts to {destination}",
                                          daemon=True)
                lane = self._lanes[destination] = _Lane(deliveries, thread)
                thread.start()
            return lane

    def _run(self, deliveries: queue.Queue[Delivery | None]) -> None:
        with GuardedSession() as session:
            while (delivery := deliveries.get()) is not None:
                final = True
                try:
                    final = self._deliver(delivery, session)
                except Exception as exc:  # the thread must outlive any one alert; the text may hold the URL
                    DROPPED.labels(reason="undeliverable").inc()
                    log.error("alert delivery failed", destination=delivery.destination, error=type(exc).__name__)
                delivery.ended(final=final)

    def _deliver(self, delivery: Delivery, session: requests.Session) -> bool:
        """Post with retries; False when it failed for a reason that may pass after a restart (the
        retries were cut short by shutdown)."""
        retrying = Retrying(
            stop=stop_after_attempt(self._attempts),
            wait=wait_exponential(multiplier=self._backoff, max=_MAX_BACKOFF),
            retry=retry_if_exception(lambda exc: isinstance(exc, _Failed) and exc.retry),
            sleep=self._pause, reraise=True)
        try:
            retrying(self._post, delivery, session)
        except _Failed as failure:
            notice = delivery.notice
            DROPPED.labels(reason="undeliverable").inc()
            log.warning("alert not delivered", canary=notice.canary, namespace=notice.namespace,
                        phase=notice.phase, revision=notice.revision, destination=delivery.destination,
                        problem=failure.problem)
            return not (failure.retry and self._closing.is_set())
        SENT.labels(type=delivery.type).inc()
        return True

    def _pause(self, seconds: float) -> None:
        # Once closing, what is left gets its remaining attempts at once rather than holding shutdown.
        self._closing.wait(seconds)

    def _post(self, delivery: Delivery, session: requests.Session) -> None:
        proxies = {"http": delivery.proxy, "https": delivery.proxy} if delivery.proxy else None
        try:
            response = session.post(delivery.url, json=delivery.body, headers=delivery.headers,
                                          proxies=proxies, timeout=self._timeout)
        except OutboundRefused:
            # Not the policy's words: they name the host, and the URL may be a secret.
            raise _Failed("the outbound policy refuses this destination", retry=False) from None
        except requests.RequestException as exc:
            # Only the class: requests' messages quote the URL, which may carry a webhook token.
            raise _Failed(type(exc).__name__, retry=True) from None
        with response:
            status = response.status_code
        if status >= 300:
            # 429 and 5xx may pass later; any other answer (a revoked webhook, say) will not.
            raise _Failed(f"HTTP {status}", retry=status == 429 or status >= 500)
