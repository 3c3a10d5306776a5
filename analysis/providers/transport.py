"""HTTP for the metric providers: credentials, TLS, a timeout, and bounded retries inside a deadline.

Every provider module builds one ``HttpClient`` from its ``ProviderConfig`` and sends its
requests through it: ``send`` for a plain request, ``call`` to run a client library (Prometheus's
PrometheusConnect) on a ``DeadlineSession`` that carries the same settings. A failure comes back
as ``QueryFailed``, which the provider turns into a ``QueryResult`` (or ``RangeResult``) naming
itself.

The rules for time: a query may take at most its deadline, retries included. Each attempt's
timeout is cut to the time left; tenacity retries after a lost connection or a gateway error
(502, 503, 504) only, and only when the pause before the retry still fits. Each request runs in a
daemon thread that the caller waits for no longer than the time left, because the socket timeouts
of ``requests`` bound each wait on the network, not the whole exchange: a server that trickles its
answer could otherwise hold a tick for many timeouts.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import ssl
import tempfile
import threading
import time
import warnings
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, NoReturn, TypeVar
from urllib.parse import urlsplit, urlunsplit

import requests
from requests.auth import AuthBase, HTTPBasicAuth
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    stop_before_delay,
    wait_fixed,
)
from urllib3.exceptions import InsecureRequestWarning

from analysis import outbound
from analysis.errors import CredentialsError, ProviderSpecError
from analysis.outbound import GuardedSession, OutboundRefused
from analysis.providers.base import Outcome, QueryResult, RangeResult
from analysis.providers.config import ProviderConfig, present

PAUSE = 0.2
"""Seconds between attempts: enough for a restarting proxy, short next to any analysis interval."""

Params = Mapping[str, str] | list[tuple[str, str]]
"""Query parameters: a list when a name repeats (Graphite's ``target``)."""

T = TypeVar("T")

_RETRIED_STATUSES = frozenset({502, 503, 504})
_OBJECT_REPR = re.compile(r"<[^<>]*>: ")


class QueryFailed(Exception):
    """The back end gave no usable answer: unreachable (UNAVAILABLE) or refusing (REJECTED)."""

    def __init__(self, outcome: Outcome, detail: str) -> None:
        super().__init__(detail)
        self.outcome = outcome
        self.detail = detail

    def message(self, source: str) -> str:
        """The failure as a sentence about ``source`` ("Graphite at http://...")."""
        verb = "refused the query" if self.outcome is Outcome.REJECTED else "is unavailable"
        return f"{source} {verb}: {self.detail}"

    def result(self, source: str) -> QueryResult:
        """The failure as the answer to an instant query."""
        return QueryResult(self.outcome, message=self.message(source))

    def range_result(self, source: str) -> RangeResult:
        """The failure as the answer to a range query."""
        return RangeResult(self.outcome, message=self.message(source))


MAX_ERROR_WORDS = 160


def _short(words: str) -> str:
    """The back end's own error words (a parse error, say) on one line, cut short: enough to act on."""
    text = " ".join(words.split())
    return text[:MAX_ERROR_WORDS] + ("..." if len(text) > MAX_ERROR_WORDS else "")


@dataclass(frozen=True)
class Reply:
    """An HTTP answer, read in full."""

    status: int
    reason: str
    body: bytes

    @classmethod
    def of(cls, response: requests.Response) -> Reply:
        """A ``requests`` response, whose body it has read already."""
        return cls(response.status_code, response.reason or "", response.content)

    def json(self) -> Any:  # noqa: ANN401 - JSON is whatever the back end sent; callers check its shape
        """The body as JSON, or UNAVAILABLE when it isn't JSON (a proxy's error page, say)."""
        try:
            return json.loads(self.body)
        except ValueError:
            raise self.not_json() from None

    def not_json(self) -> QueryFailed:
        """The failure of an answer that should have been JSON and isn't."""
        return QueryFailed(Outcome.UNAVAILABLE, f"HTTP {self.status}: the answer is not JSON: {self.snippet()}")

    def snippet(self) -> str:
        """What the body was, for messages: its size and kind, never its content.

        Messages end up in the Canary's status and Events, readable by whoever can read the
        Canary; a template pointed at an internal endpoint must not copy that endpoint's answer
        there (the project's outbound rule: the kind of error, the status code, a short parse error).
        """
        if not self.body:
            return "(empty body)"
        kind = "JSON" if self.body.lstrip()[:1] in (b"{", b"[") else "HTML" if b"<html" in self.body[:512].lower() \
            else "text"
        return f"({len(self.body)} bytes of {kind})"

    def refusal(self, wording: Callable[[Any], object] | None = None, *, plain: bool = False) -> QueryFailed:
        """This non-2xx reply as a failure: REJECTED for 4xx (bad query or credentials), else UNAVAILABLE.

        ``wording`` picks the back end's own words for the error out of a JSON body; ``plain`` takes
        them from the last line of a plain-text body (graphite-web ends its error page with it). Without
        them, the message says only what the body was (``snippet``).
        """
        outcome = Outcome.REJECTED if 400 <= self.status < 500 else Outcome.UNAVAILABLE
        words = self._last_line() if plain else None
        return QueryFailed(outcome, f"HTTP {self.status} {self.reason}: {words or self._words(wording)}")

    def _last_line(self) -> str | None:
        text = self.body.decode("utf-8", errors="replace")
        if not text.strip() or text.lstrip()[:1] in ("{", "[", "<"):
            return None
        return _short(text.strip().splitlines()[-1])

    def _words(self, wording: Callable[[Any], object] | None) -> str:
        if wording is None:
            return self.snippet()
        try:
            found = wording(json.loads(self.body))
        except (ValueError, LookupError, TypeError, AttributeError):
            found = None
        if not found:
            return self.snippet()
        return _short(str(found))


class BearerAuth(AuthBase):
    """``Authorization: Bearer <token>``; requests drops it on a redirect to another host."""

    def __init__(self, token: str) -> None:
        self._token = token

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self._token}"
        return request


