"""Prometheus as a metric provider, through prometheus-api-client.

The client's own retries are off (``Retry(total=0)``, its default waits seconds); instead a
failed request is tried again a bounded number of times after a short pause, so that one lost
connection does not count as a failed check, and a server that is down costs at most
``attempts`` timeouts.
"""

from __future__ import annotations

from typing import Any

import requests
from prometheus_api_client import PrometheusConnect
from prometheus_api_client.exceptions import PrometheusApiClientException
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_fixed
from urllib3.util.retry import Retry

from analysis.providers.base import Outcome, QueryResult


def reduce_result(result: Any) -> QueryResult:  # noqa: ANN401 - the shape depends on the result type
    """Turn the ``data.result`` of an instant query into one value, or say why it can't be.

    A vector must hold exactly one sample; a scalar is ``[timestamp, "value"]``.
    """
    if isinstance(result, list) and len(result) == 2 and not isinstance(result[0], dict):
        return QueryResult.of(float(result[1]))
    if not result:
        return QueryResult(Outcome.NO_DATA, message="the query returned no series")
    if len(result) > 1:
        labels = ", ".join(_labels(series.get("metric", {})) for series in result[:3])
        return QueryResult(Outcome.SEVERAL_SERIES,
                           message=f"the query returned {len(result)} series ({labels}); aggregate it to one")
    return QueryResult.of(float(result[0]["value"][1]))


def _labels(metric: dict[str, str]) -> str:
    return "{" + ",".join(f'{k}="{v}"' for k, v in sorted(metric.items())) + "}"


class PrometheusProvider:
    """Instant queries against one Prometheus server."""

    def __init__(self, url: str, *, timeout: float = 5.0, headers: dict[str, str] | None = None,
                 attempts: int = 2, pause: float = 0.2) -> None:
        self.url = url
        self._timeout = timeout
        self._attempts, self._pause = max(1, attempts), pause
        self._client = PrometheusConnect(url=url, headers=headers, disable_ssl=False, retry=Retry(total=0))

    def query(self, query: str) -> QueryResult:
        """Run an instant query and reduce it to one value."""
        try:
            for attempt in Retrying(stop=stop_after_attempt(self._attempts), wait=wait_fixed(self._pause),
                                    retry=retry_if_exception_type(requests.ConnectionError), reraise=True):
                with attempt:
                    result = self._client.custom_query(
                        query, params={"timeout": f"{round(self._timeout * 1000)}ms"}, timeout=self._timeout)
        except (PrometheusApiClientException, requests.RequestException) as exc:
            return QueryResult(Outcome.UNAVAILABLE, message=f"Prometheus at {self.url} failed: {_brief(exc)}")
        return reduce_result(result)


def _brief(exc: Exception) -> str:
    """The error without request headers (which may carry credentials) and without a traceback."""
    return f"{type(exc).__name__}: {str(exc).splitlines()[0][:300]}"
