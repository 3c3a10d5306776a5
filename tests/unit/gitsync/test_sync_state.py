"""Where a source's sync state lives (--git-sync-state): a ConfigMap or a Secret canary-gitsync-<source>,
holding the inventory and the handled rollbacks; switching kinds keeps what the sync knew."""

from __future__ import annotations

import base64
import json

import pytest

from canary.errors import Forbidden, PermanentError
from canary.gitsync.inventory import Inventory, KubeInventoryStore, ObjectRef, SyncState
from canary.gitsync.rollbacks import Ledger, RollbackRecord, read_ledger
from tests.fakes import FakeKube

INVENTORY = Inventory(source="apps", revision="a" * 40, objects=(ObjectRef("v1", "ConfigMap", "shop", "web"),),
                      last_error=None, synced_at="2026-11-29T10:00:00+00:00")
RECORD = RollbackRecord(key="shop/web@1", canary="shop/web", deployment="web", revision="1", promoted="0",
                        commit="a" * 40, policy="pin", outcome="pinned", reason="", revert_commit=None,
                        at="2026-11-29T10:01:00+00:00")


def test_in_a_secret_the_inventory_and_the_ledger_are_encoded_and_read_back() -> None:
    kube = FakeKube()
    state = SyncState(kube.as_kube(), "canary-system", "secret")
    KubeInventoryStore(state).save(INVENTORY)
    Ledger(state).add("apps", RECORD)

    secret = kube.objects["Secret", "canary-system", "canary-gitsync-apps"]
    assert secret["type"] == "Opaque"
    assert json.loads(base64.b64decode(secret["data"]["inventory.json"]))["revision"] == "a" * 40
    assert ("ConfigMap", "canary-system", "canary-gitsync-apps") not in kube.objects
    assert KubeInventoryStore(state).load("apps") == INVENTORY
    assert read_ledger(state, "apps") == (RECORD,)
    assert KubeInventoryStore(state).sources() == ["apps"]
    assert state.describe("apps") == "Secret canary-system/canary-gitsync-apps"


def test_after_switching_to_secrets_the_configmap_state_is_read_until_the_secret_is_written() -> None:
    kube = FakeKube()
    before = SyncState(kube.as_kube(), "canary-system", "configmap")
    KubeInventoryStore(before).save(INVENTORY)
    Ledger(before).add("apps", RECORD)

    after = SyncState(kube.as_kube(), "canary-system", "secret")
    store = KubeInventoryStore(after)
    assert store.load("apps") == INVENTORY, "what the sync applied is still known, so it can prune"
    store.save(INVENTORY)
    assert ("Secret", "canary-system", "canary-gitsync-apps") in kube.objects
    assert read_ledger(after, "apps") == (RECORD,), "a key the Secret lacks yet comes from the ConfigMap"


class NoConfigMaps(FakeKube):
    """A controller whose RBAC grants only Secrets (the chart's least-privilege Role for sync.state=secret)."""

    def get(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> dict | None:  # type: ignore[type-arg]
        if kind == "ConfigMap":
            raise Forbidden(f"get ConfigMap {namespace}/{name}: forbidden")
        return super().get(api_version, kind, name, namespace)


def test_without_rights_on_the_other_kind_a_new_source_simply_has_no_state() -> None:
    state = SyncState(NoConfigMaps().as_kube(), "canary-system", "secret")
    assert KubeInventoryStore(state).load("apps") is None
    assert read_ledger(state, "apps") == ()


def test_a_broken_state_names_its_object_and_an_unknown_kind_names_the_flag() -> None:
    kube = FakeKube({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "canary-gitsync-apps",
                     "namespace": "canary-system"}, "data": {"inventory.json": base64.b64encode(b"{").decode()}})
    with pytest.raises(PermanentError, match=r"Secret canary-system/canary-gitsync-apps: data\.inventory\.json is not"):
        KubeInventoryStore(SyncState(kube.as_kube(), "canary-system", "secret")).load("apps")
    with pytest.raises(PermanentError, match="--git-sync-state must be one of configmap, secret, got 'git'"):
        SyncState(kube.as_kube(), "canary-system", "git")  # type: ignore[arg-type]
