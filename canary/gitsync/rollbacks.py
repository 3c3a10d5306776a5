"""Rollbacks that Git knows about: what the sync does after the engine rolled back a release that came
from Git, following the source's ``gitRollback`` policy.

- ``none``: nothing (Flagger's behaviour).
- ``pin``: the failed revision is recorded in the sync state; resyncs of the same commit do not
  restart it (the engine only releases new revisions), and ``canary sync status`` and an alert say
  that Git is ahead of the cluster and why.
- ``revert``: a commit that restores the promoted pod template (and tracked ConfigMaps) of the
  Deployment is pushed to the branch; the sync then applies it, the target is back at the promoted
  revision and the cluster and Git agree. A source that cannot be written (read-only, a tag or a
  pinned commit, a refused push, a Deployment rendered by kustomize or helm) falls back to ``pin`` and says why.

The engine tells what it rolled back through ``FailedRelease`` values (the controller wires the
provider); ``GitSync`` calls :meth:`Rollbacks.handle` after each successful sync. Each release is
handled once: the outcome is kept in the source's sync-state object (ConfigMap or Secret) under
``rollbacks.json``.
"""

from __future__ import annotations

import contextlib
import copy
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Literal, Protocol

import structlog
from pydantic import ValidationError

from canary.defaults import CONTROLLER_NAME
from canary.errors import CanaryError, PermanentError
from canary.gitsync.inventory import FIELD_MANAGER, Inventory, ObjectRef, SyncState
from canary.gitsync.render import Rendered, RenderedObject
from canary.gitsync.source import Checkout, GitError, GitSource, push
from canary.gitsync.yamledit import Change, EditError, changes, edit_file, patch
from canary.kube import Obj
from canary.kube.client import Kube
from canary.models.base import API_VERSION
from canary.models.canary import Canary, Phase, Severity

log = structlog.get_logger(__name__)
LEDGER_KEY = "rollbacks.json"
# The inventory is applied by FIELD_MANAGER with only its own key; a second manager keeps this key
# from being removed by that apply.
LEDGER_MANAGER = f"{FIELD_MANAGER}-rollbacks"
LEDGER_SIZE = 20
DEFAULT_AUTHOR = f"{CONTROLLER_NAME} <{CONTROLLER_NAME}@canary.dev>"
# How git says that the branch moved under a push: try again on the next pass.
_MOVED = re.compile(r"fetch first|non-fast-forward|stale info|cannot lock ref")


@dataclass(frozen=True)
class FailedRelease:
    """A release the engine rolled back: the target's template and configs now, and as promoted."""

    namespace: str
    canary: str
    deployment: str
    failed_revision: str
    promoted_revision: str
    checks: tuple[tuple[str, str], ...]  # (metric, what it measured), the failing ones of the last step
    live_template: Obj
    promoted_template: Obj
    # (kind, name) -> (live object, promoted copy) for each tracked config that differs.
    configs: dict[tuple[str, str], tuple[Obj, Obj]] = field(default_factory=dict)

    @property
    def key(self) -> str:
        """Which rollback this is: the canary and the revision it rolled back."""
        return f"{self.namespace}/{self.canary}@{self.failed_revision}"

    def describe(self) -> str:
        """The rollback in one clause."""
        return _describe(self.namespace, self.canary, self.deployment, self.failed_revision, self.checks)


@dataclass(frozen=True)
class RollbackRecord:
    """What the sync did about one rollback."""

    key: str
    canary: str
    deployment: str
    revision: str
    promoted: str
    commit: str | None
    policy: str
    outcome: Literal["pinned", "reverted"]
    reason: str
    revert_commit: str | None
    at: str


