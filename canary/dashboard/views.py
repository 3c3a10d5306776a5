"""What the dashboard's pages show, as JSON-ready dicts and chart series: pure functions of a Canary
object, its Events and where Git put it.

``app`` calls them for the API answers, ``feed`` for each server-sent event, ``charts`` draws the
series picked here. Canaries are read through their model (one parse, one set of defaults); one the
model refuses is still listed, as Invalid with the reason.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from canary import status_view
from canary.kube import Obj
from canary.models.canary import Canary, Phase

Json = dict[str, Any]
EVENTS_SHOWN = 30


@dataclass(frozen=True)
class WeightStep:
    """The canary's traffic weight from ``time`` on (the primary has the rest)."""

    time: dt.datetime
    canary_weight: int
    phase: str
    note: str | None = None


@dataclass(frozen=True)
class MetricPoint:
    """One analysis step's value of a metric; None when the query had no data."""

    time: dt.datetime
    value: float | None
    passed: bool


@dataclass(frozen=True)
class MetricSeries:
    """A metric's values over the run and the range it must stay in (either bound may be open)."""

    name: str
    points: tuple[MetricPoint, ...]
    min: float | None
    max: float | None


def key(obj: Obj) -> str:
    """``namespace/name``: how the pages and the event stream name a canary."""
    meta = obj["metadata"]
    return f"{meta.get('namespace') or ''}/{meta['name']}"


def parse(obj: Obj) -> Canary | str:
    """The Canary, or why its model refuses it (the first error, with the field)."""
    try:
        return Canary.from_object(obj)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        return f"{where}: {first['msg']}" if where else str(first["msg"])


def _time(value: dt.datetime | None) -> str | None:
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z") if value is not None else None


def row(obj: Obj) -> Json:
    """One line of the list: phase, weight (and the weight that ends the run), failed checks, and since when
    the canary is in its phase (the page counts the age from it)."""
    meta = obj["metadata"]
    base: Json = {"key": key(obj), "namespace": meta.get("namespace") or "", "name": meta["name"],
                  "resourceVersion": meta.get("resourceVersion") or ""}
    canary = parse(obj)
    if isinstance(canary, str):
        return base | {"phase": "Invalid", "message": canary, "weight": 0, "maxWeight": 100, "progress": [0, 1],
                       "failedChecks": 0, "threshold": 0, "since": meta.get("creationTimestamp"),
                       "suspended": False, "strategy": ""}
    status, analysis = canary.status, canary.spec.analysis
    done, total = status_view.progress(canary)
    since = status.last_transition_time or canary.metadata.creation_timestamp
    return base | {
        "phase": (status.phase or Phase.INITIALIZING).value, "weight": status.canary_weight,
        "maxWeight": analysis.effective_max_weight, "progress": [done, total],
        "failedChecks": status.failed_checks, "threshold": analysis.threshold, "since": _time(since),
        "message": status_view.message(obj), "suspended": canary.spec.suspend, "strategy": analysis.strategy.value,
    }


def weight_steps(canary: Canary) -> list[WeightStep]:
    """The canary weight at each step of the current (or last) run, from status.timeline."""
    timeline = canary.status.timeline
    if timeline is None:
        return []
    return [WeightStep(time=p.time, canary_weight=p.canary_weight, phase=p.phase.value, note=p.note)
            for p in timeline.points]


def run_start(canary: Canary) -> dt.datetime | None:
    """When the current (or last) run started, from status.timeline: the charts count time from it."""
    return canary.status.timeline.started if canary.status.timeline is not None else None


def _within(value: float | None, low: float | None, high: float | None) -> bool:
    return value is not None and (low is None or value >= low) and (high is None or value <= high)


