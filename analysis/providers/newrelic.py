"""New Relic as a metric provider: NRQL through NerdGraph, its GraphQL API (``POST /graphql``).

The Secret's ``apiKey`` (a user key, ``NRAK-...``) goes as the ``API-Key`` header and its
``accountId`` picks the account. The address is the GraphQL endpoint,
``https://api.newrelic.com/graphql`` when none is given (``https://api.eu.newrelic.com/graphql``
for EU accounts). The query is NRQL with its own ``SINCE``; its answer must be one row with one
value (``SELECT average(duration) ...``; a ``percentile()`` of one level counts as one value).

No ``window`` here: the look-back is the NRQL's own ``SINCE`` (New Relic's default, without one,
is the last hour).
"""

from __future__ import annotations

from typing import Any

from analysis.errors import CredentialsError
from analysis.providers.base import Outcome, QueryResult
from analysis.providers.config import ProviderConfig, require_keys
from analysis.providers.transport import HeaderAuth, HttpClient, QueryFailed, shown

DEFAULT_ADDRESS = "https://api.newrelic.com/graphql"
GRAPHQL = ("query($accountId: Int!, $nrql: Nrql!) "
           "{ actor { account(id: $accountId) { nrql(query: $nrql) { results } } } }")
# Keys NRQL adds to a row beside the selected values.
_ROW_METADATA = frozenset({"beginTimeSeconds", "endTimeSeconds", "timestamp"})


def request_body(nrql: str, *, account_id: int) -> dict[str, Any]:
    """The GraphQL request: the NRQL goes as a variable, so it is never pasted into GraphQL."""
    return {"query": GRAPHQL, "variables": {"accountId": account_id, "nrql": nrql}}


def reduce_answer(body: dict[str, Any]) -> QueryResult:
    """The one value of a NerdGraph answer; GraphQL errors (which come with HTTP 200) are refusals."""
    if body.get("errors"):
        raise QueryFailed(Outcome.REJECTED, "; ".join(str(e.get("message")) for e in body["errors"]))
    return reduce_rows(body["data"]["actor"]["account"]["nrql"]["results"])


def reduce_rows(rows: list[dict[str, Any]]) -> QueryResult:
    """The one value of the one row of NRQL results."""
    if not rows:
        return QueryResult(Outcome.NO_DATA, message="the query returned no rows")
    if len(rows) > 1:
        return QueryResult(Outcome.SEVERAL_SERIES, message=f"the query returned {len(rows)} rows; "
                                                           "drop its FACET and TIMESERIES")
    values = {name: value for name, value in rows[0].items() if name not in _ROW_METADATA}
    if len(values) != 1:
        return QueryResult(Outcome.SEVERAL_SERIES, message=f"the query returned {len(values)} values "
                                                           f"({', '.join(sorted(values))}); select one")
    ((name, value),) = values.items()
    while isinstance(value, dict) and len(value) == 1:
        value = next(iter(value.values()))
    if value is None:
        return QueryResult(Outcome.NO_DATA, message=f"{name} is null")
    if isinstance(value, bool) or not isinstance(value, int | float):
        return QueryResult(Outcome.NOT_A_NUMBER, message=f"{name} is {value!r}, not a number")
    return QueryResult.of(float(value))


class NewRelicProvider:
    """NRQL queries against one New Relic account."""

    def __init__(self, url: str, *, account_id: int, http: HttpClient) -> None:
        self.url = url
        self._account = account_id
        self._http = http

    def query(self, query: str, *, deadline: float | None = None) -> QueryResult:
        """Run the NRQL query and take the one value of its one row."""
        source = f"New Relic at {shown(self.url)}"
        try:
            reply = self._http.send("POST", self.url, json_body=request_body(query, account_id=self._account),
                                    deadline=deadline)
            if reply.status != 200:
                raise reply.refusal(lambda body: "; ".join(e["message"] for e in body["errors"]))
            body = reply.json()
            if not isinstance(body, dict):
                raise QueryFailed(Outcome.UNAVAILABLE, f"unexpected answer: {reply.snippet()}")
            return reduce_answer(body)
        except QueryFailed as failure:
            return failure.result(source)
        except (LookupError, TypeError, AttributeError):
            return QueryResult(Outcome.UNAVAILABLE, message=f"{source} answered with unexpected results")


def from_config(config: ProviderConfig, *, field: str) -> NewRelicProvider:
    """A New Relic provider for ``config``; the Secret must hold an API key and the account id."""
    keys = require_keys(config, field=field, choices=[("apiKey", "accountId")])
    if not keys["accountId"].strip().isdigit():
        raise CredentialsError(f"{field}.secretRef: newrelic's accountId must be a number, got {keys['accountId']!r}")
    auth = HeaderAuth({"API-Key": keys["apiKey"]})
    return NewRelicProvider(config.address or DEFAULT_ADDRESS, account_id=int(keys["accountId"]),
                            http=HttpClient.for_config(config, field=field, auth=auth))