class Ledger:
    """The handled rollbacks of each source, in its sync-state object (cached: we are the only writer)."""

    def __init__(self, state: SyncState) -> None:
        self._state = state
        self._cache: dict[str, tuple[RollbackRecord, ...]] = {}

    def load(self, source: str) -> tuple[RollbackRecord, ...]:
        """The records of ``source``, newest last."""
        if source not in self._cache:
            self._cache[source] = read_ledger(self._state, source)
        return self._cache[source]

    def add(self, source: str, record: RollbackRecord) -> None:
        """Keep ``record`` (and the newest LEDGER_SIZE - 1 before it)."""
        records = (*self.load(source)[-(LEDGER_SIZE - 1):], record)
        self._state.write(source, {LEDGER_KEY: json.dumps([asdict(r) for r in records], indent=1)},
                          field_manager=LEDGER_MANAGER)
        self._cache[source] = records


def read_ledger(state: SyncState, source: str) -> tuple[RollbackRecord, ...]:
    """The records kept for ``source`` (none before its first handled rollback)."""
    found = state.read(source, LEDGER_KEY)
    if not found or not found[0]:
        return ()
    text, where = found
    try:
        return tuple(RollbackRecord(**r) for r in json.loads(text))
    except (ValueError, TypeError) as exc:
        raise PermanentError(f"{where}: data.{LEDGER_KEY} is not a valid list of rollbacks ({exc!r}); delete the "
                             "key to forget them") from exc


Announce = Callable[[FailedRelease, Severity, str, str], None]
"""Tell people about a handled rollback: (release, severity, event reason, message)."""


@dataclass(frozen=True)
class Outcome:
    """What handling one rollback came to; ``retry`` leaves it for the next pass."""

    outcome: Literal["pinned", "reverted", "retry"]
    reason: str
    revert_commit: str | None = None


class RollbackHandler(Protocol):
    """What the sync loop asks of rollback handling."""

    def pending(self, source: GitSource, inventory: Inventory | None) -> list[FailedRelease]:
        """Rolled-back releases of this source not handled yet."""
        ...

    def handle(self, source: GitSource, inventory: Inventory, checkout: Checkout, rendered: Rendered) -> bool:
        """Handle the pending ones; True when a commit was pushed."""
        ...


class NoRollbacks:
    """Rollback handling switched off (``canary sync`` one-shots, or no engine to ask)."""

    def pending(self, source: GitSource, inventory: Inventory | None) -> list[FailedRelease]:
        """Nothing is ever pending."""
        return []

    def handle(self, source: GitSource, inventory: Inventory, checkout: Checkout, rendered: Rendered) -> bool:
        """Nothing to do."""
        return False


