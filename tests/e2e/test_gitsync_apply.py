"""Applying rendered commits to the real control plane: no-op resyncs, edits, prunes and their guards,
and a sync that leaves the canary engine's fields and objects alone."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from canary.gitsync.apply import SyncReport, sync
from canary.gitsync.inventory import KubeInventoryStore, ObjectRef, SyncState
from canary.gitsync.render import RenderError, render
from canary.kube import Obj
from canary.kube.client import Kube
from canary.waiting import wait_until
from tests.builders import make_canary, make_configmap, make_deployment
from tests.e2e.canaries import wait_phase
from tests.e2e.controllers import ControllerProcess

SOURCE = "main"


def write(root: Path, relative: str, *documents: Obj) -> None:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump_all(documents, sort_keys=False))


def service(name: str, namespace: str) -> Obj:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": namespace},
            "spec": {"selector": {"app": name}, "ports": [{"port": 80, "targetPort": 9898}]}}


def seed(root: Path, namespace: str) -> None:
    """The app layout of the issue, inside the test's namespace."""
    write(root, "k8s/app/deployment.yaml", make_deployment("podinfo", namespace, replicas=2))
    write(root, "k8s/app/service.yaml", service("podinfo", namespace))
    write(root, "k8s/app/config.yaml", make_configmap("settings", namespace, data={"level": "info"}))


def run(kube: Kube, root: Path, namespace: str, *, revision: str = "c1", dry_run: bool = False,
        **options: Any) -> SyncReport:
    try:
        rendered = render(root, ["k8s"])
    except RenderError as exc:
        return sync(kube, exc, source=SOURCE, inventory_store=KubeInventoryStore(SyncState(kube, namespace)),
                    dry_run=dry_run, prune=True, revision=revision, **options)
    return sync(kube, rendered, source=SOURCE, inventory_store=KubeInventoryStore(SyncState(kube, namespace)),
                dry_run=dry_run, prune=True, revision=revision, **options)


def settle(kube: Kube, namespace: str, name: str = "podinfo") -> None:
    """Wait until the Deployment controller has finished writing the Deployment's status, whose
    updates would change its resourceVersion without any write of ours."""
    def done(found: Obj | None) -> bool:
        status = (found or {}).get("status") or {}
        return (found is not None and status.get("observedGeneration") == found["metadata"]["generation"]
                and status.get("availableReplicas", 0) == status.get("replicas", 0) == found["spec"]["replicas"])
    wait_until(lambda: kube.get("apps/v1", "Deployment", name, namespace=namespace), done,
               what=f"Deployment {namespace}/{name} to settle", timeout=60)


def versions(kube: Kube, refs: list[ObjectRef]) -> dict[str, str | None]:
    def version(ref: ObjectRef) -> str | None:
        found = kube.get(ref.api_version, ref.kind, ref.name, namespace=ref.namespace or None)
        return None if found is None else str(found["metadata"]["resourceVersion"])
    return {str(ref): version(ref) for ref in refs}


def refs(namespace: str, *names: str) -> list[ObjectRef]:
    kinds = {"podinfo": ("apps/v1", "Deployment"), "podinfo-svc": ("v1", "Service")}
    return [ObjectRef(*kinds.get(n, ("v1", "ConfigMap")), namespace, n.removesuffix("-svc")) for n in names]


def strings(items: Any) -> list[str]:
    return sorted(str(getattr(i, "ref", i)) for i in items)


