from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from canary.errors import LocalStackError
from canary.local import loadtester


def test_flagger_and_hey_are_pinned_by_their_wrapper_modules() -> None:
    assert loadtester.pins() == {"flagger": "v1.36.1", "hey": "v0.1.5"}


def test_the_cache_folder_changes_when_a_module_changes(tmp_path: Path) -> None:
    modules = tmp_path / "loadtester"
    shutil.copytree(loadtester.MODULES_DIR, modules)
    before = loadtester.cache_key(modules)
    assert before.startswith("flagger-v1.36.1_hey-v0.1.5_")
    with (modules / "hey" / "go.sum").open("a") as handle:
        handle.write("example.com/x v1.0.0 h1:abc=\n")
    assert loadtester.cache_key(modules) != before


def test_a_prebuilt_folder_must_hold_both_binaries(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CANARY_LOADTESTER_BIN", str(tmp_path))
    (tmp_path / "hey").write_text("")
    with pytest.raises(LocalStackError, match="lacks loadtester"):
        loadtester.ensure_built()