def metric_series(canary: Canary) -> list[MetricSeries]:
    """Each metric of the spec with its values over the run, oldest first, and its threshold range: from
    status.timeline (every step of the run), else from status.analysis (the last few steps)."""
    timeline = canary.status.timeline
    history = sorted(canary.status.analysis or [], key=lambda r: r.time)
    found = []
    for metric in canary.spec.analysis.metrics or []:
        results = [r for r in history if r.name == metric.name]
        low = metric.threshold_range.min if metric.threshold_range else None
        high = metric.threshold_range.max if metric.threshold_range else metric.threshold
        if results:  # the engine's own bounds win: a template's defaults may have filled them
            low, high = results[-1].min, results[-1].max
        steps = [p for p in timeline.points if p.metrics and metric.name in p.metrics] if timeline else []
        if timeline is not None and steps:
            band = (timeline.thresholds or {}).get(metric.name)
            if band is not None:
                low, high = band.min, band.max
            points = tuple(MetricPoint(time=p.time, value=(p.metrics or {})[metric.name],
                                       passed=_within((p.metrics or {})[metric.name], low, high)) for p in steps)
        else:
            points = tuple(MetricPoint(time=r.time, value=r.value, passed=r.verdict == "pass") for r in results)
        found.append(MetricSeries(name=metric.name, min=low, max=high, points=points))
    return found


def webhook_results(canary: Canary, events: Sequence[Obj]) -> list[Json]:
    """Each webhook of the spec with the newest Event that names it (a refusal or a wait), else none seen."""
    newest_first = sorted(events, key=event_time, reverse=True)
    found = []
    for hook in canary.spec.analysis.webhooks or []:
        said = next((e for e in newest_first if hook.name in str(e.get("message", ""))), None)
        found.append({"name": hook.name, "type": hook.type.value, "url": str(hook.url),
                      "result": None if said is None else str(said.get("message", "")),
                      "warning": said is not None and said.get("type") == "Warning",
                      "time": None if said is None else event_time(said)})
    return found


def event_time(event: Obj) -> str:
    """When an Event last happened, as the API wrote it (ISO, sortable)."""
    return str(event.get("lastTimestamp") or event.get("eventTime") or event.get("firstTimestamp")
               or event["metadata"].get("creationTimestamp") or "")


def event_row(event: Obj) -> Json:
    """One Event as the page lists it; ``uid`` names it across its updates (a repeated Event counts up)."""
    meta = event["metadata"]
    return {"uid": meta.get("uid") or f"{meta.get('namespace') or ''}/{meta.get('name') or ''}",
            "time": event_time(event), "type": event.get("type") or "Normal", "reason": event.get("reason") or "",
            "message": event.get("message") or "", "count": event.get("count") or 1}


def event_rows(events: Sequence[Obj]) -> list[Json]:
    """The newest Events first, as the page lists them."""
    return [event_row(e) for e in sorted(events, key=event_time, reverse=True)[:EVENTS_SHOWN]]


def detail(obj: Obj, *, events: Sequence[Obj], git: Json | None) -> Json:
    """One canary's page, apart from the charts: its row, revision, conditions, latest analysis step,
    webhooks, Events, the Git commit that brought it and the last manual request's outcome."""
    found = row(obj)
    canary = parse(obj)
    found |= {"events": event_rows(events), "git": git}
    if isinstance(canary, str):
        return found | {"metrics": [], "webhooks": [], "conditions": [], "revision": None}
    status = canary.status
    latest = max((r.time for r in status.analysis or []), default=None)
    return found | {
        "revision": status.last_applied_spec, "promotedRevision": status.last_promoted_spec,
        "run": None if status.timeline is None else {"revision": status.timeline.revision,
                                                     "started": _time(status.timeline.started)},
        "target": f"{canary.spec.target_ref.kind} {canary.spec.target_ref.name}",
        "conditions": [{"type": c.type, "status": c.status.value, "reason": c.reason, "message": c.message}
                       for c in status.conditions or []],
        "metrics": [{"name": r.name, "value": r.value, "min": r.min, "max": r.max, "verdict": r.verdict,
                     "message": r.message} for r in status.analysis or [] if r.time == latest],
        "charts": [m.name for m in canary.spec.analysis.metrics or []],
        "webhooks": webhook_results(canary, events),
        "handledRequest": status.handled_request, "requestRefused": status.request_refused,
    }