class Rollbacks:
    """Applies the sources' ``gitRollback`` policies to the releases the engine rolled back."""

    def __init__(self, kube: Kube, *, ledger: Ledger, releases: Callable[[], Sequence[FailedRelease]],
                 announce: Announce, author: str = DEFAULT_AUTHOR) -> None:
        self._kube = kube
        self._ledger = ledger
        self._releases = releases
        self._announce = announce
        self._author = author

    def pending(self, source: GitSource, inventory: Inventory | None) -> list[FailedRelease]:
        """Rolled-back releases of Deployments this source applied that it has not handled yet."""
        if source.rollback == "none" or inventory is None:
            return []
        ours = {r.identity for r in inventory.objects}
        handled = {r.key for r in self._ledger.load(source.name)}
        return [r for r in self._releases() if r.key not in handled
                and ObjectRef("apps/v1", "Deployment", r.namespace, r.deployment).identity in ours]

    def handle(self, source: GitSource, inventory: Inventory, checkout: Checkout, rendered: Rendered) -> bool:
        """Handle every pending rollback; True when a revert commit was pushed (the caller syncs it)."""
        pushed = False
        for release in self.pending(source, inventory):
            outcome = self._revert(source, checkout, rendered, release) if source.rollback == "revert" else \
                Outcome("pinned", "")
            if outcome.outcome == "retry":
                log.info("revert postponed", source=source.name, canary=release.key, reason=outcome.reason)
                continue
            self._ledger.add(source.name, RollbackRecord(
                key=release.key, canary=f"{release.namespace}/{release.canary}", deployment=release.deployment,
                revision=release.failed_revision, promoted=release.promoted_revision, commit=inventory.revision,
                policy=source.rollback, outcome=outcome.outcome, reason=outcome.reason,
                revert_commit=outcome.revert_commit, at=datetime.now(UTC).isoformat(timespec="seconds")))
            if outcome.outcome == "reverted":
                pushed = True
                self._announce(release, Severity.INFO, "GitReverted",
                               f"Reverted in Git: commit {(outcome.revert_commit or '')[:12]} on branch "
                               f"{source.branch} of source {source.name} restores Deployment {release.deployment} "
                               f"to revision {release.promoted_revision}. {release.describe()}.")
            else:
                self._announce(release, Severity.WARN, "GitAhead", ahead_message(release.describe(), source.name,
                                                                          inventory.revision, outcome.reason))
        return pushed

    def _revert(self, source: GitSource, checkout: Checkout, rendered: Rendered, release: FailedRelease) -> Outcome:
        if source.readonly:
            return Outcome("pinned", "revert not possible: the source is read-only (--git-readonly)")
        if source.branch is None or source.tag is not None or source.commit is not None:
            return Outcome("pinned", f"revert not possible: the source follows {source.ref}, not a branch")
        try:
            files = self._edit(checkout, rendered, release)
            message = _commit_message(release, source, checkout.commit, files)
            commit = push(checkout, message, self._author)
        except GitError as exc:
            if _MOVED.search(str(exc)):
                return Outcome("retry", f"the branch moved: {exc}")
            return Outcome("pinned", f"revert not possible: {exc}")
        except CanaryError as exc:
            return Outcome("pinned", f"revert not possible: {exc}")
        log.info("reverted in git", source=source.name, canary=release.key, commit=commit[:12], files=files)
        return Outcome("reverted", "", revert_commit=commit)

    def _edit(self, checkout: Checkout, rendered: Rendered, release: FailedRelease) -> list[str]:
        """Write the promoted template (and configs) into the checkout; returns the files changed."""
        target = _find(rendered, "Deployment", release.namespace, release.deployment)
        edits = [Change(("spec", "template", *c.path), c.value, c.remove)
                 for c in changes(release.live_template, release.promoted_template)]
        self._check(target, edits, release)
        todo: list[tuple[RenderedObject, list[Change]]] = [(target, edits)]
        for (kind, name), (live, promoted) in sorted(release.configs.items()):
            if kind == "Secret":
                raise EditError(f"Secret {name} changed too, and revert does not write Secret data to Git")
            config = _find(rendered, kind, release.namespace, name)
            todo.append((config, [c for part in ("data", "binaryData")
                                  for c in changes({part: live.get(part) or {}}, {part: promoted.get(part) or {}})]))
        todo = [(found, found_edits) for found, found_edits in todo if found_edits]
        for found, found_edits in todo:
            _edit_file(checkout, found, found_edits)
        return [found.source.file for found, _ in todo]

    def _check(self, target: RenderedObject, edits: list[Change], release: FailedRelease) -> None:
        """The edited manifest, as the API server would store it, has the promoted template."""
        body = copy.deepcopy(target.body)
        patch(body, edits, where=str(target.source))
        body.setdefault("metadata", {})["namespace"] = release.namespace
        body["spec"].pop("replicas", None)
        dry = self._kube.apply_dry_run(body, field_manager=FIELD_MANAGER)
        left = changes(release.promoted_template, dry["spec"]["template"])
        if left:
            raise EditError(f"the edited {target.source} would still differ from revision "
                            f"{release.promoted_revision}: {', '.join(map(str, left[:5]))}")


def _find(rendered: Rendered, kind: str, namespace: str, name: str) -> RenderedObject:
    for found in rendered.objects:
        meta = found.body.get("metadata") or {}
        if (found.body.get("kind"), meta.get("name"), meta.get("namespace", namespace)) == (kind, name, namespace):
            return found
    raise EditError(f"{kind} {namespace}/{name} is not in the commit any more")


def _edit_file(checkout: Checkout, found: RenderedObject, edits: list[Change]) -> None:
    path = checkout.path / found.source.file
    if not path.is_file():
        raise EditError(f"{found.source.file} is rendered (by kustomize or helm); revert edits plain manifest files "
                        "only")
    meta = found.body.get("metadata") or {}

    def select(document: Obj) -> bool:
        found_meta = document.get("metadata") or {}
        return document.get("kind") == found.body.get("kind") and found_meta.get("name") == meta.get("name") and \
            found_meta.get("namespace") == meta.get("namespace")

    path.write_text(edit_file(found.source.file, path.read_text(), select,
                              lambda document: patch(document, edits, where=str(found.source))))


