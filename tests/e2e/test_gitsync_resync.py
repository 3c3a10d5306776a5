"""The sync's fast paths on the real control plane: a resync of an unchanged tree sends no apply, not even a
dry run; a change made with kubectl is still corrected at the resync; a commit changing one manifest
applies that one object."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any, cast

from canary.gitsync.apply import LIST_FROM, SyncReport, Verify, sync
from canary.gitsync.inventory import KubeInventoryStore, SyncState
from canary.gitsync.render import DocumentCache, render
from canary.kube.client import Kube
from canary.local import stack
from tests.builders import make_configmap, make_deployment
from tests.e2e.test_gitsync_apply import service, settle, write

SOURCE = "main"
NAMES = [f"cm-{i}" for i in range(LIST_FROM + 4)]


class Counting:
    """A Kube that remembers the calls the sync makes (method and kind), and passes them on."""

    def __init__(self, kube: Kube) -> None:
        self.kube = kube
        self.calls: list[str] = []

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.kube, name)
        if name not in {"get", "list_objects", "apply", "apply_dry_run", "delete", "create"}:
            return method

        def called(*args: Any, **kwargs: Any) -> Any:
            body = args[0] if name.startswith("apply") else None
            kind = body["kind"] if body is not None else args[1]
            self.calls.append(f"{name} {kind}")
            return method(*args, **kwargs)
        return called


def seed(root: Path, namespace: str) -> None:
    write(root, "k8s/deployment.yaml", make_deployment("web", namespace, replicas=1))
    write(root, "k8s/service.yaml", service("web", namespace))
    for name in NAMES:
        write(root, f"k8s/{name}.yaml", make_configmap(name, namespace, data={"value": name}))


def run(kube: Kube, root: Path, namespace: str, cache: DocumentCache, *, verify: Verify = "cluster") -> tuple[
        SyncReport, list[str]]:
    counting = Counting(kube)
    report = sync(cast(Kube, counting), render(root, ["k8s"], cache=cache), source=SOURCE,
                  inventory_store=KubeInventoryStore(SyncState(kube, namespace)), dry_run=False, prune=True,
                  revision="c1", verify=verify)
    assert report.ok, report.errors
    return report, counting.calls


def synced(kube: Kube, root: Path, namespace: str) -> DocumentCache:
    """The seed synced, and synced again once the Deployment controller has written what it writes after a
    create (its revision annotation, the status), which that resync confirms once more."""
    seed(root, namespace)
    cache = DocumentCache()
    first, _ = run(kube, root, namespace, cache)
    assert len(first.created) == len(NAMES) + 2
    settle(kube, namespace, "web")
    run(kube, root, namespace, cache)
    return cache


def writes(calls: list[str]) -> list[str]:
    return [c for c in calls if c.startswith(("apply", "delete", "create"))]


def test_a_resync_of_an_unchanged_tree_sends_no_apply_and_reads_each_kind_once(
        kube: Kube, namespace: str, tmp_path: Path) -> None:
    cache = synced(kube, tmp_path, namespace)

    again, calls = run(kube, tmp_path, namespace, cache)

    assert (again.created, again.changed) == ((), ())
    assert len(again.unchanged) == len(NAMES) + 2
    assert calls == ["list_objects ConfigMap", "get Deployment", "get Service"], \
        "not even a dry run; a LIST for a kind with many objects in the namespace, a GET for one"


def test_a_change_made_with_kubectl_is_corrected_at_the_resync_and_not_before(
        kube: Kube, namespace: str, tmp_path: Path, local_stack: stack.StackState) -> None:
    cache = synced(kube, tmp_path, namespace)
    subprocess.run(["kubectl", "patch", "configmap", "cm-2", "-n", namespace, "--type=merge", "-p",
                    '{"data":{"value":"edited by hand"}}'], check=True, capture_output=True,
                   env={**os.environ, "KUBECONFIG": local_stack.kubeconfig})

    between, calls = run(kube, tmp_path, namespace, cache, verify="changes")
    assert between.changed == ()
    assert writes(calls) == [], "a new commit that changed nothing here trusts the inventory until the resync"
    assert (kube.get("v1", "ConfigMap", "cm-2", namespace=namespace) or {})["data"] == {"value": "edited by hand"}

    resync, calls = run(kube, tmp_path, namespace, cache)

    assert [str(c.ref) for c in resync.changed] == [f"ConfigMap {namespace}/cm-2"]
    assert writes(calls) == ["apply_dry_run ConfigMap", "apply ConfigMap"]
    assert (kube.get("v1", "ConfigMap", "cm-2", namespace=namespace) or {})["data"] == {"value": "cm-2"}


def test_a_commit_changing_one_manifest_applies_that_object_alone(kube: Kube, namespace: str, tmp_path: Path) -> None:
    cache = synced(kube, tmp_path, namespace)
    write(tmp_path, "k8s/cm-4.yaml", make_configmap("cm-4", namespace, data={"value": "new"}))

    changed, calls = run(kube, tmp_path, namespace, cache, verify="changes")

    assert [str(c.ref) for c in changed.changed] == [f"ConfigMap {namespace}/cm-4"]
    assert writes(calls) == ["apply_dry_run ConfigMap", "apply ConfigMap"]
    assert (kube.get("v1", "ConfigMap", "cm-4", namespace=namespace) or {})["data"] == {"value": "new"}
