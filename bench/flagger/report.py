"""The benchmark's figures and how they are shown: one table per size, docs/benchmarks.md and its plot.

``run.py`` fills a ``Measured`` per controller and size with raw totals (requests, CPU seconds, bytes,
seconds); everything per canary and per tick is worked out here, so the arithmetic is tested apart
from the stack. ``__main__`` prints ``table`` after each size and writes ``document`` and ``plot``
at the end.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

CONTROLLERS = ("flagger", "ours")
LABELS = {"flagger": "Flagger", "ours": "ours"}
MB = 2**20


@dataclass(frozen=True)
class Measured:
    """One controller's raw figures at one size: the idle window, the release of every canary, and memory."""

    size: int
    interval_seconds: float
    idle_seconds: float
    idle_requests: int | None
    """None when the audit log holds no request with the controller's User-Agent at all (it sends another)."""
    idle_cpu_seconds: float
    release_seconds: float
    release_requests: int | None
    release_cpu_seconds: float
    rss_idle_bytes: int
    rss_peak_bytes: int
    reactions: Sequence[float]
    """Seconds from each canary's release to its phase Progressing (canaries that never got there are left out)."""
    release_times: Sequence[float]
    """Seconds from each canary's release to Succeeded or Failed."""
    failed: int = 0
    unfinished: int = 0
    lag_p50: float | None = None
    lag_p99: float | None = None
    """Tick lag of the idle window (ours only)."""
    release_lag_p50: float | None = None
    release_lag_p99: float | None = None
    idle_kinds: Mapping[str, int] = field(default_factory=dict)
    """Requests of the idle window by verb and resource (``get deployments``), most first."""
    release_kinds: Mapping[str, int] = field(default_factory=dict)

    def per_canary_per_tick(self, total: float | None, seconds: float) -> float:
        """``total`` spread over the canaries and the ticks of a window of ``seconds`` (NaN without a total)."""
        ticks = seconds / self.interval_seconds
        return total / self.size / ticks if total is not None and self.size and ticks > 0 else float("nan")

    @property
    def idle_requests_per_tick(self) -> float:
        return self.per_canary_per_tick(self.idle_requests, self.idle_seconds)

    @property
    def release_requests_per_canary(self) -> float:
        return self.release_requests / self.size if self.release_requests is not None and self.size else float("nan")

    @property
    def idle_cpu_ms_per_tick(self) -> float:
        return self.per_canary_per_tick(self.idle_cpu_seconds * 1000, self.idle_seconds)

    @property
    def release_cpu_ms_per_tick(self) -> float:
        return self.per_canary_per_tick(self.release_cpu_seconds * 1000, self.release_seconds)

    @property
    def release_cpu_ms_per_canary(self) -> float:
        """The whole release's CPU per canary: the same steps for both controllers, however long each
        takes (per tick, a release that ends sooner spreads the same work over fewer ticks)."""
        return self.release_cpu_seconds * 1000 / self.size if self.size else float("nan")


@dataclass(frozen=True)
class SizeResult:
    """Both controllers at one size, and the run's own record."""

    size: int
    nodes: int
    measured: Mapping[str, Measured]
    minutes: float
    other_clients: Mapping[str, int] = field(default_factory=dict)
    """Idle-window requests of the stack's other clients (simulator, kwok, ...), by User-Agent's first word."""
    commit: str = ""
    """The commit measured, with ``(with uncommitted changes)`` when the tree had some."""
    shards: Mapping[str, Measured] = field(default_factory=dict)
    """Ours again on the same canaries, split across these shards (``--shards``); empty when not run."""


