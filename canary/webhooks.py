"""The rollout webhooks: HTTP gates and notifications at points of a canary run (Flagger's).

A hook passes when it answers 2xx. Gates (confirm-rollout, confirm-traffic-increase,
confirm-promotion) are open only when every hook of the type passes; a rollback hook that passes
requests a rollback; pre-rollout and rollout hooks count as failed checks when any fails.
``event`` hooks (and the controller's ``--event-webhook``) hear every Event of their canary.
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field, replace
from typing import Any

import requests
import structlog
from prometheus_client import Counter
from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt

from analysis.outbound import GuardedSession, OutboundRefused
from canary.models.base import parse_duration
from canary.models.canary import MAX_WEBHOOK_TIMEOUT, CanaryWebhook, HookType, Phase

log = structlog.get_logger(__name__)
DEFAULT_TIMEOUT = "10s"
EVENT_TIMEOUT = "5s"
"""Flagger sends Events to event webhooks with this timeout, whatever the hook's own (CallEventWebhook)."""
FORGET_SECONDS = 600.0
RETRY_PAUSE_MAX = 30.0
"""The longest pause between a hook's retries: Flagger's HTTP client (go-retryablehttp) waits 1 s, doubling."""
_NO_RETRY_STATUS = 501
_RETRY_AFTER_STATUSES = frozenset({429, 503})
EVENTS_DROPPED = Counter("canary_event_webhooks_dropped_total", "Events not sent to event webhooks: queue full.")
Post = Callable[..., requests.Response]


@dataclass(frozen=True)
class HookOutcome:
    """The answer of one hook; ``muted``: the hook asks for no alert when it holds a gate (muteAlert)."""

    name: str
    passed: bool
    message: str
    muted: bool = False


def payload(*, name: str, namespace: str, phase: Phase | None, revision: str, hook: CanaryWebhook) -> dict[str, Any]:
    """The JSON body Flagger sends (CanaryWebhookPayload), so existing receivers work unchanged."""
    body: dict[str, Any] = {"name": name, "namespace": namespace, "phase": (phase or Phase.INITIALIZING).value,
                            "checksum": revision, "type": hook.type.value}
    if hook.metadata:
        body["metadata"] = dict(hook.metadata)
    return body


