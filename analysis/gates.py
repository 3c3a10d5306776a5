"""Turn one metric's query result into a verdict against its bounds.

The controller's metric check calls ``judge`` once per metric per analysis step and records the
``MetricVerdict`` in the canary's status. Flagger's rule: a value fails when it is below ``min``
or above ``max``; a value equal to a bound passes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from analysis.providers.base import Outcome, QueryResult

Verdict = Literal["pass", "fail", "no-data", "error"]


@dataclass(frozen=True)
class MetricVerdict:
    """What one metric said in one analysis step, and why."""

    name: str
    value: float | None
    min: float | None
    max: float | None
    verdict: Verdict
    message: str


def judge(name: str, result: QueryResult, *, min: float | None, max: float | None) -> MetricVerdict:
    """Check ``result`` against ``min`` and ``max`` (either may be absent)."""
    if result.outcome is Outcome.NO_DATA:
        return MetricVerdict(name, None, min, max, "no-data", _join(f"{name}: no values found", result.message))
    if result.outcome is not Outcome.VALUE or result.value is None:
        return MetricVerdict(name, None, min, max, "error", f"{name}: {result.message or result.outcome}")
    value = result.value
    if min is not None and value < min:
        return MetricVerdict(name, value, min, max, "fail", f"{name} {_number(value)} < {_number(min)}")
    if max is not None and value > max:
        return MetricVerdict(name, value, min, max, "fail", f"{name} {_number(value)} > {_number(max)}")
    return MetricVerdict(name, value, min, max, "pass", f"{name} {_number(value)}{_within(min, max)}")


def _join(lead: str, detail: str) -> str:
    return f"{lead}: {detail}" if detail else lead


def _within(low: float | None, high: float | None) -> str:
    bounds = [f"{word} {_number(b)}" for word, b in (("min", low), ("max", high)) if b is not None]
    return f" within bounds ({', '.join(bounds)})" if bounds else " (no bounds)"


def _number(value: float) -> str:
    """Up to four decimals without trailing zeros; a tiny non-zero value keeps a significant digit."""
    text = f"{value:.4f}".rstrip("0").rstrip(".")
    if text in ("0", "-0"):
        return f"{value:.4g}" if value else "0"
    return text
