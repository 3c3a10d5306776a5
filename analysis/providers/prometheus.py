"""Prometheus as a metric provider: instant queries for the checks, range queries for comparisons.

Built by the registry from a ``ProviderConfig``: the Secret's ``token`` (bearer) or
``username``/``password`` (basic auth), custom headers, a CA bundle or insecureSkipVerify, and
the shared time rules of ``transport.HttpClient``. The queries go through prometheus-api-client's
``PrometheusConnect``, on the ``DeadlineSession`` of each attempt: the session carries the TLS
settings, credentials and headers and bounds the exchange by the deadline, and tenacity (in
``HttpClient.call``) owns the retries, so PrometheusConnect's own urllib3 retries are off.
Prometheus also gets each query's timeout as its ``timeout`` parameter, so that it stops
evaluating a query nobody waits for.

No ``window`` here: an instant query's look-back is in the PromQL itself (``rate(...[1m])``), and
a range query's start and end come from its caller.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import requests
from prometheus_api_client.exceptions import PrometheusApiClientException
from prometheus_api_client.prometheus_connect import PrometheusConnect
from urllib3.util.retry import Retry

from analysis.providers.base import Outcome, QueryResult, RangeResult
from analysis.providers.config import ProviderConfig, require_address
from analysis.providers.transport import DeadlineSession, HttpClient, QueryFailed, basic_or_bearer, shown


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
    samples = result[0].get("values", [])
    return RangeResult.of([float(value) for _, value in samples], times=[float(time) for time, _ in samples])


def _several(result: list[dict[str, Any]]) -> str:
    labels = ", ".join(_labels(series.get("metric", {})) for series in result[:3])
    return f"the query returned {len(result)} series ({labels}); aggregate it to one"


def _labels(metric: dict[str, str]) -> str:
    return "{" + ",".join(f'{k}="{v}"' for k, v in sorted(metric.items())) + "}"


# Tenacity retries, inside the deadline; urllib3 must not retry as well. read=False, as requests'
# own default: with Retry(0) alone, a read timeout would come back as a ConnectionError.
_NO_RETRIES = Retry(0, read=False)


class PrometheusProvider:
    """Instant and range queries against one Prometheus server (or anything speaking its HTTP API)."""

    def __init__(self, url: str, *, http: HttpClient | None = None) -> None:
        self.url = url.rstrip("/")
        self._http = http or HttpClient()

    def query(self, query: str, *, deadline: float | None = None) -> QueryResult:
        """Run an instant query and reduce it to one value."""
        try:
            result = self._ask(lambda client, params: client.custom_query(query, params=params), deadline=deadline)
            return reduce_result(result)
        except (KeyError, IndexError, TypeError, ValueError):
            return QueryResult(Outcome.UNAVAILABLE, message=f"{self._source} answered with an unexpected result")
        except QueryFailed as failure:
            return failure.result(self._source)

    def query_range(self, query: str, *, start: datetime, end: datetime, step: timedelta,
                    deadline: float | None = None) -> RangeResult:
        """Run a range query; the samples of its one series, oldest first.

        PrometheusConnect sends ``start`` and ``end`` rounded to whole seconds.
        """
        if start.tzinfo is None or end.tzinfo is None:
            raise ValueError("query_range needs timezone-aware start and end")
        try:
            result = self._ask(lambda client, params: client.custom_query_range(
                query, start_time=start, end_time=end, step=f"{step.total_seconds():g}", params=params),
                deadline=deadline)
            if not isinstance(result, list) or not all(isinstance(s, dict) and "values" in s for s in result):
                # PrometheusConnect hands over data.result only; series without "values" are no matrix.
                return RangeResult(Outcome.UNAVAILABLE, message=f"{self._source} answered a range query with "
                                                                "something other than a matrix")
            return reduce_matrix(result)
        except (KeyError, IndexError, TypeError, ValueError):
            return RangeResult(Outcome.UNAVAILABLE, message=f"{self._source} answered with an unexpected result")
        except QueryFailed as failure:
            return failure.range_result(self._source)

    @property
    def _source(self) -> str:
        return f"Prometheus at {shown(self.url)}"

    def _ask(self, ask: Callable[[PrometheusConnect, dict[str, str]], Any], *, deadline: float | None) -> Any:  # noqa: ANN401 - data.result, whose shape depends on its type
        """``data.result`` of one query that ``ask`` makes through PrometheusConnect, with the HttpClient's rules."""
        budget = self._http.default_deadline if deadline is None else deadline
        params = {"timeout": f"{max(1, round(min(self._http.timeout, budget) * 1000))}ms"}

        def exchange(session: DeadlineSession) -> Any:  # noqa: ANN401 - as above
            # Its timeout is annotated int; requests takes seconds as a float.
            client = PrometheusConnect(self.url, session=session, retry=_NO_RETRIES,
                                       timeout=session.timeout)  # type: ignore[arg-type]
            try:
                return ask(client, params)
            except PrometheusApiClientException:
                # Its message holds only a repr of the body; the session kept the answer itself.
                raise session.reply.refusal(lambda body: f"{body['errorType']}: {body['error']}") from None
            except requests.exceptions.JSONDecodeError:
                raise session.reply.not_json() from None
            except (KeyError, TypeError):
                # Its data["result"] on a body without them.
                raise QueryFailed(Outcome.UNAVAILABLE, f"unexpected answer: {session.reply.snippet()}") from None

        return self._http.call(exchange, deadline=budget)


def from_config(config: ProviderConfig, *, field: str) -> PrometheusProvider:
    """A Prometheus provider for ``config``; ``field`` is the provider spec's path, for errors."""
    address = require_address(config, field=field)
    http = HttpClient.for_config(config, field=field, auth=basic_or_bearer(config, field=field))
    return PrometheusProvider(address, http=http)
