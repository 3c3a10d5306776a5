"""The contract between metric providers and the checks that use them.

A query's answer is more than a number: "no data", "several series", "not a number" and
"provider down" are different situations that the analysis treats differently, so they are
distinct outcomes with messages a person can act on.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol


class Outcome(StrEnum):
    """What became of a query."""

    VALUE = "value"
    NO_DATA = "no-data"
    SEVERAL_SERIES = "several-series"
    NOT_A_NUMBER = "not-a-number"
    UNAVAILABLE = "unavailable"


@dataclass(frozen=True)
class QueryResult:
    """One query's answer: a value only when ``outcome`` is ``VALUE``."""

    outcome: Outcome
    value: float | None = None
    message: str = ""

    @classmethod
    def of(cls, value: float) -> QueryResult:
        """A number, or NOT_A_NUMBER when it is NaN or infinite."""
        if math.isnan(value) or math.isinf(value):
            return cls(Outcome.NOT_A_NUMBER, message=f"the query returned {value}")
        return cls(Outcome.VALUE, value=value)


class MetricProvider(Protocol):
    """A metric back end that turns one query into one number."""

    def query(self, query: str) -> QueryResult:
        """Run ``query`` and reduce its answer to a single value."""
        ...