class _Retryable(Exception):
    """A transport failure, a 429 or a 5xx but 501: worth another try within the hook's retries, after
    ``retry_after`` seconds when the receiver said so."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def retry_pause(attempt: int, retry_after: float | None = None) -> float:
    """Seconds before retry number ``attempt + 1``, as Flagger's client pauses: what a 429 or 503 asked
    for in Retry-After (here at most the longest webhook timeout), else 1 s doubling up to 30 s."""
    if retry_after is not None:
        return min(max(retry_after, 0.0), parse_duration(MAX_WEBHOOK_TIMEOUT).total_seconds())
    return float(min(RETRY_PAUSE_MAX, 2 ** attempt))


def _pause(state: RetryCallState) -> float:
    failure = state.outcome.exception() if state.outcome is not None else None
    return retry_pause(state.attempt_number - 1, failure.retry_after if isinstance(failure, _Retryable) else None)


def _retry_after(response: requests.Response) -> float | None:
    """The whole seconds of a Retry-After header (Flagger's client reads no HTTP date), if any."""
    value = response.headers.get("Retry-After", "").strip()
    return float(value) if value.lstrip("-").isdigit() else None


class Pending(Exception):
    """A webhook has not answered within the tick's wait; its call goes on, and the next tick asks again."""


Key = tuple[str, ...]


@dataclass
class _Call:
    """A gating call under way in the background, or answered (``ended``) and not yet claimed."""

    future: Future[HookOutcome] = field(default_factory=Future)
    ended: float | None = None


class WebhookCaller:
    """Calls webhooks over HTTP; never raises (but ``Pending``), always answers with outcomes.

    A gating call (one made with a ``key``) runs in a thread of its own, and the tick that starts it
    waits for it at most ``wait`` seconds: a hook that takes longer (up to its timeout) holds only
    its own canary, whose later ticks find the same call still running (``Pending``, at once) until
    it answers, while every other canary keeps its workers and its interval.
    """

    def __init__(self, post: Post | None = None, *, wait: float = 2.0) -> None:
        self._post = post or GuardedSession().post
        self._wait = wait
        self._running: dict[Key, _Call] = {}
        self._lock = threading.Lock()

    def running(self) -> int:
        """How many gating calls are under way."""
        with self._lock:
            return sum(1 for call in self._running.values() if call.ended is None)

    def gate(self, hook: CanaryWebhook, body: dict[str, Any], *, key: Key) -> HookOutcome:
        """``call`` in the background: the outcome when the call answers within the wait, or has answered
        when a later tick asks with the same ``key``; else ``Pending``. Only the tick that starts the
        call waits: a hook that hangs would otherwise hold a worker for the wait on every tick."""
        wait = 0.0
        with self._lock:
            running = self._running.get(key)
            if running is None:
                self._forget_unclaimed()
                running = self._running[key] = _Call()
                threading.Thread(target=self._settle, args=(running, hook, body), name=f"webhook-{hook.name}",
                                 daemon=True).start()
                wait = self._wait
        try:
            outcome = running.future.result(timeout=wait)
        except FutureTimeout:
            raise Pending(f"webhook {hook.name} has not answered yet") from None
        with self._lock:
            self._running.pop(key, None)
        return outcome

    def _forget_unclaimed(self) -> None:
        """Drop answers nobody came back for (the canary moved on) once they are old."""
        limit = time.monotonic() - FORGET_SECONDS
        for key in [k for k, c in self._running.items() if c.ended is not None and c.ended < limit]:
            del self._running[key]

    def _settle(self, running: _Call, hook: CanaryWebhook, body: dict[str, Any]) -> None:
        try:
            outcome = self.call(hook, body)
        except BaseException as exc:  # handed to whoever asks for the result
            running.ended = time.monotonic()
            running.future.set_exception(exc)
            return
        running.ended = time.monotonic()
        running.future.set_result(outcome)

    def call(self, hook: CanaryWebhook, body: dict[str, Any], *, timeout: str | None = None) -> HookOutcome:
        """POST ``body`` to the hook, with its retries and its timeout (``timeout``, when given, instead)."""
        seconds = parse_duration(timeout or hook.timeout or DEFAULT_TIMEOUT).total_seconds()
        attempts = (hook.retries or 0) + 1
        try:
            for attempt in Retrying(stop=stop_after_attempt(attempts), wait=_pause,
                                    retry=retry_if_exception_type(_Retryable), reraise=True):
                with attempt:
                    return self._once(hook, body, seconds)
        except _Retryable as exc:
            return HookOutcome(hook.name, False, f"webhook {hook.name} failed: {exc}")
        raise AssertionError("unreachable: Retrying either returns or reraises")

    def _once(self, hook: CanaryWebhook, body: dict[str, Any], timeout: float) -> HookOutcome:
        try:
            response = self._exchange(hook, body, timeout)
        except OutboundRefused as exc:
            return HookOutcome(hook.name, False, f"webhook {hook.name}: {exc}")
        except requests.RequestException as exc:
            raise _Retryable(str(exc)) from exc
        # The status only, never the body: messages reach the Canary's status and Events.
        status = response.status_code
        if status == 429 or (status >= 500 and status != _NO_RETRY_STATUS):  # Flagger's client retries these
            raise _Retryable(f"HTTP {status} {response.reason or ''}".rstrip(),
                             retry_after=_retry_after(response) if status in _RETRY_AFTER_STATUSES else None)
        if 200 <= response.status_code < 300:
            return HookOutcome(hook.name, True, f"webhook {hook.name} passed")
        return HookOutcome(hook.name, False, f"webhook {hook.name} answered HTTP {response.status_code} "
                           f"{response.reason or ''}".rstrip())

    def _exchange(self, hook: CanaryWebhook, body: dict[str, Any], timeout: float) -> requests.Response:
        """The POST, answered in full within ``timeout`` or abandoned (``_Retryable``), as Go's
        ``http.Client.Timeout`` in Flagger bounds the whole exchange; the socket timeouts of ``requests``
        bound each wait only, so a receiver trickling its answer would hold the call for many timeouts."""
        box: list[requests.Response | BaseException] = []
        done = threading.Event()

        def run() -> None:
            try:
                box.append(self._post(hook.url, json=body, timeout=timeout, verify=not hook.disable_tls))
            except BaseException as exc:  # handed over to the waiting caller, raised there
                box.append(exc)
            finally:
                done.set()

        threading.Thread(target=run, name=f"webhook-{hook.name}-exchange", daemon=True).start()
        if not done.wait(timeout):
            raise _Retryable(f"no answer within {timeout:g}s")
        if isinstance(box[0], BaseException):
            raise box[0]
        return box[0]

    def first_failure(self, hooks: Sequence[CanaryWebhook], body_for: Callable[[CanaryWebhook], dict[str, Any]],
                      *, key: Key | None = None) -> HookOutcome | None:
        """Call hooks in order until one fails; its outcome, or None when all passed. With ``key`` (the
        canary and the check) each call is a ``gate``."""
        for hook in hooks:
            outcome = self._one(hook, body_for(hook), key)
            if not outcome.passed:
                return outcome
        return None

    def any_pass(self, hooks: Sequence[CanaryWebhook], body_for: Callable[[CanaryWebhook], dict[str, Any]],
                 *, key: Key | None = None) -> tuple[bool, str]:
        """Call hooks until one passes; (one passed, its message). With ``key`` each call is a ``gate``."""
        for hook in hooks:
            outcome = self._one(hook, body_for(hook), key)
            if outcome.passed:
                return True, outcome.message
        return False, ""

    def _one(self, hook: CanaryWebhook, body: dict[str, Any], key: Key | None) -> HookOutcome:
        outcome = self.call(hook, body) if key is None else self.gate(hook, body, key=(*key, hook.name))
        return replace(outcome, muted=hook.mute_alert)


def event_payload(*, name: str, namespace: str, phase: Phase | None, revision: str, hook: CanaryWebhook,
                  message: str, warning: bool, now_ms: int) -> dict[str, Any]:
    """Flagger's event webhook body: the canary, and the Event in ``metadata`` (the hook's own metadata
    never overrides ``eventMessage``, ``eventType`` or ``timestamp``)."""
    body = payload(name=name, namespace=namespace, phase=phase, revision=revision, hook=hook)
    body["metadata"] = {**(hook.metadata or {}), "eventMessage": message,
                        "eventType": "Warning" if warning else "Normal", "timestamp": str(now_ms)}
    return body


@dataclass(frozen=True)
class EventDelivery:
    """One Event for one event webhook."""

    hook: CanaryWebhook
    body: dict[str, Any]


class EventHooks:
    """Sends a canary's Events to its ``event`` webhooks (else to ``--event-webhook``), as Flagger does,
    from one background thread: a slow or dead receiver never holds a tick. The queue is bounded;
    what does not fit is dropped, counted and logged once per canary. Each delivery has ``timeout``
    (Flagger's 5s), whatever the hook's own."""

    def __init__(self, caller: WebhookCaller, *, default_url: str | None = None, capacity: int = 1000,
                 timeout: str = EVENT_TIMEOUT) -> None:
        self._caller = caller
        self._timeout = timeout
        self._default = CanaryWebhook(type=HookType.EVENT, name="events", url=default_url) if default_url else None
        self._queue: queue.Queue[EventDelivery | None] = queue.Queue(maxsize=capacity)
        self._thread = threading.Thread(target=self._deliver, name="event-webhooks", daemon=True)
        self._thread.start()

    def hooks_for(self, hooks: Sequence[CanaryWebhook]) -> list[CanaryWebhook]:
        """The canary's event webhooks; the controller's default only when it has none."""
        own = [h for h in hooks if h.type is HookType.EVENT]
        return own or ([self._default] if self._default is not None else [])

    def send(self, deliveries: Sequence[EventDelivery]) -> None:
        """Queue the deliveries; never waits."""
        for delivery in deliveries:
            try:
                self._queue.put_nowait(delivery)
            except queue.Full:
                EVENTS_DROPPED.inc()
                log.warning("event webhook queue full: event dropped", hook=delivery.hook.name,
                            canary=delivery.body.get("name"), namespace=delivery.body.get("namespace"))

    def close(self, timeout: float = 5.0) -> None:
        """Deliver what is queued (for at most ``timeout`` seconds), then stop."""
        with contextlib.suppress(queue.Full):
            self._queue.put(None, timeout=timeout)
        self._thread.join(timeout)

    def _deliver(self) -> None:
        while (delivery := self._queue.get()) is not None:
            outcome = self._caller.call(delivery.hook, delivery.body, timeout=self._timeout)
            if not outcome.passed:
                log.warning("event webhook failed", hook=delivery.hook.name, problem=outcome.message,
                            canary=delivery.body.get("name"), namespace=delivery.body.get("namespace"))
