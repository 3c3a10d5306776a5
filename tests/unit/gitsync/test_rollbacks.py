from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from canary.gitsync.inventory import Inventory, ObjectRef
from canary.gitsync.render import Rendered
from canary.gitsync.rollbacks import FailedRelease, RollbackRecord, Rollbacks
from canary.gitsync.source import Checkout, GitSource

COMMIT = "c0ffee" * 6 + "c0ff"


class MemoryLedger:
    def __init__(self) -> None:
        self.records: list[RollbackRecord] = []

    def load(self, source: str) -> tuple[RollbackRecord, ...]:
        return tuple(self.records)

    def add(self, source: str, record: RollbackRecord) -> None:
        self.records.append(record)


def _release(namespace: str = "apps", deployment: str = "web") -> FailedRelease:
    return FailedRelease(namespace=namespace, canary=deployment, deployment=deployment, failed_revision="f" * 16,
                         promoted_revision="p" * 16, checks=(("request-success-rate", "request-success-rate 80 < 99"),),
                         live_template={}, promoted_template={})


def _inventory() -> Inventory:
    return Inventory(source="default", revision=COMMIT, objects=(ObjectRef("apps/v1", "Deployment", "apps", "web"),),
                     last_error=None, synced_at="")


def test_a_read_only_source_pins_the_rollback_once_and_says_git_is_ahead(tmp_path: Path) -> None:
    said: list[tuple[str, str, str]] = []
    ledger = MemoryLedger()
    rollbacks = Rollbacks(None, ledger=ledger,  # type: ignore[arg-type]
                          releases=lambda: [_release(), _release(namespace="other")],
                          announce=lambda release, severity, reason, message: said.append((severity, reason, message)))
    source = GitSource(name="default", url="file:///repo", rollback="revert", readonly=True)
    checkout = Checkout(path=tmp_path, commit=COMMIT, ref="refs/heads/main", message="", author="",
                        time=datetime.now(UTC), source=source)

    assert [r.namespace for r in rollbacks.pending(source, _inventory())] == ["apps"], "only releases it applied"
    assert rollbacks.handle(source, _inventory(), checkout, Rendered(objects=())) is False, "nothing pushed"
    assert rollbacks.pending(source, _inventory()) == [], "handled once"

    (record,) = ledger.records
    assert (record.outcome, record.policy, record.commit) == ("pinned", "revert", COMMIT)
    severity, reason, message = said[0]
    assert (severity, reason) == ("warn", "GitAhead")
    assert message == (f"Git is ahead of the cluster: Canary apps/web rolled back revision {'f' * 16} of Deployment "
                       f"web (request-success-rate 80 < 99); source default still asks for it at commit "
                       f"{COMMIT[:12]} (revert not possible: the source is read-only (--git-readonly)). "
                       "A new commit or `canary retry` releases again.")


def test_policy_none_leaves_rollbacks_alone() -> None:
    rollbacks = Rollbacks(None, ledger=MemoryLedger(), releases=lambda: [_release()],  # type: ignore[arg-type]
                          announce=lambda *args: None)
    assert rollbacks.pending(GitSource(name="default", url="file:///repo", rollback="none"), _inventory()) == []