def save(result: SizeResult, path: Path) -> None:
    """Keep ``result`` as JSON, so that a document can be written from sizes measured in several runs."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(dataclasses.asdict(result), indent=1))


def load(path: Path) -> SizeResult:
    """A result ``save`` kept."""
    raw = json.loads(path.read_text())
    measured = {name: Measured(**figures) for name, figures in raw.pop("measured").items()}
    shards = {name: Measured(**figures) for name, figures in raw.pop("shards", {}).items()}
    return SizeResult(measured=measured, shards=shards, **raw)


def _number(value: float | None, digits: int = 1) -> str:
    if value is None or math.isnan(value):
        return "n/a"
    return f"{value:.{digits}f}" if abs(value) < 1000 else f"{value:,.0f}"


def _spread(values: Sequence[float]) -> str:
    """``p50 / max`` in seconds, or n/a."""
    if not values:
        return "n/a"
    return f"{statistics.median(values):.1f} / {max(values):.1f}"


def _ratio(ours: float | None, flagger: float | None) -> str:
    if ours is None or flagger is None or math.isnan(ours) or math.isnan(flagger) or flagger == 0:
        return ""
    return f"{ours / flagger:.2f}x"


def _lag(p50: float | None, p99: float | None) -> str:
    if p50 is None or p99 is None:
        return "n/a"
    return f"{p50 * 1000:.0f} / {p99 * 1000:.0f}"


def rows(result: SizeResult) -> list[tuple[str, str, str, str]]:
    """(measure, Flagger, ours, ours/Flagger) for one size."""
    flagger, ours = result.measured["flagger"], result.measured["ours"]
    numeric: list[tuple[str, Callable[[Measured], float], int]] = [
        ("API requests per canary per tick, idle", lambda m: m.idle_requests_per_tick, 2),
        ("API requests per canary, one release", lambda m: m.release_requests_per_canary, 1),
        ("CPU ms per canary per tick, idle", lambda m: m.idle_cpu_ms_per_tick, 2),
        ("CPU ms per canary per tick, release", lambda m: m.release_cpu_ms_per_tick, 2),
        ("CPU ms per canary, one release", lambda m: m.release_cpu_ms_per_canary, 1),
        ("RSS MB, idle", lambda m: m.rss_idle_bytes / MB, 0),
        ("RSS MB, peak", lambda m: m.rss_peak_bytes / MB, 0),
    ]
    found = [(name, _number(get(flagger), digits), _number(get(ours), digits), _ratio(get(ours), get(flagger)))
             for name, get, digits in numeric]
    found += [
        ("tick lag p50 / p99 ms, idle (ours' histogram)", "n/a", _lag(ours.lag_p50, ours.lag_p99), ""),
        ("tick lag p50 / p99 ms, release", "n/a", _lag(ours.release_lag_p50, ours.release_lag_p99), ""),
        ("reaction s, change to Progressing, p50 / max", _spread(flagger.reactions), _spread(ours.reactions), ""),
        ("release wall time s, p50 / max", _spread(flagger.release_times), _spread(ours.release_times), ""),
        ("releases failed / unfinished", f"{flagger.failed} / {flagger.unfinished}",
         f"{ours.failed} / {ours.unfinished}", ""),
    ]
    return found


def table(result: SizeResult) -> str:
    """The Markdown table of one size, with a heading line."""
    first = result.measured["ours"]
    commit = f", commit {result.commit}" if result.commit else ""
    lines = [f"### N = {result.size} ({result.nodes} kwok nodes, interval {first.interval_seconds:g} s, "
             f"idle window {first.idle_seconds:.0f} s, {result.minutes:.1f} min{commit})", "",
             "| measure | Flagger | ours | ours / Flagger |", "|---|---:|---:|---:|"]
    lines += [f"| {name} | {flagger} | {ours} | {ratio} |" for name, flagger, ours, ratio in rows(result)]
    return "\n".join(lines)


def shard_table(result: SizeResult) -> str:
    """The sharded run of one size: each shard's share and figures beside the single process's, or ""."""
    if not result.shards:
        return ""
    single = result.measured["ours"]
    columns = {"one process": single, **{f"shard {name}": measured for name, measured in result.shards.items()}}
    numeric: list[tuple[str, Callable[[Measured], str]]] = [
        ("canaries", lambda m: str(m.size)),
        ("API requests per canary per tick, idle", lambda m: _number(m.idle_requests_per_tick, 2)),
        ("API requests per canary, one release", lambda m: _number(m.release_requests_per_canary)),
        ("CPU ms per canary per tick, idle", lambda m: _number(m.idle_cpu_ms_per_tick, 2)),
        ("CPU ms per canary per tick, release", lambda m: _number(m.release_cpu_ms_per_tick, 2)),
        ("CPU ms per canary, one release", lambda m: _number(m.release_cpu_ms_per_canary)),
        ("RSS MB, idle / peak", lambda m: f"{m.rss_idle_bytes / MB:.0f} / {m.rss_peak_bytes / MB:.0f}"),
        ("tick lag p50 / p99 ms, idle", lambda m: _lag(m.lag_p50, m.lag_p99)),
        ("tick lag p50 / p99 ms, release", lambda m: _lag(m.release_lag_p50, m.release_lag_p99)),
        ("reaction s, p50 / max", lambda m: _spread(m.reactions)),
        ("release wall time s, p50 / max", lambda m: _spread(m.release_times)),
        ("releases failed / unfinished", lambda m: f"{m.failed} / {m.unfinished}"),
    ]
    lines = [f"#### N = {result.size} across {len(result.shards)} shards (ours only, the same canaries, "
             "released again)", "", "| measure | " + " | ".join(columns) + " |",
             "|---|" + "---:|" * len(columns)]
    lines += [f"| {name} | " + " | ".join(get(m) for m in columns.values()) + " |" for name, get in numeric]
    return "\n".join(lines)


def growth(results: Sequence[SizeResult]) -> list[str]:
    """Idle RSS bytes per added canary between each pair of successive sizes, per controller."""
    ordered = sorted(results, key=lambda r: r.size)
    lines = []
    for low, high in itertools.pairwise(ordered):
        added = high.size - low.size
        spread = ", ".join(
            f"{LABELS[c]} {(high.measured[c].rss_idle_bytes - low.measured[c].rss_idle_bytes) / added / 1024:.1f} KiB"
            for c in CONTROLLERS)
        lines.append(f"- N = {low.size} to {high.size}: {spread} per canary")
    return lines


def kinds(result: SizeResult, *, top: int = 8) -> str:
    """Where each controller's requests went, by verb and resource (the ``top`` most): a line per controller
    and window."""
    lines = []
    for controller in CONTROLLERS:
        measured = result.measured[controller]
        for window, counted in (("idle", measured.idle_kinds), ("release", measured.release_kinds)):
            shown = list(counted.items())[:top]
            rest = sum(count for _, count in list(counted.items())[top:])
            spread = ", ".join([f"{kind} {count}" for kind, count in shown] + ([f"others {rest}"] if rest else []))
            spread = spread or "none"
            lines.append(f"- {LABELS[controller]}, {window}: {spread}")
    if result.other_clients:
        spread = ", ".join(f"{agent} {count}" for agent, count in result.other_clients.items())
        lines.append(f"- other clients, idle window: {spread}")
    return "\n".join(lines)


@dataclass(frozen=True)
class Record:
    """What docs/benchmarks.md says about the run besides the tables."""

    date: str
    commit: str
    machine: str
    versions: str
    command: str
    plot: str


def document(results: Sequence[SizeResult], record: Record, notes: Sequence[str] = ()) -> str:
    """docs/benchmarks.md: the run's record, a table per size, the requests by verb, the plot and notes."""
    parts = [
        "# Benchmarks: our controller and Flagger side by side", "",
        f"Measured {record.date} at commit {record.commit}. The engine is being optimised; these figures are "
        "re-run with `make bench-flagger` after each step.", "",
        f"- Machine: {record.machine}",
        f"- Versions: {record.versions}", "",
        "Both controllers run at once on one local stack (kube-apiserver with an audit log), each limited to "
        "its own namespace with the same N blue/green canaries (kubernetes router, interval 10 s, 3 iterations "
        "of one MetricTemplate against the stack's Prometheus). API requests are counted from the audit log "
        "by User-Agent, CPU from /proc/<pid>/stat, memory from /proc/<pid>/status (VmRSS, VmHWM). A tick is "
        "one interval of one canary; the release changes every target's image at once.", "",
        "```sh", record.command, "```", "",
    ]
    for result in results:
        parts += [table(result), "", "Requests by verb and resource, in each whole window:", "", kinds(result), ""]
        if result.shards:
            parts += [shard_table(result), ""]
    if len(results) > 1:
        parts += ["Memory per canary (idle RSS added per canary, from one size to the next):", "",
                  *growth(results), ""]
    parts += [f"![CPU and memory against N]({record.plot})", ""]
    if notes:
        parts += ["## Notes", "", *[f"- {note}" for note in notes], ""]
    return "\n".join(parts)


