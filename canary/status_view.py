"""How ``canary status`` shows canaries: a table with a progress bar, and one canary's analysis."""

from __future__ import annotations

import datetime as dt

from pydantic import ValidationError
from rich.console import Group
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from canary.kube import Obj
from canary.models.canary import Canary, Phase, Strategy

_COLOURS = {Phase.SUCCEEDED: "green", Phase.FAILED: "red", Phase.PROGRESSING: "yellow",
            Phase.WAITING: "magenta", Phase.WAITING_PROMOTION: "magenta", Phase.PROMOTING: "cyan",
            Phase.FINALISING: "cyan"}


def progress(canary: Canary) -> tuple[int, int]:
    """(done, total) of the current run, in weight percent or iterations."""
    status, analysis = canary.status, canary.spec.analysis
    if status.phase in (Phase.SUCCEEDED, Phase.PROMOTING, Phase.FINALISING):
        return 1, 1
    if analysis.strategy is Strategy.CANARY:
        return status.canary_weight, analysis.effective_max_weight
    return min(status.iterations, analysis.iterations or 1), analysis.iterations or 1


def message(obj: Obj) -> str:
    """Why the canary is where it is: its Ready condition when False, else its Promoted condition."""
    conditions = (obj.get("status") or {}).get("conditions") or []
    ready = next((c for c in conditions if c.get("type") == "Ready" and c.get("status") == "False"), None)
    if ready is not None:
        return str(ready.get("message", ""))
    promoted = next((c for c in conditions if c.get("type") == "Promoted"), None)
    return str((promoted or {}).get("message", ""))


def age(elapsed: dt.timedelta) -> str:
    """A kubectl-style age: 45s, 12m, 3h, 2d."""
    seconds = max(0, int(elapsed.total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size * (2 if unit != "m" else 1):
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def table(canaries: list[Obj], *, now: dt.datetime | None = None) -> Table:
    """Every canary on one line; AGE is the time since the last transition."""
    now = now or dt.datetime.now(dt.UTC)
    view = Table(show_lines=False, expand=False, box=None, pad_edge=False)
    for column in ("NAMESPACE", "NAME", "STATUS", "WEIGHT", "PROGRESS", "FAILED", "AGE"):
        view.add_column(column, no_wrap=True)
    view.add_column("MESSAGE", overflow="fold", min_width=20)
    for obj in canaries:
        meta = obj["metadata"]
        try:
            canary = Canary.from_object(obj)
        except ValidationError:
            view.add_row(meta["namespace"], meta["name"], Text("Invalid", style="red"), "", "", "", "",
                         message(obj))
            continue
        status = canary.status
        phase = status.phase or Phase.INITIALIZING
        done, total = progress(canary)
        bar = ProgressBar(total=total, completed=done, width=12,
                          complete_style="red" if phase is Phase.FAILED else "green")
        when = age(now - status.last_transition_time) if status.last_transition_time else ""
        view.add_row(meta["namespace"], meta["name"], Text(phase.value, style=_COLOURS.get(phase, "")),
                     f"{status.canary_weight}", bar, f"{status.failed_checks}/{canary.spec.analysis.threshold}", when,
                     message(obj))
    return view


def detail(obj: Obj) -> Group:
    """One canary: the summary line and its recent analysis results."""
    canary = Canary.from_object(obj)
    results = Table(title="analysis (most recent last)")
    for column in ("TIME", "METRIC", "VALUE", "RANGE", "VERDICT", "MESSAGE"):
        results.add_column(column, overflow="fold")
    for result in canary.status.analysis or []:
        bounds = f"[{'' if result.min is None else result.min}, {'' if result.max is None else result.max}]"
        value = "" if result.value is None else f"{result.value:g}"
        results.add_row(result.time.strftime("%H:%M:%S"), result.name, value, bounds,
                        Text(result.verdict, style="green" if result.verdict == "pass" else "red"),
                        result.message or "")
    revision = f"revision {canary.status.last_applied_spec or '-'}, promoted {canary.status.last_promoted_spec or '-'}"
    return Group(table([obj]), Text(revision), results)
