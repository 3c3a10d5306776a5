"""InfluxDB 1.x as a metric provider, through its HTTP ``/query`` endpoint and InfluxQL.

Query convention: the template's query is one InfluxQL SELECT. The database is the address's
``db`` parameter (``http://influxdb:8086?db=telegraf``; ``rp`` may be given the same way), or the
query names it in full (``FROM "telegraf"."autogen"."cpu"``). The Secret's ``username`` and
``password`` go as basic auth, which InfluxDB 1.x accepts in place of ``u``/``p`` parameters
(so they never appear in a URL), or its ``token`` as a bearer token (InfluxDB's JWT).
The answer is the first value of the one series the query returns.

No ``window`` here: the look-back is in the InfluxQL itself (``WHERE time > now() - 5m``).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from analysis.providers.base import Outcome, QueryResult
from analysis.providers.config import ProviderConfig, require_address
from analysis.providers.transport import HttpClient, QueryFailed, basic_or_bearer, shown


def reduce_statements(results: list[dict[str, Any]]) -> QueryResult:
    """The first value of the one series of the one statement in a ``/query`` answer."""
    if len(results) != 1:
        return QueryResult(Outcome.SEVERAL_SERIES, message=f"the query has {len(results)} statements; send one")
    statement = results[0]
    if statement.get("error"):
        raise QueryFailed(Outcome.REJECTED, str(statement["error"]))
    series = statement.get("series") or []
    if not series:
        return QueryResult(Outcome.NO_DATA, message="the query returned no series")
    if len(series) > 1:
        names = ", ".join(_name(s) for s in series[:3])
        return QueryResult(Outcome.SEVERAL_SERIES, message=f"the query returned {len(series)} series ({names}); "
                                                           "aggregate them to one (drop its GROUP BY tags)")
    return reduce_series(series[0])


def reduce_series(series: dict[str, Any]) -> QueryResult:
    """The first value of one series: its first row's one field."""
    columns, rows = series["columns"], series.get("values") or []
    fields = [i for i, column in enumerate(columns) if column != "time"]
    if len(fields) != 1:
        names = ", ".join(columns[i] for i in fields)
        return QueryResult(Outcome.SEVERAL_SERIES, message=f"the query selects {len(fields)} fields ({names}); "
                                                           "select one")
    if not rows or rows[0][fields[0]] is None:
        return QueryResult(Outcome.NO_DATA, message=f"the series {_name(series)} has no value")
    value = rows[0][fields[0]]
    if isinstance(value, bool) or not isinstance(value, int | float):
        return QueryResult(Outcome.NOT_A_NUMBER, message=f"the query returned {value!r}, not a number")
    return QueryResult.of(float(value))


def _name(series: dict[str, Any]) -> str:
    tags = ",".join(f"{k}={v}" for k, v in sorted((series.get("tags") or {}).items()))
    return f"{series.get('name')}{{{tags}}}" if tags else str(series.get("name"))


class InfluxDBProvider:
    """InfluxQL queries against one InfluxDB 1.x server."""

    def __init__(self, address: str, *, http: HttpClient | None = None) -> None:
        parts = urlsplit(address)
        self.url = urlunsplit(parts._replace(query="", fragment="")).rstrip("/")
        self._params = parse_qsl(parts.query)
        self._http = http or HttpClient()

    def query(self, query: str, *, deadline: float | None = None) -> QueryResult:
        """Run one InfluxQL statement and take the first value of its one series."""
        source = f"InfluxDB at {shown(self.url)}"
        params = [*self._params, ("q", query), ("epoch", "s")]
        try:
            reply = self._http.send("GET", f"{self.url}/query", params=params, deadline=deadline)
            if reply.status != 200:
                raise reply.refusal(lambda body: body["error"])
            body = reply.json()
            if not isinstance(body, dict) or not isinstance(body.get("results"), list):
                raise QueryFailed(Outcome.UNAVAILABLE, f"unexpected answer: {reply.snippet()}")
            return reduce_statements(body["results"])
        except QueryFailed as failure:
            return failure.result(source)
        except (KeyError, IndexError, TypeError, AttributeError):
            return QueryResult(Outcome.UNAVAILABLE, message=f"{source} answered with an unexpected result")


def from_config(config: ProviderConfig, *, field: str) -> InfluxDBProvider:
    """An InfluxDB 1.x provider for ``config``: its address (with ``db``), and basic or bearer auth."""
    address = require_address(config, field=field)
    return InfluxDBProvider(address, http=HttpClient.for_config(config, field=field,
                                                                auth=basic_or_bearer(config, field=field)))
