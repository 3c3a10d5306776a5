from __future__ import annotations

import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from canary.gitsync import loop
from canary.gitsync.apply import SyncReport
from canary.gitsync.inventory import Inventory
from canary.gitsync.loop import GitSync, SyncSettings
from canary.gitsync.render import Rendered
from canary.gitsync.source import Checkout, GitError, GitSource
from tests.fakes import MemoryStore


class NoKube:
    """The poll under test never reaches the cluster."""


def _remote_at(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, now: list[float], head: list[str]) -> None:
    """A clock at ``now[0]`` and a remote whose branch is at ``head[0]``, fetched into ``tmp_path`` and
    rendering nothing."""
    monkeypatch.setattr(time, "monotonic", lambda: now[0])
    monkeypatch.setattr(loop, "ls_remote_head", lambda source: head[0])
    monkeypatch.setattr(loop, "fetch", lambda source, cache: Checkout(
        path=tmp_path, commit=head[0], ref="refs/heads/main", message="m", author="a", time=datetime.now(UTC),
        source=source))
    monkeypatch.setattr(loop, "render", lambda root, paths, charts, cache: Rendered(objects=()))


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
    store = MemoryStore()
    gitsync = GitSync(NoKube(), SyncSettings(sources=(source,), poll_interval=10), cache_root=tmp_path,  # type: ignore[arg-type]
                      store=store)

    assert gitsync.poll("app") == "app: remote failed (1 in a row), retrying in 20s"
    assert store.saved["app"].last_error == ("remote unreachable (1 in a row, retrying in 20s): "
                                             "git source app: cannot connect"), "canary sync status shows it"
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

    monkeypatch.setattr(loop, "ls_remote_head", lambda source: "a" * 40)
    monkeypatch.setattr(loop, "fetch", lambda source, cache: Checkout(
        path=tmp_path, commit="a" * 40, ref="refs/heads/main", message="m", author="a", time=datetime.now(UTC),
        source=source))
    monkeypatch.setattr(loop, "render", lambda root, paths, charts, cache: Rendered(objects=()))
    monkeypatch.setattr(loop, "sync", lambda *args, **kwargs: _report("app"))
    now[0] += 10_000
    gitsync.poll("app")
    assert store.saved["app"].last_error is None, "the remote is back: the error is cleared"


def _report(source: str, *, errors: tuple[str, ...] = ()) -> SyncReport:
    return SyncReport(source=source, revision="c0ffee" * 6, dry_run=False, created=(), changed=(), unchanged=(),
                      pruned=(), skipped=(), errors=errors, prune_blocked=None, duration=0.1)


