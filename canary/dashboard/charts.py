"""The canary page's charts, drawn by matplotlib on the server as SVG: the weights step by step, and
each metric's values against its threshold range.

``app`` calls ``weights_svg`` and ``metric_svg`` (in a worker thread) and the page inlines the SVG, so
it needs no script library and no network. matplotlib is imported here only, when a chart is first
drawn, so that neither the CLI nor the controller pays for it at start. Artists carry ids (``gid``)
that say what they are (``<chart>-points``, ``<chart>-band``), for people reading the page and for tests.
"""

from __future__ import annotations

import datetime as dt
import io
import math
import re
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING

from canary.dashboard.views import MetricSeries, WeightStep

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

_LOCK = threading.Lock()  # matplotlib's text layout and font caches are not thread-safe
_SIZE = (7.2, 2.6)
PASS_COLOUR, FAIL_COLOUR, BAND_COLOUR = "#2e7d32", "#c62828", "#a5d6a7"
CANARY_COLOUR, PRIMARY_COLOUR, PROMETHEUS_COLOUR = "#ef6c00", "#1565c0", "#6a1b9a"


def chart_id(name: str) -> str:
    """An SVG id made from a metric's name (letters, digits and '-' only)."""
    return re.sub(r"[^A-Za-z0-9-]+", "-", name).strip("-") or "metric"


def _figure() -> tuple[Figure, Axes]:
    from matplotlib.figure import Figure  # noqa: PLC0415 - heavy: imported when a chart is drawn

    figure = Figure(figsize=_SIZE, layout="constrained")
    axes = figure.add_subplot()
    axes.grid(True, alpha=0.3)
    for side in ("top", "right"):
        axes.spines[side].set_visible(False)
    return figure, axes


def _svg(figure: Figure, salt: str) -> bytes:
    """The figure as SVG, with its internal ids salted so that several charts can be inlined in one page."""
    import matplotlib  # noqa: PLC0415 - heavy: imported when a chart is drawn

    out = io.BytesIO()
    with matplotlib.rc_context({"svg.hashsalt": salt, "svg.fonttype": "none"}):
        figure.savefig(out, format="svg", metadata={"Date": None})
    return out.getvalue()


def _elapsed(times: Sequence[dt.datetime], start: dt.datetime) -> tuple[list[float], str]:
    """Times as seconds (minutes past ten) since ``start``, and the axis label that says which."""
    seconds = [(t - start).total_seconds() for t in times]
    if max(seconds, default=0) > 600:
        return [s / 60 for s in seconds], "minutes since the run started"
    return seconds, "seconds since the run started"


def _time_axis(axes: Axes, label: str) -> None:
    from matplotlib.ticker import MaxNLocator  # noqa: PLC0415 - heavy: imported when a chart is drawn

    axes.xaxis.set_major_locator(MaxNLocator(nbins=8, integer=True, min_n_ticks=2))
    axes.set_xlabel(label, fontsize=8, loc="right")


def _empty(axes: Axes, text: str) -> None:
    axes.text(0.5, 0.5, text, ha="center", va="center", transform=axes.transAxes, color="#666")
    axes.set_xticks([])
    axes.set_yticks([])


def weights_svg(steps: Sequence[WeightStep], *, start: dt.datetime | None = None, salt: str) -> bytes:
    """Primary and canary weights as step lines over the run (from ``start``, else the first step), with the
    notes of the steps that have one."""
    with _LOCK:
        figure, axes = _figure()
        if not steps:
            _empty(axes, "no run recorded yet")
            return _svg(figure, salt)
        times, label = _elapsed([s.time for s in steps], start or steps[0].time)
        canary = [s.canary_weight for s in steps]
        axes.step(times, [100 - w for w in canary], where="post", color=PRIMARY_COLOUR, label="primary",
                  gid="weights-primary")
        axes.step(times, canary, where="post", color=CANARY_COLOUR, label="canary", marker="o", markersize=3,
                  gid="weights-canary")
        middle = (times[0] + times[-1]) / 2
        for when, step in zip(times, steps, strict=True):
            if step.note:  # notes in the second half of the run lean left, to stay inside the picture
                late = when > middle
                axes.annotate(step.note[:40], (when, step.canary_weight), fontsize=7, rotation=20,
                              xytext=(-3 if late else 3, 6), textcoords="offset points", color="#444",
                              ha="right" if late else "left")
        axes.set_ylim(-3, 103)
        axes.set_ylabel("weight %")
        _time_axis(axes, label)
        axes.legend(loc="center left", fontsize=8, frameon=False)
        return _svg(figure, salt)


def metric_svg(series: MetricSeries, *, start: dt.datetime | None = None, salt: str,
               prometheus: Sequence[tuple[dt.datetime, float]] = ()) -> bytes:
    """A metric's values over time (passing points green, failing red, missing data as a gap) and the
    range it must stay in, shaded: points inside the band passed. ``prometheus``, when given, is the
    metric's query over the run as Prometheus has it, drawn as a thin line under the points."""
    name = chart_id(series.name)
    ranged = [(t, v) for t, v in prometheus if math.isfinite(v)]
    with _LOCK:
        figure, axes = _figure()
        axes.set_title(series.name, fontsize=10, loc="left")
        known = [p for p in series.points if p.value is not None]
        if not known and not ranged:
            _empty(axes, "no values yet")
            return _svg(figure, salt)
        values = [p.value for p in known if p.value is not None] + [v for _, v in ranged]
        low = series.min if series.min is not None else min([*values, series.max or 0]) - 1
        high = series.max if series.max is not None else max([*values, series.min or 0]) + 1
        lowest, highest = min([*values, low]), max([*values, high])
        pad = 0.08 * ((highest - lowest) or 1.0)
        bottom, top = lowest - pad, highest + pad
        axes.set_ylim(bottom, top)
        axes.axhspan(low if series.min is not None else bottom, high if series.max is not None else top,
                     color=BAND_COLOUR, alpha=0.35, gid=f"{name}-band", label="threshold range")
        for bound, kind in ((series.min, "min"), (series.max, "max")):
            if bound is not None:
                axes.axhline(bound, color=PASS_COLOUR, linestyle="--", linewidth=1, gid=f"{name}-{kind}")
        origin = start or min([p.time for p in series.points] + [t for t, _ in ranged])
        xs, axis = _elapsed([p.time for p in series.points] + [t for t, _ in ranged], origin)
        xs, ranged_xs = xs[:len(series.points)], xs[len(series.points):]
        if ranged:
            axes.plot(ranged_xs, [v for _, v in ranged], color=PROMETHEUS_COLOUR, linewidth=1, alpha=0.8,
                      gid=f"{name}-prometheus", label="Prometheus")
        axes.plot(xs, [p.value if p.value is not None else float("nan") for p in series.points], color="#555",
                  linewidth=1)
        for passed, colour, label in ((True, PASS_COLOUR, "passed"), (False, FAIL_COLOUR, "failed")):
            chosen = [(x, p.value) for x, p in zip(xs, series.points, strict=True)
                      if p.value is not None and p.passed is passed]
            if chosen:
                axes.plot([x for x, _ in chosen], [v for _, v in chosen], linestyle="none", marker="o",
                          markersize=5, color=colour, gid=f"{name}-points-{label}", label=label)
        if start is not None:  # every chart of a run begins at its start, so that their steps line up
            axes.set_xlim(left=min(0.0, *xs, *ranged_xs))
        _time_axis(axes, axis)
        axes.legend(loc="best", fontsize=8, frameon=False)
        return _svg(figure, salt)
