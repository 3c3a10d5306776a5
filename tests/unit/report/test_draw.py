"""The picture file: its format from the name, its size from the run's metrics."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from canary.errors import PermanentError
from canary.models.canary import Phase
from canary.report.draw import check_path, pixel_size, render
from canary.report.series import run_of
from tests.unit.engine.test_decide import make_spec
from tests.unit.engine.world import World
from tests.unit.report.test_series import metric_checks, released


def test_a_png_has_the_size_the_report_says_and_an_svg_is_written_too(tmp_path: Path) -> None:
    run = run_of(released(World(make_spec(stepWeight=10, maxWeight=30, threshold=2), checks=metric_checks(70, None)),
                           Phase.FAILED))

    png = render(run, tmp_path / "deep" / "run.png")
    svg = render(run, tmp_path / "run.SVG")

    assert struct.unpack(">II", png.read_bytes()[16:24]) == pixel_size(run) == (1000, 770)
    assert png.stat().st_size < 150_000
    assert svg.read_text().startswith("<?xml")


def test_a_name_that_is_not_png_or_svg_is_refused_before_anything_is_drawn(tmp_path: Path) -> None:
    with pytest.raises(PermanentError, match=r"^-o .*run\.jpg: the picture is written as PNG or SVG"):
        check_path(tmp_path / "run.jpg")
