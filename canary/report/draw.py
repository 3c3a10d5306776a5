"""The picture of a run (``series.Run``) as a PNG or SVG file, drawn with matplotlib's Agg canvas.

Called by the CLI (``canary report``) and ``canary demo``. matplotlib is imported here, inside
``render``, so that the controller and the rest of the CLI never load it. The figure has a
fixed size (``pixel_size``): a panel of the canary weight, then a panel per metric, all on one
time axis in seconds since the run started.
"""

from __future__ import annotations

import textwrap
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from canary.errors import PermanentError
from canary.report.series import Mark, MetricSeries, Run

if TYPE_CHECKING:
    from matplotlib.axes import Axes

DPI = 100
WIDTH = 10.0
HEADER = 0.9
PANEL = 2.1
FOOTER = 0.5
FORMATS = (".png", ".svg")
_MARKS = {  # colour, line style, legend text
    Mark.PROMOTION: ("#2e7d32", "-", "promotion"),
    Mark.ROLLBACK: ("#c62828", "-", "rollback"),
    Mark.GATE: ("#ef6c00", "--", "webhook gate refused"),
    Mark.NOTE: ("#757575", ":", "note"),
}


def check_path(path: Path) -> None:
    """Refuse a file name whose picture format is not PNG or SVG, before any work is done."""
    if path.suffix.lower() not in FORMATS:
        raise PermanentError(f"-o {path}: the picture is written as PNG or SVG; name a .png or .svg file")


def pixel_size(run: Run) -> tuple[int, int]:
    """The picture's width and height in pixels (a PNG's size; an SVG's in points at 100 per inch)."""
    return round(WIDTH * DPI), round(_height(run) * DPI)


def _height(run: Run) -> float:
    return HEADER + PANEL * (1 + len(run.metrics)) + FOOTER


def render(run: Run, path: Path) -> Path:
    """Draw ``run`` into ``path`` (.png or .svg); returns the path."""
    check_path(path)
    # Only a picture needs matplotlib: the CLI and the controller start without it.
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: PLC0415
    from matplotlib.figure import Figure  # noqa: PLC0415

    figure = Figure(figsize=(WIDTH, _height(run)), dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(1 + len(run.metrics), 1, sharex=True, squeeze=False)[:, 0]
    subtitle = f"started {run.started:%Y-%m-%d %H:%M:%S} UTC"
    if run.why:
        subtitle += "\n" + textwrap.shorten(f"why: {run.why}", width=150, placeholder="…")
    figure.suptitle(f"{run.title}\n{subtitle}", fontsize=10, x=0.01, ha="left")
    _weights(axes[0], run)
    for ax, series in zip(axes[1:], run.metrics, strict=True):
        _metric(ax, series, run)
    for ax in axes:
        _markers(ax, run)
        _legend(ax)
        ax.grid(True, alpha=0.3)
        # A margin after the last step, so that an end at the last moment (a rollback to 0) shows.
        end = max(1.0, _at(run, run.ended))
        ax.set_xlim(-end * 0.01, end * 1.04)
    axes[-1].set_xlabel("seconds since the run started")
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=DPI, format=path.suffix.lower().lstrip("."))
    return path


def _at(run: Run, moment: datetime) -> float:
    return (moment - run.started).total_seconds()


def _weights(ax: Axes, run: Run) -> None:
    end = max(1.0, _at(run, run.ended))
    times = [_at(run, t) for t, _ in run.weights] + [end * 1.04]
    weights = [w for _, w in run.weights] + [run.weights[-1][1]]
    ax.step(times, weights, where="post", color="#1565c0", linewidth=2, label="canary weight")
    for moment in run.mirrored:
        later = [t for t, _ in run.weights if t > moment]
        ax.axvspan(_at(run, moment), _at(run, later[0]) if later else _at(run, run.ended), color="#7e57c2",
                   alpha=0.15, label="requests mirrored")
    failed = [m.time for m in run.markers if m.kind is Mark.FAILED_CHECK]
    if failed:
        ax.plot([_at(run, t) for t in failed], [_weight_at(run, t) for t in failed], "x", color="#c62828",
                markersize=9, markeredgewidth=2, label="failed check")
    ax.set_ylim(-5, max(w for _, w in run.weights) + 15)
    ax.set_ylabel("canary weight (%)")


def _weight_at(run: Run, moment: datetime) -> int:
    return next(w for t, w in reversed(run.weights) if t <= moment)


def _metric(ax: Axes, series: MetricSeries, run: Run) -> None:
    values = [v for v in series.values if v is not None] + [v for _, v in series.prometheus]
    band = series.band
    bounds = [b for b in ((band.min, band.max) if band else ()) if b is not None]
    low, high = min(values + bounds, default=0.0), max(values + bounds, default=1.0)
    pad = (high - low) * 0.15 or abs(high) * 0.1 or 1.0
    low, high = low - pad, high + pad
    if band is not None and bounds:
        ax.axhspan(band.min if band.min is not None else low, band.max if band.max is not None else high,
                   color="#66bb6a", alpha=0.18, label="threshold range")
    if series.prometheus:
        ax.plot([_at(run, t) for t, _ in series.prometheus], [v for _, v in series.prometheus], color="#9e9e9e",
                linewidth=1, label="Prometheus")
    judged = [(_at(run, t), v) for t, v in zip(series.times, series.values, strict=True) if v is not None]
    if judged:
        ax.plot([t for t, _ in judged], [v for _, v in judged], "o-", color="#1565c0", markersize=4,
                label="analysis")
    if series.outside:
        ax.plot([_at(run, t) for t, _ in series.outside], [v for _, v in series.outside], "o", color="#c62828",
                markersize=7, label="outside the range")
    if series.no_data:
        ax.plot([_at(run, t) for t in series.no_data], [low + pad / 2] * len(series.no_data), "x", color="#616161",
                markersize=7, label="no data")
    if series.missing:
        ax.text(0.99, 0.04, textwrap.shorten(f"no Prometheus series: {series.missing}", width=110, placeholder="…"),
                transform=ax.transAxes, ha="right", va="bottom", fontsize=7, color="#616161")
    ax.set_ylim(low, high)
    ax.set_ylabel(series.name, fontsize=9)


def _markers(ax: Axes, run: Run) -> None:
    """A vertical line at each event; failed checks are the crosses on the weight and the red values."""
    for marker in run.markers:
        if marker.kind is Mark.FAILED_CHECK:
            continue
        colour, style, label = _MARKS[marker.kind]
        ax.axvline(_at(run, marker.time), color=colour, linestyle=style, linewidth=1.2, alpha=0.8, label=label)


def _legend(ax: Axes) -> None:
    """One entry per label (a marker drawn many times is one entry)."""
    handles, labels = ax.get_legend_handles_labels()
    unique = dict(zip(labels, handles, strict=True))
    ax.legend(unique.values(), unique.keys(), loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7,
              frameon=False)