def plot(results: Sequence[SizeResult], path: Path) -> None:
    """CPU ms per canary per tick (idle and release) and RSS (idle) against N for both, as a small PNG."""
    import matplotlib  # noqa: PLC0415 - only the report draws, and only at the end

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    sizes = [r.size for r in results]
    figure, (cpu, memory) = plt.subplots(1, 2, figsize=(8, 3.2), dpi=80)
    for controller, colour in zip(CONTROLLERS, ("tab:blue", "tab:orange"), strict=True):
        measured = [r.measured[controller] for r in results]
        cpu.plot(sizes, [m.idle_cpu_ms_per_tick for m in measured], marker="o", color=colour,
                 label=f"{LABELS[controller]}, idle")
        cpu.plot(sizes, [m.release_cpu_ms_per_tick for m in measured], marker="s", linestyle="--", color=colour,
                 label=f"{LABELS[controller]}, release")
        memory.plot(sizes, [m.rss_idle_bytes / MB for m in measured], marker="o", color=colour,
                    label=f"{LABELS[controller]}, idle")
        memory.plot(sizes, [m.rss_peak_bytes / MB for m in measured], marker="s", linestyle="--", color=colour,
                    label=f"{LABELS[controller]}, peak")
    cpu.set(xscale="log", xlabel="canaries (N)", ylabel="CPU ms per canary per tick", title="CPU")
    memory.set(xscale="log", xlabel="canaries (N)", ylabel="RSS MB", title="Memory")
    for axes in (cpu, memory):
        axes.set_ylim(bottom=0)
        axes.grid(alpha=0.3)
        axes.legend(fontsize=7)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    plt.close(figure)
