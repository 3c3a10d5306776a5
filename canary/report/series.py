"""The data of a run's picture, taken from a Canary's status.timeline: pure, no drawing.

``run_of`` is what ``canary report`` and ``canary demo`` call; ``draw`` renders its answer, and
the tests check that answer, so what is checked is what is drawn.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum

from canary.errors import PermanentError
from canary.models.canary import Band, Canary, Phase, Timeline, TimelinePoint

Sample = tuple[datetime, float]


class Mark(StrEnum):
    """What a marker on the time axis stands for."""

    FAILED_CHECK = "failed check"
    GATE = "webhook gate"
    PROMOTION = "promotion"
    ROLLBACK = "rollback"
    NOTE = "note"


@dataclass(frozen=True)
class Marker:
    """Something that happened at ``time``, with what the timeline says of it."""

    time: datetime
    kind: Mark
    label: str


@dataclass(frozen=True)
class MetricSeries:
    """One metric over the run: its value at each analysis step (None: no data) and its band."""

    name: str
    times: tuple[datetime, ...]
    values: tuple[float | None, ...]
    band: Band | None
    prometheus: tuple[Sample, ...] = ()
    """The metric's query over the run, from Prometheus, when asked for."""
    missing: str = ""
    """Why the Prometheus series is not drawn, when it was asked for and is not."""

    @property
    def outside(self) -> tuple[Sample, ...]:
        """The steps whose value was outside the band."""
        return tuple((t, v) for t, v in zip(self.times, self.values, strict=True)
                     if v is not None and _outside(v, self.band))

    @property
    def no_data(self) -> tuple[datetime, ...]:
        """The steps without a value."""
        return tuple(t for t, v in zip(self.times, self.values, strict=True) if v is None)


@dataclass(frozen=True)
class Run:
    """What the picture of one run shows."""

    canary: str
    revision: str
    phase: Phase
    outcome: str
    started: datetime
    ended: datetime
    weights: tuple[tuple[datetime, int], ...]
    mirrored: tuple[datetime, ...]
    metrics: tuple[MetricSeries, ...]
    markers: tuple[Marker, ...]
    why: str = ""
    """Why the run failed (the rollback's reason), when the timeline says."""

    @property
    def duration(self) -> timedelta:
        """From the start of the run to its last step."""
        return self.ended - self.started

    @property
    def title(self) -> str:
        """Canary, revision, outcome and duration, as the picture's title says them."""
        return (f"{self.canary} · revision {self.revision} · {self.outcome} · "
                f"{_seconds(self.duration)}")

    def with_prometheus(self, series: dict[str, tuple[Sample, ...]], missing: dict[str, str]) -> Run:
        """This run with each metric's Prometheus series, or why it has none."""
        return replace(self, metrics=tuple(
            replace(m, prometheus=series.get(m.name, ()), missing=missing.get(m.name, "")) for m in self.metrics))


def run_of(canary: Canary, *, revision: str | None = None) -> Run:
    """The run recorded in the Canary's status.timeline; ``revision``, when given, must be that run's."""
    where = f"Canary {canary.metadata.namespace}/{canary.metadata.name}"
    timeline = canary.status.timeline
    if timeline is None or not timeline.points:
        raise PermanentError(f"{where}: status.timeline is empty: no run recorded yet (a run is recorded from "
                             "its start by this version of the controller)")
    if revision is not None and revision != timeline.revision:
        raise PermanentError(f"{where}: --revision {revision}: the recorded run (status.timeline) is of revision "
                             f"{timeline.revision}; only the current or last run is kept")
    order = [m.name for m in canary.spec.analysis.metrics or []]
    return _run(f"{canary.metadata.namespace}/{canary.metadata.name}", timeline, order)


def _run(name: str, timeline: Timeline, order: list[str]) -> Run:
    points = timeline.points
    last = points[-1]
    markers = _markers(points)
    rollback = next((m.label for m in reversed(markers) if m.kind is Mark.ROLLBACK), "")
    why = rollback.removeprefix("rollback: ") if rollback else ""
    if not why and last.phase is Phase.FAILED:
        why = last.note or ""
    return Run(
        canary=name, revision=timeline.revision, phase=last.phase, outcome=_outcome(last, rollback=bool(rollback)),
        started=timeline.started, ended=last.time,
        weights=tuple((p.time, p.canary_weight) for p in points),
        mirrored=tuple(p.time for p in points if p.mirror),
        metrics=_metrics(points, timeline.thresholds or {}, order),
        markers=markers, why=why)


def _outcome(last: TimelinePoint, *, rollback: bool) -> str:
    if last.phase is Phase.SUCCEEDED:
        return "promoted"
    if last.phase is Phase.FAILED:
        return "rolled back" if rollback else "failed"
    if last.phase is Phase.INITIALIZED:
        return "stopped"
    return f"running ({last.phase})"


def _markers(points: list[TimelinePoint]) -> tuple[Marker, ...]:
    found = []
    failed = 0
    for point in points:
        if point.failed_checks > failed:
            found.append(Marker(point.time, Mark.FAILED_CHECK, f"failed check {point.failed_checks}"))
        failed = point.failed_checks
        if point.note:
            found.append(Marker(point.time, _kind(point.note), point.note))
    return tuple(found)


def _kind(note: str) -> Mark:
    if note.startswith("webhook ") and note.endswith(" refused"):
        return Mark.GATE
    if note.startswith("promotion"):
        return Mark.PROMOTION
    if note.startswith("rollback"):
        return Mark.ROLLBACK
    return Mark.NOTE


def _metrics(points: list[TimelinePoint], thresholds: dict[str, Band], order: list[str]) -> tuple[MetricSeries, ...]:
    """Each metric's series, in the order of spec.analysis.metrics (then any the spec no longer has)."""
    steps = [p for p in points if p.metrics is not None]
    recorded = {*(n for p in steps for n in p.metrics or {}), *thresholds}
    names = [n for n in order if n in recorded] + sorted(recorded - set(order))
    return tuple(MetricSeries(name=name, times=tuple(p.time for p in steps),
                              values=tuple((p.metrics or {}).get(name) for p in steps), band=thresholds.get(name))
                 for name in names)


def _outside(value: float, band: Band | None) -> bool:
    if band is None:
        return False
    return (band.min is not None and value < band.min) or (band.max is not None and value > band.max)


def _seconds(span: timedelta) -> str:
    seconds = round(span.total_seconds())
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"
