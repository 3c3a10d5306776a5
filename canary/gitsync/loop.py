"""The Git sync as the controller runs it: poll each source, sync on a new commit or when a resync
is due, and report (log, metrics). ``canary sync`` runs one pass of the same code.

A pass is fetch -> render -> apply -> rollbacks: a render error or an unreachable remote applies
nothing and prunes nothing; the inventory records what happened. After a good pass the source's
gitRollback policy is applied to releases the engine rolled back (``canary.gitsync.rollbacks``); a
pushed revert is synced at once. Polling asks the remote for its head
(``git ls-remote``) and syncs only when it differs from the inventory's commit, or when the resync
interval has passed (which corrects drift).

A sync of a new commit checks only what Git changed (``verify="changes"``: objects whose manifests
kept their digest are trusted); a resync, due every ``sync_interval`` since the last one whatever
commits came between, checks every object against the cluster (``verify="cluster"``), and so
corrects drift at that interval. Each source keeps the parsed files of its last render, so that a
commit changing one file parses one file.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import structlog
from prometheus_client import Counter, Gauge, Histogram

from canary.defaults import CONTROLLER_NAMESPACE
from canary.errors import CanaryError
from canary.gitsync.apply import SyncReport, Verify, sync
from canary.gitsync.inventory import Inventory, InventoryStore, KubeInventoryStore, StateKind, SyncState
from canary.gitsync.render import DocumentCache, Rendered, RenderError, render
from canary.gitsync.rollbacks import NoRollbacks, RollbackHandler
from canary.gitsync.source import Checkout, GitSource, fetch, ls_remote_head
from canary.kube.client import Kube
from canary.models.canary import Severity

log = structlog.get_logger(__name__)
DURATION = Histogram("canary_gitsync_duration_seconds", "Duration of a sync pass.", ["source"])
LAST_SUCCESS = Gauge("canary_gitsync_last_success_timestamp_seconds", "When a sync last succeeded.", ["source"])
APPLIED = Counter("canary_gitsync_objects_applied_total", "Objects created or changed by the sync.", ["source"])
PRUNED = Counter("canary_gitsync_objects_pruned_total", "Objects deleted because they left Git.", ["source"])
MAX_BACKOFF = 300.0
CATCH_UP = 3  # passes one poll may run for commits pushed while it synced
REMOTE_UNREACHABLE = "remote unreachable"
FAILURES = Counter("canary_gitsync_failures_total", "Sync passes that failed.", ["source"])


@dataclass(frozen=True)
class SyncSettings:
    """How the controller syncs its sources."""

    sources: tuple[GitSource, ...]
    inventory_namespace: str = CONTROLLER_NAMESPACE
    state_kind: StateKind = "configmap"  # where each source's sync state is kept: a ConfigMap or a Secret
    poll_interval: float = 10.0
    sync_interval: float = 300.0
    prune: bool = True
    max_prune_fraction: float = 0.5


Announce = Callable[[str, Severity, str, str | None], None]
"""Called on a change of a source's health: (source, severity error or info, message, commit)."""