def test_a_failure_is_announced_once_and_so_is_the_recovery(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    outcomes = iter([("k8s/a.yaml, document 1: line 3: mapping values are not allowed",),
                     ("k8s/a.yaml, document 1: line 3: mapping values are not allowed",), (), ()])
    announced: list[tuple[str, str]] = []
    monkeypatch.setattr(loop, "fetch", lambda source, cache: Checkout(
        path=tmp_path, commit="c0ffee" * 6, ref="refs/heads/main", message="m", author="a",
        time=datetime.now(UTC), source=source))
    monkeypatch.setattr(loop, "render", lambda root, paths, charts, cache: Rendered(objects=()))
    monkeypatch.setattr(loop, "sync", lambda *args, **kwargs: _report("app", errors=next(outcomes)))
    source = GitSource(name="app", url="file:///nowhere")
    gitsync = GitSync(NoKube(), SyncSettings(sources=(source,)), cache_root=tmp_path,  # type: ignore[arg-type]
                      announce=lambda name, severity, message, commit: announced.append((severity, message)),
                      store=MemoryStore())
    for _ in range(4):
        gitsync.sync(source)
    assert [severity for severity, _ in announced] == ["error", "info"]
    assert announced[0][1].startswith("Git sync of app failed; nothing was pruned: k8s/a.yaml, document 1: line 3")
    assert announced[1][1].startswith("Git sync of app recovered: app@c0ffeec0ffee")


def test_a_commit_that_failed_to_sync_is_retried_with_backoff_and_a_new_commit_at_once(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    now = [1000.0]
    head = ["a" * 40]
    synced: list[str] = []
    _remote_at(monkeypatch, tmp_path, now, head)

    def broken_then_fixed(*args: object, **kwargs: object) -> SyncReport:
        synced.append(head[0])
        errors = ("k8s/a.yaml, document 1: line 3: bad indentation",) if head[0] == "a" * 40 else ()
        return _report("app", errors=errors)

    monkeypatch.setattr(loop, "sync", broken_then_fixed)
    source = GitSource(name="app", url="file:///nowhere")
    gitsync = GitSync(NoKube(), SyncSettings(sources=(source,), poll_interval=1, sync_interval=3600),  # type: ignore[arg-type]
                      cache_root=tmp_path, store=MemoryStore())
    gitsync.poll("app")
    now[0] += 1
    assert gitsync.poll("app").startswith(f"app: commit {'a' * 12} failed to sync, retrying in 1s")
    now[0] += 1.5
    gitsync.poll("app")
    assert synced == ["a" * 40, "a" * 40], "the broken commit is retried after the backoff, not every poll"
    head[0] = "b" * 40
    gitsync.poll("app")
    assert synced[-1] == "b" * 40, "a new commit is synced at once"


def test_new_commits_check_only_what_changed_and_a_resync_checks_everything_at_its_interval(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    now = [1000.0]
    head = ["a" * 40]
    verified: list[str] = []
    _remote_at(monkeypatch, tmp_path, now, head)
    store = MemoryStore()

    def synced(*args: object, verify: str, **kwargs: object) -> SyncReport:
        verified.append(verify)
        store.save(Inventory(source="app", revision=head[0], objects=(), last_error=None, synced_at=""))
        return _report("app")

    monkeypatch.setattr(loop, "sync", synced)
    source = GitSource(name="app", url="file:///nowhere")
    gitsync = GitSync(NoKube(), SyncSettings(sources=(source,), poll_interval=10, sync_interval=300),  # type: ignore[arg-type]
                      cache_root=tmp_path, store=store)
    gitsync.poll("app")
    for commit in "bcdefghijk":  # a commit every 40 s: more often than the resync interval
        now[0] += 40
        head[0] = commit * 40
        gitsync.poll("app")

    assert verified[0] == "cluster", "the first sync checks everything"
    assert verified[1:8] == ["changes"] * 7
    assert verified[8] == "cluster", "300 s after the last full check, whatever commits came between"


def test_a_commit_pushed_during_a_sync_is_synced_right_after_it(monkeypatch: pytest.MonkeyPatch,
                                                                tmp_path: Path) -> None:
    pushes = iter(["b" * 40, "c" * 40])
    head = ["a" * 40]
    synced: list[str] = []
    monkeypatch.setattr(loop, "ls_remote_head", lambda source: head[0])
    monkeypatch.setattr(loop, "fetch", lambda source, cache: Checkout(
        path=tmp_path, commit=head[0], ref="refs/heads/main", message="m", author="a", time=datetime.now(UTC),
        source=source))
    monkeypatch.setattr(loop, "render", lambda root, paths, charts, cache: Rendered(objects=()))
    store = MemoryStore()

    def sync_and_get_pushed(*args: object, **kwargs: object) -> SyncReport:
        synced.append(head[0])
        store.save(Inventory(source="app", revision=head[0], objects=(), last_error=None, synced_at=""))
        report = replace(_report("app"), revision=head[0])
        head[0] = next(pushes, head[0])  # the webhook of this push finds the poll busy
        return report

    monkeypatch.setattr(loop, "sync", sync_and_get_pushed)
    source = GitSource(name="app", url="file:///nowhere")
    gitsync = GitSync(NoKube(), SyncSettings(sources=(source,)), cache_root=tmp_path, store=store)  # type: ignore[arg-type]

    gitsync.poll("app")

    assert synced == ["a" * 40, "b" * 40, "c" * 40]
