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
import re
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING

from canary.dashboard.views import MetricSeries, WeightStep

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

_LOCK = threading.Lock()  # matplotlib's text layout and font caches are not thread-safe
_SIZE = (7.2, 2.6)
PASS_COLOUR, FAIL_COLOUR, BAND_COLOUR = "#2e7d32", "#c62828", "#a5d6a7"
CANARY_COLOUR, PRIMARY_COLOUR = "#ef6c00", "#1565c0"


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


def _times(times: Sequence[dt.datetime]) -> npt.NDArray[np.datetime64]:
    """Times as numpy's datetime64 in UTC, which matplotlib puts on a date axis."""
    import numpy  # noqa: PLC0415 - heavy: imported when a chart is drawn

    return numpy.array([t.astimezone(dt.UTC).replace(tzinfo=None) for t in times], dtype="datetime64[ms]")


def _time_axis(axes: Axes) -> None:
    from matplotlib import dates  # noqa: PLC0415 - heavy: imported when a chart is drawn

    axes.xaxis.set_major_formatter(dates.DateFormatter("%H:%M:%S"))  # type: ignore[no-untyped-call]
    axes.set_xlabel("UTC", fontsize=8, loc="right")


def _empty(axes: Axes, text: str) -> None:
    axes.text(0.5, 0.5, text, ha="center", va="center", transform=axes.transAxes, color="#666")
    axes.set_xticks([])
    axes.set_yticks([])


def weights_svg(steps: Sequence[WeightStep], *, salt: str) -> bytes:
    """Primary and canary weights as step lines over time, with the notes of the steps that have one."""
    with _LOCK:
        figure, axes = _figure()
        if not steps:
            _empty(axes, "no run recorded yet")
            return _svg(figure, salt)
        times = _times([s.time for s in steps])
        canary = [s.canary_weight for s in steps]
        axes.step(times, [100 - w for w in canary], where="post", color=PRIMARY_COLOUR, label="primary",
                  gid="weights-primary")
        axes.step(times, canary, where="post", color=CANARY_COLOUR, label="canary", marker="o", markersize=3,
                  gid="weights-canary")
        for when, step in zip(times, steps, strict=True):
            if step.note:
                axes.annotate(step.note[:40], (when, step.canary_weight), fontsize=7, rotation=20,
                              xytext=(3, 6), textcoords="offset points", color="#444")
        axes.set_ylim(-3, 103)
        axes.set_ylabel("weight %")
        _time_axis(axes)
        axes.legend(loc="center left", fontsize=8, frameon=False)
        return _svg(figure, salt)


def metric_svg(series: MetricSeries, *, salt: str) -> bytes:
    """A metric's values over time (passing points green, failing red, missing data as a gap) and the
    range it must stay in, shaded: points inside the band passed."""
    name = chart_id(series.name)
    with _LOCK:
        figure, axes = _figure()
        axes.set_title(series.name, fontsize=10, loc="left")
        known = [p for p in series.points if p.value is not None]
        if not known:
            _empty(axes, "no values yet")
            return _svg(figure, salt)
        values = [p.value for p in known if p.value is not None]
        low = series.min if series.min is not None else min([*values, series.max or 0]) - 1
        high = series.max if series.max is not None else max([*values, series.min or 0]) + 1
        span = max(high - low, 1e-9)
        bottom, top = min([*values, low]) - 0.1 * span, max([*values, high]) + 0.1 * span
        axes.set_ylim(bottom, top)
        axes.axhspan(low if series.min is not None else bottom, high if series.max is not None else top,
                     color=BAND_COLOUR, alpha=0.35, gid=f"{name}-band", label="threshold range")
        for bound, kind in ((series.min, "min"), (series.max, "max")):
            if bound is not None:
                axes.axhline(bound, color=PASS_COLOUR, linestyle="--", linewidth=1, gid=f"{name}-{kind}")
        axes.plot(_times([p.time for p in series.points]),
                  [p.value if p.value is not None else float("nan") for p in series.points], color="#555",
                  linewidth=1)
        for passed, colour, label in ((True, PASS_COLOUR, "passed"), (False, FAIL_COLOUR, "failed")):
            chosen = [p for p in known if p.passed is passed]
            if chosen:
                axes.plot(_times([p.time for p in chosen]), [p.value or 0.0 for p in chosen], linestyle="none",
                          marker="o",
                          markersize=5, color=colour, gid=f"{name}-points-{label}", label=label)
        _time_axis(axes)
        axes.legend(loc="best", fontsize=8, frameon=False)
        return _svg(figure, salt)
