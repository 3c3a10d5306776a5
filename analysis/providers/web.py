"""Any JSON endpoint as a metric provider, as Argo Rollouts' web metric: fetch a URL, pick a number.

Query convention: the address is the URL and the template's query is a JSONPath into the JSON
answer, ``$.data.errorRate`` (Argo's ``{$.data.errorRate}`` works too). To POST, or to send a
body, the query is a JSON object instead::

    {"jsonPath": "$.result.value", "method": "POST", "body": {"service": "{{ target }}"}}

``method`` is GET or POST (POST when there is a body, unless it says otherwise); ``body`` is sent
as JSON. Headers are the spec's; the Secret's ``token`` (bearer) or ``username`` and
``password`` (basic) authenticate. The path must select exactly one value: a number, a string
holding one, or a boolean (true is 1, false is 0).

No ``window`` here: whatever time range the endpoint takes is in its URL or the query's body.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from typing import Any

from jsonpath_ng import JSONPath
from jsonpath_ng.exceptions import JSONPathError
from jsonpath_ng.ext.parser import parse

from analysis.providers.base import Outcome, QueryResult
from analysis.providers.config import ProviderConfig, require_address
from analysis.providers.transport import HttpClient, QueryFailed, basic_or_bearer, shown

_QUERY_KEYS = frozenset({"jsonPath", "method", "body"})


@dataclass(frozen=True)
class WebQuery:
    """What to send and what to pick from the answer."""

    json_path: str
    method: str = "GET"
    body: Any = None


def parse_query(query: str) -> WebQuery:
    """A template's query as a ``WebQuery``; a query that can't be one is REJECTED."""
    text = query.strip()
    if not (text.startswith("{") and not text.startswith("{$")):
        return WebQuery(_bare(text))
    try:
        spec = json.loads(text)
    except ValueError as exc:
        raise QueryFailed(Outcome.REJECTED, f"the query is neither a JSONPath nor a JSON object: {exc}") from None
    unknown = sorted(set(spec) - _QUERY_KEYS)
    if unknown or not isinstance(spec.get("jsonPath"), str):
        raise QueryFailed(Outcome.REJECTED, f"the query object needs a jsonPath string and may have method and "
                                            f"body; it has {', '.join(sorted(spec)) or 'nothing'}")
    method = str(spec.get("method", "POST" if "body" in spec else "GET")).upper()
    if method not in ("GET", "POST"):
        raise QueryFailed(Outcome.REJECTED, f"the query's method must be GET or POST, got {method}")
    return WebQuery(_bare(spec["jsonPath"]), method, spec.get("body"))


def _bare(path: str) -> str:
    """Argo's ``{$.a.b}`` (Kubernetes JSONPath braces) as plain ``$.a.b``."""
    return path[1:-1].strip() if path.startswith("{") and path.endswith("}") else path


@functools.lru_cache(maxsize=256)
def _compiled(path: str) -> JSONPath:
    try:
        return parse(path)
    except (JSONPathError, ValueError) as exc:
        raise QueryFailed(Outcome.REJECTED, f"{path!r} is not a JSONPath: {exc}") from None


def pick(document: Any, path: str) -> QueryResult:  # noqa: ANN401 - any JSON document
    """The one number that ``path`` selects in ``document``."""
    matches = [match.value for match in _compiled(path).find(document)]
    if not matches:
        return QueryResult(Outcome.NO_DATA, message=f"{path} matched nothing in the answer")
    if len(matches) > 1:
        return QueryResult(Outcome.SEVERAL_SERIES, message=f"{path} matched {len(matches)} values; narrow it to one")
    value = matches[0]
    if value is None:
        return QueryResult(Outcome.NO_DATA, message=f"{path} is null")
    return _number(value, path)


def _number(value: Any, path: str) -> QueryResult:  # noqa: ANN401 - any JSON value
    """A number, a string holding one, or a boolean as 1 or 0."""
    if isinstance(value, bool | int | float):
        return QueryResult.of(float(value))
    if isinstance(value, str):
        try:
            return QueryResult.of(float(value))
        except ValueError:
            pass
    # The value's kind only: the answer's content stays out of the Canary's status.
    kinds: dict[type, str] = {str: "a string", dict: "an object", list: "a list"}
    kind = kinds.get(type(value), type(value).__name__)
    return QueryResult(Outcome.NOT_A_NUMBER, message=f"{path} selected {kind}, not a number")


class WebProvider:
    """One URL whose JSON answer holds the metric."""

    def __init__(self, url: str, *, http: HttpClient | None = None) -> None:
        self.url = url
        self._http = http or HttpClient()

    def query(self, query: str, *, deadline: float | None = None) -> QueryResult:
        """Fetch the URL as the query says and pick its number."""
        source = f"the web metric at {shown(self.url)}"
        try:
            request = parse_query(query)
            reply = self._http.send(request.method, self.url, json_body=request.body, deadline=deadline,
                                    headers={"Accept": "application/json"})
            if not 200 <= reply.status < 300:
                raise reply.refusal()
            return pick(reply.json(), request.json_path)
        except QueryFailed as failure:
            return failure.result(source)


def from_config(config: ProviderConfig, *, field: str) -> WebProvider:
    """A web provider for ``config``: the address is the URL."""
    address = require_address(config, field=field)
    return WebProvider(address, http=HttpClient.for_config(config, field=field,
                                                           auth=basic_or_bearer(config, field=field)))
