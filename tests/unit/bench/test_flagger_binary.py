from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bench.flagger import binary
from canary.errors import LocalStackError
from canary.local import loadtester


def test_flagger_is_pinned_at_the_version_whose_load_tester_the_tests_run() -> None:
    assert binary.pin() == "v1.36.1"
    assert binary.pin() == loadtester.pins()["flagger"]


def test_the_cache_folder_changes_when_the_module_changes(tmp_path: Path) -> None:
    shutil.copytree(binary.MODULES_DIR / binary.FOLDER, tmp_path / binary.FOLDER)
    before = binary.cache_key(tmp_path)
    assert before.startswith("flagger-v1.36.1_")
    with (tmp_path / binary.FOLDER / "go.sum").open("a") as handle:
        handle.write("example.com/x v1.0.0 h1:abc=\n")
    assert binary.cache_key(tmp_path) != before


def test_a_prebuilt_folder_must_hold_flagger(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(binary.OVERRIDE, str(tmp_path))
    with pytest.raises(LocalStackError, match="lacks flagger"):
        binary.ensure_built()
