"""Graphite as a metric provider, through its render API (``/render?format=json``).

Query convention, Flagger's: the template's query is the render API's query string, such as
``target=sumSeries(app.{{ target }}.errors)&from=-5min``; a query without ``target=`` is one
target. Whitespace outside quotes is dropped, so a long target can be written over several lines.
The answer is the last non-null datapoint of the one series the query returns.

No ``window`` here: the look-back is the query's own ``from`` (graphite-web's default, without
one, is the last 24 hours), as in Flagger.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

from analysis.providers.base import Outcome, QueryResult
from analysis.providers.config import ProviderConfig, require_address
from analysis.providers.transport import HttpClient, QueryFailed, basic_or_bearer, shown


def render_params(query: str) -> list[tuple[str, str]]:
    """The render API's parameters for ``query``, JSON asked for."""
    compact = _squeeze(query)
    if compact.startswith("target=") or "&target=" in compact:
        pairs = parse_qsl(compact, keep_blank_values=True)
    else:
        pairs = [("target", compact)]
    return [(name, value) for name, value in pairs if name != "format"] + [("format", "json")]


def _squeeze(query: str) -> str:
    """``query`` without whitespace, except inside quotes (an ``alias()`` may hold spaces)."""
    kept, quote = [], ""
    for char in query:
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char.isspace():
            continue
        kept.append(char)
    return "".join(kept)


def reduce_render(series: list[dict[str, Any]]) -> QueryResult:
    """The last non-null datapoint of the one series in a render answer."""
    if not series:
        return QueryResult(Outcome.NO_DATA, message="the query matched no series")
    if len(series) > 1:
        names = ", ".join(str(s.get("target")) for s in series[:3])
        return QueryResult(Outcome.SEVERAL_SERIES, message=f"the query returned {len(series)} series ({names}); "
                                                           "aggregate them to one, with sumSeries() say")
    for value, _ in reversed(series[0].get("datapoints") or []):
        if value is not None:
            return QueryResult.of(float(value))
    return QueryResult(Outcome.NO_DATA, message=f"the series {series[0].get('target')} has only null datapoints")


class GraphiteProvider:
    """Queries against one graphite-web (or anything serving its render API)."""

    def __init__(self, url: str, *, http: HttpClient | None = None) -> None:
        self.url = url.rstrip("/")
        self._http = http or HttpClient()

    def query(self, query: str, *, deadline: float | None = None) -> QueryResult:
        """Render the query's target as JSON and take its last datapoint."""
        source = f"Graphite at {shown(self.url)}"
        try:
            reply = self._http.send("GET", f"{self.url}/render", params=render_params(query), deadline=deadline)
            if reply.status != 200:
                raise reply.refusal(plain=True)
            body = reply.json()
            if not isinstance(body, list):
                raise QueryFailed(Outcome.UNAVAILABLE, f"unexpected answer: {reply.snippet()}")
            return reduce_render(body)
        except QueryFailed as failure:
            return failure.result(source)
        except (AttributeError, TypeError, ValueError):
            return QueryResult(Outcome.UNAVAILABLE, message=f"{source} answered with unexpected datapoints")


def from_config(config: ProviderConfig, *, field: str) -> GraphiteProvider:
    """A Graphite provider for ``config``: its address, and basic or bearer auth from the Secret."""
    address = require_address(config, field=field)
    return GraphiteProvider(address, http=HttpClient.for_config(config, field=field,
                                                                auth=basic_or_bearer(config, field=field)))
