"""HTTP for the metric providers: credentials, TLS, a timeout, and bounded retries inside a deadline.

Every provider module builds one ``HttpClient`` from its ``ProviderConfig`` and sends its
requests through it. A failure comes back as ``QueryFailed``, which the provider turns into a
``QueryResult`` (or ``RangeResult``) naming itself.

The rules for time: a query may take at most its deadline, retries included. Each attempt's
timeout is cut to the time left; a retry starts only after a lost connection or a gateway error
(502, 503, 504) and only when the pause before it still fits. Each request runs in a daemon
thread that the caller waits for no longer than the time left, because the socket timeouts of
``requests`` bound each wait on the network, not the whole exchange: a server that trickles its
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
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests
from requests.auth import AuthBase, HTTPBasicAuth
from urllib3.exceptions import InsecureRequestWarning

from analysis.errors import CredentialsError, ProviderSpecError
from analysis.providers.base import Outcome, QueryResult, RangeResult
from analysis.providers.config import ProviderConfig, present

PAUSE = 0.2
"""Seconds between attempts: enough for a restarting proxy, short next to any analysis interval."""

Params = Mapping[str, str] | list[tuple[str, str]]
"""Query parameters: a list when a name repeats (Graphite's ``target``)."""

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


@dataclass(frozen=True)
class Reply:
    """An HTTP answer, read in full."""

    status: int
    reason: str
    body: bytes

    def json(self) -> Any:  # noqa: ANN401 - JSON is whatever the back end sent; callers check its shape
        """The body as JSON, or UNAVAILABLE when it isn't JSON (a proxy's error page, say)."""
        try:
            return json.loads(self.body)
        except ValueError:
            raise QueryFailed(Outcome.UNAVAILABLE, f"HTTP {self.status}: the answer is not JSON: "
                                                   f"{self.snippet()}") from None

    def snippet(self) -> str:
        """The start of the body on one line, for messages."""
        text = " ".join(self.body.decode("utf-8", errors="replace").split())
        return text[:200] + ("..." if len(text) > 200 else "") if text else "(empty body)"

    def refusal(self, wording: Callable[[Any], object] | None = None) -> QueryFailed:
        """This non-2xx reply as a failure: REJECTED for 4xx (bad query or credentials), else UNAVAILABLE.

        ``wording`` picks the back end's own words for the error out of a JSON body; when the
        body isn't JSON or lacks them, the message quotes the start of the body.
        """
        outcome = Outcome.REJECTED if 400 <= self.status < 500 else Outcome.UNAVAILABLE
        return QueryFailed(outcome, f"HTTP {self.status} {self.reason}: {self._words(wording)}")

    def _words(self, wording: Callable[[Any], object] | None) -> str:
        if wording is None:
            return self.snippet()
        try:
            found = wording(json.loads(self.body))
        except (ValueError, LookupError, TypeError, AttributeError):
            found = None
        return str(found) if found else self.snippet()


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


class HttpClient:
    """Sends one provider's requests with its headers, authentication, TLS settings and time rules."""

    def __init__(self, *, headers: Mapping[str, str] | None = None, auth: AuthBase | None = None,
                 tls: Tls | None = None, timeout: float = 5.0, attempts: int = 2,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> None:
        self._headers = dict(headers or {})
        self._auth = auth
        self._tls = tls
        self._timeout = timeout
        self._attempts = max(1, attempts)
        self._clock, self._sleep = clock, sleep

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
        budget = self.default_deadline if deadline is None else deadline
        end = self._clock() + budget
        request = requests.Request(method, url, params=params or {}, json=json_body, data=data,
                                   headers={**self._headers, **(headers or {})}, auth=self._auth)
        tries = 0
        while True:
            left = end - self._clock()
            if left <= 0:
                raise QueryFailed(Outcome.UNAVAILABLE, f"no answer within the deadline of {budget:g}s")
            tries += 1
            timeout = min(self._timeout, left)
            try:
                reply = self._exchange(request, timeout=timeout, wait=left, budget=budget)
            except requests.exceptions.SSLError as exc:
                raise QueryFailed(Outcome.UNAVAILABLE, f"TLS failed: {_reason(exc)}") from None
            except requests.exceptions.ConnectTimeout:
                failure = f"no connection within {timeout:g}s"
            except requests.ConnectionError as exc:
                failure = f"cannot connect: {_reason(exc)}"
            except requests.Timeout:
                # A timeout cut short by the deadline is the deadline's doing, and reads as such.
                limit = f"the deadline of {budget:g}s" if timeout < self._timeout else f"{timeout:g}s"
                raise QueryFailed(Outcome.UNAVAILABLE, f"no answer within {limit}") from None
            except requests.RequestException as exc:
                raise QueryFailed(Outcome.UNAVAILABLE, f"{type(exc).__name__}: {_reason(exc)}") from None
            else:
                if reply.status not in _RETRIED_STATUSES:
                    return reply
                failure = f"HTTP {reply.status} {reply.reason}: {reply.snippet()}"
            if tries >= self._attempts or end - self._clock() <= PAUSE:
                after = f" ({tries} attempts)" if tries > 1 else ""
                raise QueryFailed(Outcome.UNAVAILABLE, failure + after)
            self._sleep(PAUSE)

    def _exchange(self, request: requests.Request, *, timeout: float, wait: float, budget: float) -> Reply:
        """One request in a daemon thread, waited for at most ``wait`` seconds."""
        box: list[Reply | BaseException] = []
        done = threading.Event()
        verify = self._tls.verify if self._tls is not None else True

        def run() -> None:
            try:
                # A session per request: an abandoned exchange never shares a pool with the next.
                with requests.Session() as session:
                    prepared = session.prepare_request(request)
                    settings = session.merge_environment_settings(prepared.url, {}, None, verify, None)
                    response = session.send(prepared, timeout=timeout, allow_redirects=True, **settings)
                    box.append(Reply(response.status_code, response.reason or "", response.content))
            except BaseException as exc:  # handed over to the waiting caller, raised there
                box.append(exc)
            finally:
                done.set()

        threading.Thread(target=run, name="metric-query", daemon=True).start()
        if not done.wait(wait):
            raise QueryFailed(Outcome.UNAVAILABLE, f"no answer within the deadline of {budget:g}s")
        outcome = box[0]
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome


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
