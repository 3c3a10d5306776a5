"""The dashboard's charts, read back from their SVG: points where the values are, against the threshold band."""

from __future__ import annotations

import datetime as dt
import re
import xml.etree.ElementTree as ET

from canary.dashboard.charts import metric_svg, weights_svg
from canary.dashboard.views import MetricPoint, MetricSeries, WeightStep

T0 = dt.datetime(2026, 11, 29, 12, 0, tzinfo=dt.UTC)
SVG = "{http://www.w3.org/2000/svg}"


def _group(svg: bytes, gid: str) -> ET.Element:
    found = ET.fromstring(svg).find(  # noqa: S314 - our own chart
        f".//{SVG}g[@id='{gid}']")
    assert found is not None, f"no <g id={gid}> in the chart"
    return found


def _marker_ys(svg: bytes, gid: str) -> list[float]:
    """The y of each marker drawn in the group (SVG's y grows downwards)."""
    return [float(use.attrib["y"]) for use in _group(svg, gid).iter(f"{SVG}use")]


def _band_ys(svg: bytes, gid: str) -> tuple[float, float]:
    path = _group(svg, gid).find(f".//{SVG}path")
    assert path is not None
    ys = [float(y) for y in re.findall(r"[ML]\s*[-\d.]+\s+([-\d.]+)", path.attrib["d"])]
    return min(ys), max(ys)


def _series(values: list[float | None], *, low: float | None, high: float | None) -> MetricSeries:
    points = tuple(MetricPoint(time=T0 + dt.timedelta(seconds=2 * i), value=v,
                               passed=v is not None and (low is None or v >= low) and (high is None or v <= high))
                   for i, v in enumerate(values))
    return MetricSeries(name="request-success-rate", points=points, min=low, max=high)


def test_passing_points_lie_in_the_threshold_band_and_failing_ones_outside() -> None:
    svg = metric_svg(_series([100, 99.5, None, 70, 100], low=99, high=None), salt="t")
    passed = _marker_ys(svg, "request-success-rate-points-passed")
    failed = _marker_ys(svg, "request-success-rate-points-failed")
    assert (len(passed), len(failed)) == (3, 1), "one marker per value; no data draws none"
    top, bottom = _band_ys(svg, "request-success-rate-band")
    assert all(top <= y <= bottom for y in passed)
    assert all(y > bottom for y in failed), "70 is below the band"
    assert _group(svg, "request-success-rate-min") is not None


def test_a_metric_without_values_says_so() -> None:
    svg = metric_svg(_series([None, None], low=None, high=500), salt="t")
    assert b"no values yet" in svg


def test_the_weights_chart_steps_the_canary_weight_and_its_complement() -> None:
    steps = [WeightStep(time=T0 + dt.timedelta(seconds=2 * i), canary_weight=w, phase="Progressing")
             for i, w in enumerate([0, 25, 50, 0])]
    svg = weights_svg(steps, salt="t")
    assert len(_marker_ys(svg, "weights-canary")) == 4
    assert _group(svg, "weights-primary") is not None
    assert b"no run recorded yet" in weights_svg([], salt="t")


def _definitions(svg: bytes) -> set[str]:
    """The ids of the shapes a chart defines once and refers to (markers, clip paths)."""
    root = ET.fromstring(svg)  # noqa: S314 - our own chart
    return {e.attrib["id"] for defs in root.iter(f"{SVG}defs") for e in defs.iter() if "id" in e.attrib}


def test_charts_inlined_in_one_page_do_not_share_definitions() -> None:
    first = _definitions(metric_svg(_series([100, 98], low=99, high=None), salt="metric-a"))
    second = _definitions(metric_svg(_series([100, 98], low=99, high=None), salt="metric-b"))
    assert first
    assert not first & second, "a clip path or marker of one chart would draw in the other"
