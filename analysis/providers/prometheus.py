"""Prometheus as a metric provider: instant queries for the checks, range queries for comparisons.

Built by the registry from a ``ProviderConfig``: the Secret's ``token`` (bearer) or
``username``/``password`` (basic auth), custom headers, a CA bundle or insecureSkipVerify, and
the shared time rules of ``transport.HttpClient``. Prometheus also gets each attempt's timeout
as its ``timeout`` parameter, so that it stops evaluating a query nobody waits for.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from analysis.providers.base import Outcome, QueryResult, RangeResult
from analysis.providers.config import ProviderConfig, require_address
from analysis.providers.transport import HttpClient, QueryFailed, basic_or_bearer, shown


def reduce_result(result: Any) -> QueryResult:  # noqa: ANN401 - the shape depends on the result type
    """Turn the ``data.result`` of an instant query into one value, or say why it can't be.

    A vector must hold exactly one sample; a scalar is ``[timestamp, "value"]``.
    """
    if isinstance(result, list) and len(result) == 2 and not isinstance(result[0], dict):
        return QueryResult.of(float(result[1]))
    if not result:
        return QueryResult(Outcome.NO_DATA, message="the query returned no series")
    if len(result) > 1:
        return QueryResult(Outcome.SEVERAL_SERIES, message=_several(result))
    return QueryResult.of(float(result[0]["value"][1]))


def reduce_matrix(result: list[dict[str, Any]]) -> RangeResult:
    """Turn the ``data.result`` of a range query (a matrix) into the samples of its one series."""
    if not result:
        return RangeResult(Outcome.NO_DATA, message="the query returned no series")
    if len(result) > 1:
        return RangeResult(Outcome.SEVERAL_SERIES, message=_several(result))
    return RangeResult.of([float(value) for _, value in result[0].get("values", [])])


def _several(result: list[dict[str, Any]]) -> str:
    labels = ", ".join(_labels(series.get("metric", {})) for series in result[:3])
    return f"the query returned {len(result)} series ({labels}); aggregate it to one"


def _labels(metric: dict[str, str]) -> str:
    return "{" + ",".join(f'{k}="{v}"' for k, v in sorted(metric.items())) + "}"


class PrometheusProvider:
    """Instant and range queries against one Prometheus server (or anything speaking its HTTP API)."""

    def __init__(self, url: str, *, http: HttpClient | None = None) -> None:
        self.url = url.rstrip("/")
        self._http = http or HttpClient()

    def query(self, query: str, *, deadline: float | None = None) -> QueryResult:
        """Run an instant query and reduce it to one value."""
        try:
            data = self._data("query", {"query": query}, deadline=deadline)
            return reduce_result(data.get("result"))
        except (KeyError, IndexError, TypeError, ValueError):
            return QueryResult(Outcome.UNAVAILABLE, message=f"{self._source} answered with an unexpected result")
        except QueryFailed as failure:
            return failure.result(self._source)

    def query_range(self, query: str, *, start: datetime, end: datetime, step: timedelta,
                    deadline: float | None = None) -> RangeResult:
        """Run a range query; the samples of its one series, oldest first."""
        if start.tzinfo is None or end.tzinfo is None:
            raise ValueError("query_range needs timezone-aware start and end")
        params = {"query": query, "start": f"{start.timestamp():.3f}", "end": f"{end.timestamp():.3f}",
                  "step": f"{step.total_seconds():g}"}
        try:
            data = self._data("query_range", params, deadline=deadline)
            if data.get("resultType") != "matrix":
                return RangeResult(Outcome.UNAVAILABLE, message=f"{self._source} answered a range query with "
                                                                f"{data.get('resultType')!r}, not a matrix")
            return reduce_matrix(data.get("result") or [])
        except (KeyError, IndexError, TypeError, ValueError):
            return RangeResult(Outcome.UNAVAILABLE, message=f"{self._source} answered with an unexpected result")
        except QueryFailed as failure:
            return failure.range_result(self._source)

    @property
    def _source(self) -> str:
        return f"Prometheus at {shown(self.url)}"

    def _data(self, endpoint: str, params: dict[str, str], *, deadline: float | None) -> dict[str, Any]:
        budget = self._http.default_deadline if deadline is None else deadline
        params["timeout"] = f"{max(1, round(min(self._http.timeout, budget) * 1000))}ms"
        reply = self._http.send("GET", f"{self.url}/api/v1/{endpoint}", params=params, deadline=budget)
        if reply.status != 200:
            raise reply.refusal(lambda body: f"{body['errorType']}: {body['error']}")
        body = reply.json()
        data = body.get("data") if isinstance(body, dict) and body.get("status") == "success" else None
        if not isinstance(data, dict):
            raise QueryFailed(Outcome.UNAVAILABLE, f"unexpected answer: {reply.snippet()}")
        return data


def from_config(config: ProviderConfig, *, field: str) -> PrometheusProvider:
    """A Prometheus provider for ``config``; ``field`` is the provider spec's path, for errors."""
    address = require_address(config, field=field)
    http = HttpClient.for_config(config, field=field, auth=basic_or_bearer(config, field=field))
    return PrometheusProvider(address, http=http)
