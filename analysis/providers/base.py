"""The contract between metric providers and the checks that use them.

A query's answer is more than a number: "no data", "several series", "not a number",
"provider down" and "query refused" are different situations that the analysis treats
differently, so they are distinct outcomes with messages a person can act on.

The controller's metric check calls ``MetricProvider.query`` once per metric per analysis step,
with a ``deadline`` so that a slow or dead back end can't hold the tick past its interval;
canary-versus-primary comparisons call ``RangeProvider.query_range`` for a series of samples.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Protocol, runtime_checkable


class Outcome(StrEnum):
    """What became of a query."""

    VALUE = "value"
    NO_DATA = "no-data"
    SEVERAL_SERIES = "several-series"
    NOT_A_NUMBER = "not-a-number"
    UNAVAILABLE = "unavailable"
    # The back end answered but refused the query: bad syntax, bad credentials, no such database.
    # Unlike UNAVAILABLE, asking again won't help until the spec or the Secret changes.
    REJECTED = "rejected"


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


@dataclass(frozen=True)
class RangeResult:
    """The samples of one series over a time range, oldest first; samples only when ``outcome`` is ``VALUE``.

    Samples that are NaN or infinite are left out of ``values`` and counted in ``message``; when
    every sample is one, the outcome is NOT_A_NUMBER. ``times`` are the samples' Unix times, when
    the back end gives them (empty otherwise): a picture of the series needs them, a comparison not.
    """

    outcome: Outcome
    values: tuple[float, ...] = ()
    message: str = ""
    times: tuple[float, ...] = ()

    @classmethod
    def of(cls, samples: list[float], *, times: list[float] | None = None) -> RangeResult:
        """The finite samples (taken at ``times``, when given), or NO_DATA / NOT_A_NUMBER when there are none."""
        if not samples:
            return cls(Outcome.NO_DATA, message="the series has no samples in the range")
        kept = [(t, v) for t, v in zip(times or [0.0] * len(samples), samples, strict=True) if math.isfinite(v)]
        skipped = len(samples) - len(kept)
        if not kept:
            return cls(Outcome.NOT_A_NUMBER, message=f"all {len(samples)} samples are NaN or infinite")
        note = f"{skipped} of {len(samples)} samples were NaN or infinite and were left out" if skipped else ""
        return cls(Outcome.VALUE, values=tuple(v for _, v in kept), message=note,
                   times=tuple(t for t, _ in kept) if times is not None else ())


class MetricProvider(Protocol):
    """A metric back end that turns one query into one number."""

    def query(self, query: str, *, deadline: float | None = None) -> QueryResult:
        """Run ``query`` and reduce its answer to a single value.

        ``deadline`` is the most seconds the call may take, retries included; without it the
        provider's own bound applies (its timeout times its attempts).
        """
        ...


@runtime_checkable
class RangeProvider(MetricProvider, Protocol):
    """A back end that can also answer with the samples of one series over a time range."""

    def query_range(self, query: str, *, start: datetime, end: datetime, step: timedelta,
                    deadline: float | None = None) -> RangeResult:
        """Run ``query`` at every ``step`` from ``start`` to ``end`` (both timezone-aware)."""
        ...
