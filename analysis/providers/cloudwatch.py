"""Amazon CloudWatch as a metric provider, through GetMetricData on its AWS JSON 1.0 API.

Query convention, Flagger's: the template's query is a JSON list of ``MetricDataQuery``
objects (``MetricStat`` or ``Expression``, with ``ReturnData: false`` on all but the one to
judge). The request is ``POST /`` with ``X-Amz-Target: GraniteServiceVersion20100801.GetMetricData``,
signed with SigV4 from the Secret's ``accessKeyId``, ``secretAccessKey`` and optional
``sessionToken``; the region is the spec's ``region``, and the address defaults to that region's
endpoint. The query covers the last ``window`` seconds; the answer is the latest value of the
one result.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from analysis.providers.base import Outcome, QueryResult
from analysis.providers.config import ProviderConfig, require_keys, require_region
from analysis.providers.sigv4 import AwsCredentials, SigV4Auth
from analysis.providers.transport import HttpClient, QueryFailed, shown

TARGET = "GraniteServiceVersion20100801.GetMetricData"
CONTENT_TYPE = "application/x-amz-json-1.0"
_FAILED_STATUSES = {"InternalError": Outcome.UNAVAILABLE, "Forbidden": Outcome.REJECTED}


def endpoint(region: str) -> str:
    """CloudWatch's endpoint in ``region`` (China's regions have a domain of their own)."""
    return f"https://monitoring.{region}.amazonaws.com{'.cn' if region.startswith('cn-') else ''}"


def request_body(query: str, *, start: float, end: float) -> dict[str, Any]:
    """The GetMetricData request for a template's query over [start, end] (seconds since the epoch)."""
    try:
        queries = json.loads(query)
    except ValueError as exc:
        raise QueryFailed(Outcome.REJECTED, f"the query is not JSON: {exc}") from None
    if not isinstance(queries, list) or not queries or not all(isinstance(q, dict) for q in queries):
        raise QueryFailed(Outcome.REJECTED, "the query must be a JSON list of MetricDataQuery objects")
    return {"MetricDataQueries": queries, "StartTime": int(start), "EndTime": int(end),
            "ScanBy": "TimestampDescending"}


def reduce_metric_data(body: dict[str, Any]) -> QueryResult:
    """The latest value of the one result of a GetMetricData answer."""
    results = body.get("MetricDataResults") or []
    if not results:
        return QueryResult(Outcome.NO_DATA, message="the query returned no results")
    if len(results) > 1:
        ids = ", ".join(str(r.get("Id")) for r in results[:3])
        return QueryResult(Outcome.SEVERAL_SERIES, message=f"the query returned {len(results)} results ({ids}); "
                                                           "set ReturnData to false on all but one")
    result = results[0]
    status = result.get("StatusCode")
    if status in _FAILED_STATUSES:
        notes = "; ".join(str(m.get("Value")) for m in result.get("Messages") or []) or "no message"
        raise QueryFailed(_FAILED_STATUSES[status], f"{result.get('Id')}: {status}: {notes}")
    values, stamps = result.get("Values") or [], result.get("Timestamps") or []
    if not values:
        return QueryResult(Outcome.NO_DATA, message=f"{result.get('Id')} has no datapoints in the window")
    # Values come newest first (ScanBy), but the timestamps are what says which is latest.
    latest = max(range(len(values)), key=lambda i: stamps[i]) if len(stamps) == len(values) else 0
    return QueryResult.of(float(values[latest]))


class CloudWatchProvider:
    """GetMetricData queries against one region's CloudWatch."""

    def __init__(self, url: str, *, http: HttpClient, window: float = 300.0,
                 wall_clock: Callable[[], float] = time.time) -> None:
        self.url = url.rstrip("/")
        self._http = http
        self._window = window
        self._now = wall_clock

    def query(self, query: str, *, deadline: float | None = None) -> QueryResult:
        """Run the metric data queries over the window that ends now; the latest value of the one result."""
        source = f"CloudWatch at {shown(self.url)}"
        try:
            now = self._now()
            body = json.dumps(request_body(query, start=now - self._window, end=now)).encode()
            reply = self._http.send("POST", f"{self.url}/", data=body, deadline=deadline,
                                    headers={"Content-Type": CONTENT_TYPE, "X-Amz-Target": TARGET})
            if reply.status != 200:
                raise reply.refusal(lambda error: f"{str(error['__type']).rsplit('#', 1)[-1]}: "
                                                  f"{error.get('message') or error.get('Message')}")
            answer = reply.json()
            if not isinstance(answer, dict):
                raise QueryFailed(Outcome.UNAVAILABLE, f"unexpected answer: {reply.snippet()}")
            return reduce_metric_data(answer)
        except QueryFailed as failure:
            return failure.result(source)
        except (LookupError, TypeError, AttributeError, ValueError):
            return QueryResult(Outcome.UNAVAILABLE, message=f"{source} answered with unexpected results")


def from_config(config: ProviderConfig, *, field: str) -> CloudWatchProvider:
    """A CloudWatch provider for ``config``: a region, and an access key in the Secret."""
    region = require_region(config, field=field)
    keys = require_keys(config, field=field, choices=[("accessKeyId", "secretAccessKey")])
    credentials = AwsCredentials(keys["accessKeyId"], keys["secretAccessKey"],
                                 config.credentials.get("sessionToken") or None)
    auth = SigV4Auth(credentials, region=region, service="monitoring")
    return CloudWatchProvider(config.address or endpoint(region), window=config.window,
                              http=HttpClient.for_config(config, field=field, auth=auth))