class GitSync:
    """Syncs sources into the cluster; one instance per controller."""

    def __init__(self, kube: Kube, settings: SyncSettings, *, cache_root: Path, announce: Announce | None = None,
                 store: InventoryStore | None = None, rollbacks: RollbackHandler | None = None,
                 on_report: Callable[[SyncReport], None] | None = None) -> None:
        self._kube = kube
        self.settings = settings
        self._cache_root = cache_root
        self._store = store or KubeInventoryStore(SyncState(kube, settings.inventory_namespace, settings.state_kind))
        self._announce = announce
        self._rollbacks = rollbacks or NoRollbacks()
        self._on_report = on_report or (lambda report: None)
        self._failing: dict[str, bool] = {}
        self._last_resync: dict[str, float] = {}  # the last sync that checked every object
        self._documents: dict[str, DocumentCache] = {}
        self._backoff: dict[str, tuple[int, float]] = {}
        self._failed_commit: dict[str, tuple[str, int, float]] = {}
        for source in settings.sources:  # counters exist at 0 from the start, so rates and alerts see them
            for counter in (APPLIED, PRUNED, FAILURES):
                counter.labels(source=source.name)

    def source(self, name: str) -> GitSource:
        """The configured source called ``name``."""
        for source in self.settings.sources:
            if source.name == name:
                return source
        raise KeyError(name)

    def status(self, name: str) -> Inventory | None:
        """What the cluster records of the source's last sync."""
        return self._store.load(name)

    def sync(self, source: GitSource, *, dry_run: bool = False, allow_mass_prune: bool = False,
             verify: Verify = "cluster") -> SyncReport:
        """One pass: fetch, render, apply, prune, record; ``verify`` as ``canary.gitsync.apply.sync``'s (by
        default every object is checked against the cluster, which corrects drift)."""
        began = time.monotonic()
        if source.name not in self._failing and not dry_run:
            previous = self._store.load(source.name)
            self._failing[source.name] = previous is not None and previous.last_error is not None
        try:
            checkout = fetch(source, self._cache_root)
        except CanaryError as exc:
            FAILURES.labels(source=source.name).inc()
            log.warning("git fetch failed; the cluster is left as it is", source=source.name, error=str(exc))
            if not dry_run:
                self._remember_error(source.name, f"fetch failed: {exc}")
                self._health(source.name, failed=True, message=f"fetch failed: {exc}", commit=None)
            raise
        rendered: Rendered | RenderError
        try:
            rendered = render(checkout.path, source.paths, charts=source.charts,
                              cache=self._documents.setdefault(source.name, DocumentCache()))
        except RenderError as exc:
            rendered = exc
        report = sync(self._kube, rendered, source=source.name, inventory_store=self._store,
                      dry_run=dry_run, prune=self.settings.prune,
                      max_prune_fraction=self.settings.max_prune_fraction, allow_mass_prune=allow_mass_prune,
                      revision=checkout.commit, verify=verify)
        self._record(source, report, time.monotonic() - began, checked_all=verify == "cluster")
        if not dry_run and report.ok and isinstance(rendered, Rendered) and self._handle_rollbacks(
                source, checkout, rendered):
            return self.sync(source, verify="changes")
        return report

    def _handle_rollbacks(self, source: GitSource, checkout: Checkout, rendered: Rendered) -> bool:
        """Apply the source's gitRollback policy; True when a revert was pushed (sync again to apply it)."""
        inventory = self._store.load(source.name)
        if inventory is None:
            return False
        try:
            return self._rollbacks.handle(source, inventory, checkout, rendered)
        except CanaryError as exc:
            log.warning("handling a rolled-back release failed; retrying on the next pass", source=source.name,
                        error=str(exc))
            return False

    def poll(self, name: str, *, catch_up: int = CATCH_UP) -> str:
        """Sync ``name`` if its remote moved or a resync is due; returns what happened, for the log.

        A remote that cannot be reached is retried with exponential backoff (from the poll
        interval up to MAX_BACKOFF), and the cluster is left as it is meanwhile. A commit pushed
        during a sync is synced at once after it (up to ``catch_up`` more passes): the webhook of
        that push found this poll running, and a poll does not queue behind itself.
        """
        text, synced = self._poll_once(name)
        if synced is not None and catch_up > 0 and self._moved(self.source(name), synced):
            return f"{text}; pushed meanwhile: {self.poll(name, catch_up=catch_up - 1)}"
        return text

    def _poll_once(self, name: str) -> tuple[str, str | None]:
        """One poll: what happened, and the commit it synced (None when it synced none)."""
        source = self.source(name)
        failures, retry_at = self._backoff.get(name, (0, 0.0))
        if time.monotonic() < retry_at:
            return f"{name}: waiting {retry_at - time.monotonic():.0f}s before retrying the remote", None
        try:
            head = ls_remote_head(source)
        except CanaryError as exc:
            failures += 1
            delay = self._backoff_delay(failures)
            self._backoff[name] = (failures, time.monotonic() + delay)
            FAILURES.labels(source=name).inc()
            log.warning("git remote unreachable; cluster left as it is", source=name, error=str(exc),
                        retry_in=round(delay, 1))
            self._remember_error(name, f"{REMOTE_UNREACHABLE} ({failures} in a row, retrying in {delay:.0f}s): {exc}")
            return f"{name}: remote failed ({failures} in a row), retrying in {delay:.0f}s", None
        recovered = self._backoff.pop(name, None) is not None
        known = self._store.load(name)
        if recovered and known is not None and (known.last_error or "").startswith(REMOTE_UNREACHABLE):
            self._store.save(replace(known, last_error=None))
        due = time.monotonic() - self._last_resync.get(name, float("-inf")) >= self.settings.sync_interval
        if known is not None and known.revision == head and not due and not self._rollbacks.pending(source, known):
            return f"{name}: up to date at {head[:12]}", None
        retry = self._failed_commit.get(name)
        if retry is not None and retry[0] == head and time.monotonic() < retry[2] and not due:
            return f"{name}: commit {head[:12]} failed to sync, retrying in {retry[2] - time.monotonic():.0f}s", None
        try:
            report = self.sync(source, verify="cluster" if due else "changes")
        except CanaryError as exc:
            self._commit_failed(name, head, retry)
            return f"{name}: {exc}", None
        if report.ok:
            self._failed_commit.pop(name, None)
        else:
            self._commit_failed(name, head, retry)
        return summary(report), report.revision if report.ok else None

    def _moved(self, source: GitSource, revision: str) -> bool:
        """Whether the remote's head is another commit than ``revision`` (not when it cannot be asked)."""
        try:
            return ls_remote_head(source) != revision
        except CanaryError:
            return False  # the next poll retries it, with its backoff

    def _commit_failed(self, name: str, head: str, retry: tuple[str, int, float] | None) -> None:
        """Try the same commit again with backoff (its problem may pass, like an API error, or be
        fixed, like a missing signing key); a new commit is synced at once."""
        failures = retry[1] + 1 if retry is not None and retry[0] == head else 1
        delay = self._backoff_delay(failures)
        self._failed_commit[name] = (head, failures, time.monotonic() + delay)

    def _backoff_delay(self, failures: int) -> float:
        """Seconds before the next try after ``failures`` in a row: doubling from the poll interval, capped."""
        return float(min(self.settings.poll_interval * 2.0 ** failures, MAX_BACKOFF))

    def _remember_error(self, name: str, message: str) -> None:
        """Keep a failure that stopped the pass before apply in the sync state, for ``canary sync status``."""
        try:
            known = self._store.load(name)
            self._store.save(replace(known, last_error=message) if known is not None else Inventory(
                source=name, revision=None, objects=(), last_error=message,
                synced_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds")))
        except CanaryError as exc:
            log.warning("could not record the failure in the sync state", source=name, error=str(exc))

    def _record(self, source: GitSource, report: SyncReport, seconds: float, *, checked_all: bool) -> None:
        DURATION.labels(source=source.name).observe(seconds)
        if report.dry_run:
            return
        if checked_all:
            self._last_resync[source.name] = time.monotonic()
        self._on_report(report)
        APPLIED.labels(source=source.name).inc(len(report.created) + len(report.changed))
        PRUNED.labels(source=source.name).inc(len(report.pruned))
        if report.ok:
            LAST_SUCCESS.labels(source=source.name).set(dt.datetime.now(dt.UTC).timestamp())
            log.info("synced", **_fields(report))
            self._health(source.name, failed=False, message=summary(report), commit=report.revision)
        else:
            FAILURES.labels(source=source.name).inc()
            log.warning("sync failed; nothing was pruned", **_fields(report), errors=list(report.errors))
            self._health(source.name, failed=True, message="; ".join(report.errors), commit=report.revision)

    def _health(self, name: str, *, failed: bool, message: str, commit: str | None) -> None:
        """Announce a failure once, and the recovery after it once (not every pass)."""
        was_failing = self._failing.get(name, False)
        self._failing[name] = failed
        if self._announce is None or failed == was_failing:
            return
        if failed:
            self._announce(name, Severity.ERROR, f"Git sync of {name} failed; nothing was pruned: {message}", commit)
        else:
            self._announce(name, Severity.INFO, f"Git sync of {name} recovered: {message}", commit)


def _fields(report: SyncReport) -> dict[str, object]:
    return {"source": report.source, "commit": (report.revision or "")[:12], "created": len(report.created),
            "changed": len(report.changed), "unchanged": len(report.unchanged), "pruned": len(report.pruned),
            "seconds": round(report.duration, 2)}


def summary(report: SyncReport) -> str:
    """One line about a sync pass."""
    verb = "would create" if report.dry_run else "created"
    text = (f"{report.source}@{(report.revision or '?')[:12]}: {verb} {len(report.created)}, changed "
            f"{len(report.changed)}, unchanged {len(report.unchanged)}, pruned {len(report.pruned)}, "
            f"skipped {len(report.skipped)} in {report.duration:.2f}s")
    if report.prune_blocked:
        text += f"; prune blocked: {report.prune_blocked}"
    if report.errors:
        text += f"; errors: {'; '.join(report.errors)}"
    return text
