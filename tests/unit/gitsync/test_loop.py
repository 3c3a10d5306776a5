from __future__ import annotations

import time
from pathlib import Path

import pytest

from canary.gitsync import loop
from canary.gitsync.loop import GitSync, SyncSettings
from canary.gitsync.source import GitError, GitSource


class NoKube:
    """The poll under test never reaches the cluster."""


def test_an_unreachable_remote_is_retried_with_growing_backoff(monkeypatch: pytest.MonkeyPatch,
                                                               tmp_path: Path) -> None:
    calls: list[str] = []
    now = [1000.0]

    def unreachable(source: GitSource) -> str:
        calls.append(source.name)
        raise GitError("git source app: cannot connect")

    monkeypatch.setattr(loop, "ls_remote_head", unreachable)
    monkeypatch.setattr(time, "monotonic", lambda: now[0])
    source = GitSource(name="app", url="git://127.0.0.1:9/app.git")
    gitsync = GitSync(NoKube(), SyncSettings(sources=(source,), poll_interval=10), cache_root=tmp_path)  # type: ignore[arg-type]

    assert gitsync.poll("app") == "app: remote failed (1 in a row), retrying in 20s"
    now[0] += 10
    assert gitsync.poll("app").startswith("app: waiting 10s")
    now[0] += 11
    assert gitsync.poll("app") == "app: remote failed (2 in a row), retrying in 40s"
    assert calls == ["app", "app"], "no attempt while backing off"
    now[0] += 10_000
    for _ in range(6):
        gitsync.poll("app")
        now[0] += 10_000
    assert gitsync.poll("app").endswith("retrying in 300s"), "capped"