def _commit_message(release: FailedRelease, source: GitSource, commit: str, files: Sequence[str]) -> str:
    checks = "\n".join(f"- {_check(name, value)}" for name, value in release.checks) or "- (see the Canary's events)"
    return (f"Revert {release.deployment} to its promoted revision {release.promoted_revision}\n\n"
            f"Canary {release.namespace}/{release.canary} rolled back revision {release.failed_revision} of "
            f"Deployment {release.namespace}/{release.deployment}, synced from {commit[:12]}.\n\n"
            f"Failing checks:\n{checks}\n\n"
            f"Restored: {', '.join(files)}.\n"
            f"Pushed by the canary controller (source {source.name}, gitRollback: revert).\n")


def ahead_message(rollback: str, source: str, commit: str | None, reason: str) -> str:
    """Why Git and the cluster disagree after a rollback, and what ends it."""
    text = (f"Git is ahead of the cluster: {rollback}; source {source} still asks for it at commit "
            f"{(commit or '?')[:12]}")
    if reason:
        text += f" ({reason})"
    return text + ". A new commit or `canary retry` releases again."


def _check(name: str, value: str) -> str:
    """A failing check in a few words (its message often names the metric already)."""
    return value if value.startswith(name) else f"{name}: {value}"


def _describe(namespace: str, canary: str, deployment: str, revision: str,
              checks: Sequence[tuple[str, str]]) -> str:
    why = f" ({'; '.join(_check(name, value) for name, value in checks)})" if checks else ""
    return f"Canary {namespace}/{canary} rolled back revision {revision} of Deployment {deployment}{why}"


def git_ahead(kube: Kube, inventory: Inventory, records: Sequence[RollbackRecord]) -> list[str]:
    """What ``canary sync status`` says about releases from this source that the engine rolled back."""
    by_key = {r.key: r for r in records}
    found = []
    canaries: dict[str, list[Canary]] = {}
    for ref in inventory.objects:
        if ref.kind != "Deployment" or not ref.namespace:
            continue
        if ref.namespace not in canaries:
            canaries[ref.namespace] = _valid_canaries(kube, ref.namespace)
        for canary in canaries[ref.namespace]:
            status, name = canary.status, canary.metadata.name
            if canary.spec.target_ref.name != ref.name:
                continue
            applied, promoted = status.last_applied_spec, status.last_promoted_spec
            reverted = [r for r in records if r.canary == f"{ref.namespace}/{name}" and r.outcome == "reverted"
                        and r.promoted == applied == promoted]
            if reverted:
                last = reverted[-1]
                found.append(f"Git and the cluster agree: commit {(last.revert_commit or '')[:12]} reverted "
                             f"revision {last.revision} of Deployment {ref.name} (Canary {ref.namespace}/{name}) "
                             f"to revision {last.promoted}")
                continue
            if applied == promoted or status.phase is not Phase.FAILED:
                continue
            record = by_key.get(f"{ref.namespace}/{name}@{applied}")
            rollback = _describe(ref.namespace, name, ref.name, str(applied), status.failing_checks())
            if record is not None and record.outcome == "reverted":
                found.append(f"Reverting: commit {(record.revert_commit or '')[:12]} restores revision "
                             f"{record.promoted}; {rollback}")
            else:
                found.append(ahead_message(rollback, inventory.source, inventory.revision,
                                           record.reason if record else ""))
    return found


def _valid_canaries(kube: Kube, namespace: str) -> list[Canary]:
    """The Canaries of ``namespace`` that their model accepts (an invalid one never ran a release)."""
    found = []
    for obj in kube.list_objects(API_VERSION, "Canary", namespace=namespace):
        with contextlib.suppress(ValidationError):
            found.append(Canary.from_object(obj))
    return found
