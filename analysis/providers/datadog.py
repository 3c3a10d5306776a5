"""Datadog as a metric provider, through its v1 timeseries API (``GET /api/v1/query``).

The Secret's ``apiKey`` and ``applicationKey`` (or Flagger's ``datadog_api_key`` and
``datadog_application_key``) go as the ``DD-API-KEY`` and ``DD-APPLICATION-KEY`` headers. The
address is the API of the account's site, ``https://api.datadoghq.com`` when none is given
(``https://api.datadoghq.eu`` and so on for the others). The query runs over the last
``window`` seconds and its answer is the last non-null point of its one series.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from analysis.providers.base import Outcome, QueryResult
from analysis.providers.config import ProviderConfig, require_keys
from analysis.providers.transport import HeaderAuth, HttpClient, QueryFailed, shown

DEFAULT_ADDRESS = "https://api.datadoghq.com"


def query_params(query: str, *, now: float, window: float) -> dict[str, str]:
    """The parameters of ``/api/v1/query``: the query over the window that ends ``now`` (seconds)."""
    return {"from": str(int(now - window)), "to": str(int(now)), "query": query}


def reduce_series(body: dict[str, Any]) -> QueryResult:
    """The last non-null point of the one series in a query answer."""
    if body.get("status") == "error":
        raise QueryFailed(Outcome.REJECTED, str(body.get("error") or "status error"))
    series = body.get("series") or []
    if not series:
        return QueryResult(Outcome.NO_DATA, message="the query returned no series")
    if len(series) > 1:
        scopes = ", ".join(str(s.get("scope") or s.get("expression")) for s in series[:3])
        return QueryResult(Outcome.SEVERAL_SERIES, message=f"the query returned {len(series)} series ({scopes}); "
                                                           "aggregate them to one (drop its 'by {...}')")
    for _, value in reversed(series[0].get("pointlist") or []):
        if value is not None:
            return QueryResult.of(float(value))
    return QueryResult(Outcome.NO_DATA, message="the series has no points in the window")


class DatadogProvider:
    """Timeseries queries against one Datadog site."""

    def __init__(self, url: str, *, http: HttpClient, window: float = 300.0,
                 wall_clock: Callable[[], float] = time.time) -> None:
        self.url = url.rstrip("/")
        self._http = http
        self._window = window
        self._now = wall_clock

    def query(self, query: str, *, deadline: float | None = None) -> QueryResult:
        """Run the query over the window that ends now and take its last point."""
        source = f"Datadog at {shown(self.url)}"
        try:
            reply = self._http.send("GET", f"{self.url}/api/v1/query", deadline=deadline,
                                    params=query_params(query, now=self._now(), window=self._window))
            if reply.status != 200:
                raise reply.refusal(lambda body: "; ".join(body["errors"]))
            body = reply.json()
            if not isinstance(body, dict):
                raise QueryFailed(Outcome.UNAVAILABLE, f"unexpected answer: {reply.snippet()}")
            return reduce_series(body)
        except QueryFailed as failure:
            return failure.result(source)
        except (AttributeError, TypeError, ValueError):
            return QueryResult(Outcome.UNAVAILABLE, message=f"{source} answered with unexpected points")


def from_config(config: ProviderConfig, *, field: str) -> DatadogProvider:
    """A Datadog provider for ``config``; the Secret must hold both keys."""
    keys = list(require_keys(config, field=field, choices=[("apiKey", "applicationKey"),
                                                           ("datadog_api_key", "datadog_application_key")]).values())
    auth = HeaderAuth({"DD-API-KEY": keys[0], "DD-APPLICATION-KEY": keys[1]})
    return DatadogProvider(config.address or DEFAULT_ADDRESS, window=config.window,
                           http=HttpClient.for_config(config, field=field, auth=auth))
