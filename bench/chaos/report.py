"""The chaos bench's results: one row per scenario, printed as a Markdown table (docs/reliability.md
keeps the latest), and the figures (durations) under it."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field

HEADERS = ("scenario", "runs", "expected outcome", "got", "lost alerts", "duplicates", "notes")


@dataclass
class Row:
    """One scenario's outcome. ``lost`` and ``duplicates`` are None where no alerts are counted."""

    scenario: str
    runs: int
    expected: str
    got: str
    passed: bool
    lost: int | None = None
    duplicates: int | None = None
    notes: list[str] = field(default_factory=list)

    def cells(self) -> tuple[str, ...]:
        """The row's cells, in the order of ``HEADERS``."""
        def count(value: int | None) -> str:
            return "-" if value is None else str(value)
        got = self.got if self.passed else f"**{self.got}** (FAILED)"
        return (self.scenario, str(self.runs), self.expected, got, count(self.lost), count(self.duplicates),
                "; ".join(self.notes))


def table(rows: Sequence[Row]) -> str:
    """The rows as a Markdown table."""
    lines = ["| " + " | ".join(HEADERS) + " |", "|" + "---|" * len(HEADERS)]
    lines += ["| " + " | ".join(cell.replace("|", "/") for cell in row.cells()) + " |" for row in rows]
    return "\n".join(lines)


def spread(values: Sequence[float]) -> str:
    """``median m s (min a, max b, n)`` of some durations."""
    if not values:
        return "none"
    return (f"median {statistics.median(values):.1f} s (min {min(values):.1f}, max {max(values):.1f}, "
            f"n={len(values)})")
