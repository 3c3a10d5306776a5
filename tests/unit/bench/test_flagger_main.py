from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from bench.flagger import __main__ as bench


def test_sizes_are_comma_separated_whole_numbers() -> None:
    assert bench.sizes("10,100, 1000") == [10, 100, 1000]
    with pytest.raises(argparse.ArgumentTypeError, match="whole numbers"):
        bench.sizes("10,many")
    with pytest.raises(argparse.ArgumentTypeError, match="above 0"):
        bench.sizes("0")


def test_a_document_of_sizes_never_measured_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(bench, "RESULTS", tmp_path)
    with pytest.raises(SystemExit):
        bench.main(["--doc-only", "--doc-sizes", "10,1000"])
    assert "no kept result for N=10, 1000" in capsys.readouterr().err