class HeaderAuth(AuthBase):
    """API keys sent as headers (Datadog's ``DD-API-KEY``, New Relic's ``API-Key``)."""

    def __init__(self, headers: Mapping[str, str]) -> None:
        self._headers = dict(headers)

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers.update(self._headers)
        return request


def basic_or_bearer(config: ProviderConfig, *, field: str) -> AuthBase | None:
    """The Secret's ``token`` as a bearer token, or its ``username`` and ``password`` for basic auth.

    No Secret (no credentials) means no authentication; a Secret with neither is an error
    rather than a silent anonymous request.
    """
    data = config.credentials
    if not data:
        return None
    if data.get("token"):
        return BearerAuth(data["token"])
    if data.get("username") and data.get("password"):
        return HTTPBasicAuth(data["username"], data["password"])
    raise CredentialsError(f"{field}.secretRef: {config.type} needs key token, or keys username and password; "
                           f"the Secret has {present(data)}")


class Tls:
    """What ``requests`` takes as ``verify``: True, False, or the path of a CA file.

    ``requests`` reads CAs from a file only, so a CA bundle is written to a private temporary
    file that lives as long as this object.
    """

    def __init__(self, config: ProviderConfig, *, field: str) -> None:
        self.verify: bool | str = True
        if config.insecure_skip_verify:
            self.verify = False
            # The spec asked for no verification; urllib3 would warn on every query of every tick.
            warnings.filterwarnings("ignore", category=InsecureRequestWarning)
        elif config.ca_bundle is not None:
            try:
                ssl.create_default_context(cadata=config.ca_bundle)
            except (ssl.SSLError, ValueError) as exc:
                raise ProviderSpecError(f"{field}: the CA bundle is not PEM certificates: {exc}") from None
            descriptor, path = tempfile.mkstemp(prefix="canary-ca-", suffix=".pem")
            with os.fdopen(descriptor, "w") as file:
                file.write(config.ca_bundle)
            self.verify = path
            weakref.finalize(self, _remove, path)