def test_the_seed_layout_applies_namespace_first_and_a_second_sync_writes_nothing(
    kube: Kube, namespace: str, tmp_path: Path
) -> None:
    extra = f"gitsync-extra-{os.urandom(3).hex()}"
    seed(tmp_path, namespace)
    # Sorted first but applied after its namespace, which the same sync creates.
    write(tmp_path, "k8s/a-staging.yaml", make_configmap("in-new-namespace", extra))
    write(tmp_path, "k8s/namespaces/staging.yaml",
          {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": extra}})
    try:
        planned = run(kube, tmp_path, namespace, dry_run=True)
        assert planned.ok, planned.errors
        assert len(planned.created) == 5
        assert kube.get("v1", "Namespace", extra) is None, "a dry run writes nothing"

        first = run(kube, tmp_path, namespace)
        assert first.ok, first.errors
        assert strings(first.created) == [f"ConfigMap {extra}/in-new-namespace", f"ConfigMap {namespace}/settings",
                                          f"Deployment {namespace}/podinfo", f"Namespace {extra}",
                                          f"Service {namespace}/podinfo"]
        applied = KubeInventoryStore(SyncState(kube, namespace)).load(SOURCE)
        assert applied is not None
        assert str(applied.objects[0]) == f"Namespace {extra}"
        assert applied.revision == "c1"
        settle(kube, namespace)
        before = versions(kube, list(applied.objects))

        second = run(kube, tmp_path, namespace, revision="c2")
        assert second.ok, second.errors
        assert (second.created, second.changed, second.pruned) == ((), (), ())
        assert len(second.unchanged) == 5
        assert versions(kube, list(applied.objects)) == before
    finally:
        kube.delete("v1", "Namespace", extra)


def test_an_edit_changes_only_that_object_and_a_dry_run_shows_it_as_a_diff_first(
    kube: Kube, namespace: str, tmp_path: Path
) -> None:
    seed(tmp_path, namespace)
    assert run(kube, tmp_path, namespace).ok
    settle(kube, namespace)
    every = refs(namespace, "podinfo", "podinfo-svc", "settings")
    before = versions(kube, every)
    write(tmp_path, "k8s/app/config.yaml", make_configmap("settings", namespace, data={"level": "debug"}))

    preview = run(kube, tmp_path, namespace, dry_run=True)
    assert strings(preview.changed) == [f"ConfigMap {namespace}/settings"]
    assert "-  level: info\n+  level: debug\n" in preview.changed[0].diff
    assert versions(kube, every) == before

    edited = run(kube, tmp_path, namespace, revision="c2")
    assert edited.ok, edited.errors
    assert strings(edited.changed) == [f"ConfigMap {namespace}/settings"]
    after = versions(kube, every)
    assert {k for k in before if before[k] != after[k]} == {f"ConfigMap {namespace}/settings"}
    live = kube.get("v1", "ConfigMap", "settings", namespace=namespace)
    assert live is not None
    assert live["data"] == {"level": "debug"}


def test_removing_a_document_prunes_its_object(kube: Kube, namespace: str, tmp_path: Path) -> None:
    seed(tmp_path, namespace)
    assert run(kube, tmp_path, namespace).ok
    (tmp_path / "k8s/app/service.yaml").unlink()

    preview = run(kube, tmp_path, namespace, dry_run=True)
    assert strings(preview.pruned) == [f"Service {namespace}/podinfo"]
    assert kube.get("v1", "Service", "podinfo", namespace=namespace) is not None

    pruned = run(kube, tmp_path, namespace, revision="c2")
    assert pruned.ok, pruned.errors
    assert strings(pruned.pruned) == [f"Service {namespace}/podinfo"]
    assert kube.get("v1", "Service", "podinfo", namespace=namespace) is None
    inventory = KubeInventoryStore(SyncState(kube, namespace)).load(SOURCE)
    assert inventory is not None
    assert [str(r) for r in inventory.objects] == [f"ConfigMap {namespace}/settings", f"Deployment {namespace}/podinfo"]


def test_a_broken_file_applies_nothing_and_prunes_nothing(kube: Kube, namespace: str, tmp_path: Path) -> None:
    seed(tmp_path, namespace)
    assert run(kube, tmp_path, namespace).ok
    settle(kube, namespace)
    every = refs(namespace, "podinfo", "podinfo-svc", "settings")
    before = versions(kube, every)
    write(tmp_path, "k8s/app/config.yaml", make_configmap("settings", namespace, data={"level": "debug"}))
    (tmp_path / "k8s/app/service.yaml").unlink()
    (tmp_path / "k8s/app/broken.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x: y\n")

    broken = run(kube, tmp_path, namespace, revision="c2")

    assert broken.errors == ("k8s/app/broken.yaml, document 1: YAML error at line 4: mapping values are not "
                             "allowed here",)
    assert (broken.created, broken.changed, broken.pruned) == ((), (), ())
    assert versions(kube, every) == before
    state = KubeInventoryStore(SyncState(kube, namespace)).load(SOURCE)
    assert state is not None
    assert (state.revision, state.last_error) == ("c1", broken.errors[0])
    assert len(state.objects) == 3


def test_an_object_the_server_refuses_stops_the_sync_before_any_write_or_prune(
    kube: Kube, namespace: str, tmp_path: Path
) -> None:
    seed(tmp_path, namespace)
    assert run(kube, tmp_path, namespace).ok
    settle(kube, namespace)
    before = versions(kube, refs(namespace, "podinfo", "podinfo-svc", "settings"))
    write(tmp_path, "k8s/app/config.yaml", make_configmap("settings", namespace, data={"level": "debug"}))
    (tmp_path / "k8s/app/service.yaml").unlink()
    invalid = make_deployment("invalid", namespace)
    invalid["spec"]["replicas"] = -1
    write(tmp_path, "k8s/app/invalid.yaml", invalid)

    refused = run(kube, tmp_path, namespace, revision="c2")

    assert len(refused.errors) == 1
    assert refused.errors[0].startswith("k8s/app/invalid.yaml, document 1: apply Deployment")
    assert "spec.replicas" in refused.errors[0]
    assert refused.prune_blocked == "nothing pruned: 1 error(s) while applying"
    assert versions(kube, refs(namespace, "podinfo", "podinfo-svc", "settings")) == before


def test_the_prune_guard_refuses_deleting_most_of_the_inventory(kube: Kube, namespace: str, tmp_path: Path) -> None:
    for name in "abcd":
        write(tmp_path, f"k8s/{name}.yaml", make_configmap(name, namespace))
    assert run(kube, tmp_path, namespace).ok
    for name in "bcd":
        (tmp_path / f"k8s/{name}.yaml").unlink()

    refused = run(kube, tmp_path, namespace, revision="c2")

    assert refused.pruned == ()
    assert refused.prune_blocked is not None
    assert refused.prune_blocked.startswith("refusing to prune 3 of the 4 objects in the inventory (more than 50%)")
    assert all(kube.get("v1", "ConfigMap", n, namespace=namespace) is not None for n in "abcd")
    state = KubeInventoryStore(SyncState(kube, namespace)).load(SOURCE)
    assert state is not None
    assert len(state.objects) == 4, "what the guard kept stays in the inventory, to prune later"
    assert state.last_error == refused.prune_blocked

    allowed = run(kube, tmp_path, namespace, revision="c2", allow_mass_prune=True)
    assert strings(allowed.pruned) == [f"ConfigMap {namespace}/{n}" for n in "bcd"]
    assert [n for n in "abcd" if kube.get("v1", "ConfigMap", n, namespace=namespace)] == ["a"]


def test_ignored_objects_are_neither_applied_nor_changed(kube: Kube, namespace: str, tmp_path: Path) -> None:
    ignored = make_configmap("ignored-in-git", namespace)
    ignored["metadata"]["annotations"] = {"canary.dev/ignore": "true"}
    write(tmp_path, "k8s/ignored.yaml", ignored)
    write(tmp_path, "k8s/held.yaml", make_configmap("held-in-cluster", namespace, data={"from": "git"}))
    held = make_configmap("held-in-cluster", namespace, data={"from": "a person"})
    held["metadata"]["annotations"] = {"canary.dev/ignore": "true"}
    kube.create(held)

    report = run(kube, tmp_path, namespace)

    assert report.ok, report.errors
    assert strings(report.skipped) == [f"ConfigMap {namespace}/held-in-cluster",
                                       f"ConfigMap {namespace}/ignored-in-git"]
    assert kube.get("v1", "ConfigMap", "ignored-in-git", namespace=namespace) is None
    live = kube.get("v1", "ConfigMap", "held-in-cluster", namespace=namespace)
    assert live is not None
    assert live["data"] == {"from": "a person"}


def test_a_canary_target_held_at_zero_stays_there_and_generated_objects_are_untouched(
    kube: Kube, namespace: str, canary_crds: list[str], controller: ControllerProcess, tmp_path: Path
) -> None:
    write(tmp_path, "k8s/app/deployment.yaml", make_deployment("podinfo", namespace, replicas=2, image="podinfo:1"))
    write(tmp_path, "k8s/app/canary.yaml", make_canary("podinfo", namespace, provider="kubernetes"))
    assert run(kube, tmp_path, namespace).ok
    wait_phase(kube, namespace, "podinfo", "Initialized")
    wait_until(lambda: kube.get("apps/v1", "Deployment", "podinfo", namespace=namespace),
               lambda d: d is not None and d["spec"]["replicas"] == 0,
               what="the engine to scale the target to 0", timeout=30)
    generated = [ObjectRef("apps/v1", "Deployment", namespace, "podinfo-primary"),
                 *(ObjectRef("v1", "Service", namespace, n) for n in ("podinfo", "podinfo-primary", "podinfo-canary"))]
    engine_made = versions(kube, generated)
    assert None not in engine_made.values(), engine_made
    # A document naming an object the engine generated, as a careless commit might add.
    write(tmp_path, "k8s/app/primary.yaml", make_deployment("podinfo-primary", namespace, replicas=5, image="other"))

    again = run(kube, tmp_path, namespace, revision="c2")

    assert again.ok, again.errors
    assert strings(again.skipped) == [f"Deployment {namespace}/podinfo-primary"]
    target = kube.get("apps/v1", "Deployment", "podinfo", namespace=namespace)
    assert target is not None
    assert target["spec"]["replicas"] == 0
    assert versions(kube, generated) == engine_made
    assert run(kube, tmp_path, namespace, revision="c3").changed == (), "the held target is then left as it is"
