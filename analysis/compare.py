"""Canary versus primary: is the canary's metric different from the primary's, and in which way?

The same query runs over both over the analysis window; the two samples are compared with a
two-sided Mann-Whitney U test (scipy), as Kayenta's judge does. A metric is High or Low only when
the difference is both significant (p below 1 - confidence) and larger than the allowed effect
(relative change of the median); otherwise it passes. ``direction`` says which way is bad:
``increase`` (latency, errors) fails only High, ``decrease`` (throughput) only Low, ``either`` both.
The run's score is 100 x passes / judged metrics, and the score thresholds give the verdict.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum


class Direction(StrEnum):
    """Which change of the canary's metric counts against it."""

    INCREASE = "increase"
    DECREASE = "decrease"
    EITHER = "either"


class Classification(StrEnum):
    """Kayenta's classes for one metric."""

    PASS = "Pass"  # noqa: S105 - a class name, not a password
    HIGH = "High"
    LOW = "Low"
    NO_DATA = "NoData"


@dataclass(frozen=True)
class Comparison:
    """The judgement of one metric, with the figures behind it."""

    classification: Classification
    p_value: float | None
    change: float | None
    message: str

    @property
    def failed(self) -> bool:
        """High or Low (the direction has already been applied)."""
        return self.classification in (Classification.HIGH, Classification.LOW)


MIN_SAMPLES = 3


def compare(canary: Sequence[float], primary: Sequence[float], *, confidence: float = 0.95,
            direction: Direction = Direction.EITHER, allowed_change: float = 0.1) -> Comparison:
    """Classify the canary's sample against the primary's."""
    canary = [v for v in canary if not math.isnan(v)]
    primary = [v for v in primary if not math.isnan(v)]
    if len(canary) < MIN_SAMPLES or len(primary) < MIN_SAMPLES:
        return Comparison(Classification.NO_DATA, None, None,
                          f"too few samples (canary {len(canary)}, primary {len(primary)}; need {MIN_SAMPLES})")
    # scipy costs ~100 MB and a second of start-up: only a controller that runs comparisons pays for it.
    from scipy.stats import mannwhitneyu  # noqa: PLC0415

    p_value = float(mannwhitneyu(canary, primary, alternative="two-sided", method="auto").pvalue)
    base, middle = statistics.median(primary), statistics.median(canary)
    change = _relative_change(middle, base)
    significant = p_value < 1 - confidence
    figures = f"median {middle:g} vs {base:g} ({change:+.1%}, allowed ±{allowed_change:.0%}), p={p_value:.3g}"
    if significant and change > allowed_change and direction is not Direction.DECREASE:
        return Comparison(Classification.HIGH, p_value, change, f"canary higher than primary: {figures}")
    if significant and change < -allowed_change and direction is not Direction.INCREASE:
        return Comparison(Classification.LOW, p_value, change, f"canary lower than primary: {figures}")
    return Comparison(Classification.PASS, p_value, change, f"no meaningful difference: {figures}")


def _relative_change(value: float, base: float) -> float:
    if base:
        return (value - base) / abs(base)
    return 0.0 if value == 0 else math.copysign(math.inf, value)


def score(comparisons: Sequence[Comparison]) -> float | None:
    """100 x passes / judged metrics (NoData is not judged); None when nothing was judged."""
    judged = [c for c in comparisons if c.classification is not Classification.NO_DATA]
    if not judged:
        return None
    return 100.0 * sum(1 for c in judged if not c.failed) / len(judged)


class Verdict(StrEnum):
    """What a score means for the run."""

    PASS = "pass"  # noqa: S105 - a verdict, not a password
    HOLD = "hold"
    FAIL = "fail"


def verdict(value: float, *, pass_score: float, marginal_score: float) -> Verdict:
    """Pass at or above ``pass_score``, fail below ``marginal_score``, hold in between."""
    if value >= pass_score:
        return Verdict.PASS
    if value >= marginal_score:
        return Verdict.HOLD
    return Verdict.FAIL