def _remove(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


class _Retried(Exception):
    """A failure worth another attempt: a lost connection or a gateway error; its text ends the message."""


class DeadlineSession(GuardedSession):
    """A ``requests`` session whose every send ends by a deadline, however slowly the server answers.

    The socket timeouts of ``requests`` bound each wait on the network, not the whole exchange,
    so each send runs in a daemon thread that the caller waits for no longer than the time left.
    A gateway error (502, 503, 504) is raised as a retryable failure here, so the retry policy
    sees it whoever sent the request: PrometheusConnect only tells 200 from the rest. The last
    answer stays in ``reply``, read in full. ``HttpClient`` makes one per attempt, so an
    abandoned exchange never shares a pool with the next.
    """

    def __init__(self, *, end: float, budget: float, timeout: float) -> None:
        super().__init__()
        self.timeout = timeout
        self._end, self._budget = end, budget
        self._reply: Reply | None = None
        self._inside = threading.local()

    @property
    def reply(self) -> Reply:
        """The last answer this session received."""
        if self._reply is None:
            raise RuntimeError("the session has received no answer yet")
        return self._reply

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # noqa: ANN401 - requests' own keyword arguments
        """Send ``request`` in a daemon thread and wait for its answer until the deadline at most."""
        if getattr(self._inside, "exchange", False):
            # A redirect, followed from inside the exchange: the outer send already bounds it.
            return super().send(request, **kwargs)
        outbound.check(str(request.url))
        left = self._end - time.monotonic()
        if left <= 0:
            raise self._late()
        kwargs["timeout"] = kwargs.get("timeout") or self.timeout
        box: list[requests.Response | BaseException] = []
        done = threading.Event()

        def run() -> None:
            self._inside.exchange = True
            try:
                box.append(requests.Session.send(self, request, **kwargs))
            except BaseException as exc:  # handed over to the waiting caller, raised there
                box.append(exc)
            finally:
                done.set()

        threading.Thread(target=run, name="metric-query", daemon=True).start()
        if not done.wait(left):
            raise self._late()
        outcome = box[0]
        if isinstance(outcome, BaseException):
            raise outcome
        reply = self._reply = Reply.of(outcome)
        if reply.status in _RETRIED_STATUSES:
            raise _Retried(f"HTTP {reply.status} {reply.reason}: {reply.snippet()}")
        return outcome

    def _late(self) -> QueryFailed:
        return QueryFailed(Outcome.UNAVAILABLE, f"no answer within the deadline of {self._budget:g}s")


class HttpClient:
    """Sends one provider's requests with its headers, authentication, TLS settings and time rules."""

    def __init__(self, *, headers: Mapping[str, str] | None = None, auth: AuthBase | None = None,
                 tls: Tls | None = None, timeout: float = 5.0, attempts: int = 2,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self._headers = dict(headers or {})
        self._auth = auth
        self._tls = tls
        self._timeout = timeout
        self._attempts = max(1, attempts)
        self._sleep = sleep

    @classmethod
    def for_config(cls, config: ProviderConfig, *, field: str, auth: AuthBase | None) -> HttpClient:
        """A client with the config's headers, TLS settings, timeout and attempts, and ``auth``."""
        return cls(headers=config.headers, auth=auth, tls=Tls(config, field=field), timeout=config.timeout,
                   attempts=config.attempts)

    @property
    def timeout(self) -> float:
        """The most seconds one attempt may take."""
        return self._timeout

    @property
    def default_deadline(self) -> float:
        """The bound of a call without a deadline: every attempt's timeout and the pauses between them."""
        return self._attempts * self._timeout + (self._attempts - 1) * PAUSE

    def send(self, method: str, url: str, *, params: Params | None = None, json_body: object = None,
             data: bytes | None = None, headers: Mapping[str, str] | None = None,
             deadline: float | None = None) -> Reply:
        """Send one request, retrying lost connections and gateway errors while the deadline allows.

        Returns any reply that isn't retried, 4xx and 5xx included: the provider knows how its
        back end words errors. Raises ``QueryFailed`` when no reply came in time.
        """

        def exchange(session: DeadlineSession) -> Reply:
            # verify is passed on: left out, requests would let REQUESTS_CA_BUNDLE override the session's.
            session.request(method, url, params=params or {}, json=json_body, data=data, headers=dict(headers or {}),
                            timeout=session.timeout, verify=session.verify)
            return session.reply

        return self.call(exchange, deadline=deadline)

    def call(self, exchange: Callable[[DeadlineSession], T], *, deadline: float | None = None) -> T:
        """Run ``exchange`` on a fresh ``DeadlineSession`` per attempt, with tenacity owning the retries.

        The session carries the headers, authentication and TLS settings, and its ``timeout`` is
        the attempt's share of the deadline. Lost connections and gateway errors are retried while
        the attempts last and the pause before the next still fits in the deadline; every other
        failure ends the call at once. Raises ``QueryFailed`` when no usable answer came in time.
        """
        budget = self.default_deadline if deadline is None else deadline
        end = time.monotonic() + budget
        retrying = Retrying(
            # stop_before_delay, not stop_after_delay: no retry starts that the deadline could not wait for.
            stop=stop_after_attempt(self._attempts) | stop_before_delay(budget),
            wait=wait_fixed(PAUSE), retry=retry_if_exception_type(_Retried), sleep=self._sleep,
            retry_error_callback=_give_up)

        def attempt() -> T:
            return self._attempt(exchange, end=end, budget=budget)

        return retrying(attempt)

    def _attempt(self, exchange: Callable[[DeadlineSession], T], *, end: float, budget: float) -> T:
        left = end - time.monotonic()
        if left <= 0:
            raise QueryFailed(Outcome.UNAVAILABLE, f"no answer within the deadline of {budget:g}s")
        timeout = min(self._timeout, left)
        with self._session(end=end, budget=budget, timeout=timeout) as session:
            try:
                return exchange(session)
            except OutboundRefused as exc:
                raise QueryFailed(Outcome.REJECTED, str(exc)) from None
            except requests.exceptions.SSLError as exc:
                raise QueryFailed(Outcome.UNAVAILABLE, f"TLS failed: {_reason(exc)}") from None
            except requests.exceptions.ConnectTimeout:
                raise _Retried(f"no connection within {timeout:g}s") from None
            except requests.ConnectionError as exc:
                raise _Retried(f"cannot connect: {_reason(exc)}") from None
            except requests.Timeout:
                # A timeout cut short by the deadline is the deadline's doing, and reads as such.
                limit = f"the deadline of {budget:g}s" if timeout < self._timeout else f"{timeout:g}s"
                raise QueryFailed(Outcome.UNAVAILABLE, f"no answer within {limit}") from None
            except requests.RequestException as exc:
                raise QueryFailed(Outcome.UNAVAILABLE, f"{type(exc).__name__}: {_reason(exc)}") from None

    def _session(self, *, end: float, budget: float, timeout: float) -> DeadlineSession:
        session = DeadlineSession(end=end, budget=budget, timeout=timeout)
        session.headers.update(self._headers)
        session.auth = self._auth
        session.verify = self._tls.verify if self._tls is not None else True
        return session


def _give_up(state: RetryCallState) -> NoReturn:
    """The last retryable failure as the call's, with the number of attempts it took."""
    failure = state.outcome.exception() if state.outcome is not None else None
    after = f" ({state.attempt_number} attempts)" if state.attempt_number > 1 else ""
    raise QueryFailed(Outcome.UNAVAILABLE, f"{failure}{after}")


def shown(url: str) -> str:
    """``url`` fit for a message: without user info or query string, either of which may hold a secret."""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=host, query="", fragment=""))


def _reason(exc: requests.RequestException) -> str:
    """The root cause in one line: no object reprs, no request headers (they may carry credentials)."""
    cause: object = exc.args[0] if exc.args else exc
    cause = getattr(cause, "reason", cause)  # urllib3's MaxRetryError wraps the real error
    text = _OBJECT_REPR.sub("", str(cause)).splitlines()
    return text[0][:300] if text else type(exc).__name__
