"""What a sync asks of the API server when Git or the cluster changed little: a resync of an unchanged tree
reads each kind once per namespace and writes nothing, an object someone changed in the cluster is
corrected at the resync, and a commit changing one manifest dry-runs and applies that one object."""

from __future__ import annotations

import copy
from typing import cast

from canary.errors import Forbidden
from canary.gitsync.apply import LIST_FROM, SyncReport, Verify, sync
from canary.gitsync.inventory import Confirmed, Inventory, ObjectRef
from canary.gitsync.render import Rendered, RenderedObject, Source
from canary.kube import Obj
from canary.kube.client import Kube
from tests.builders import make_configmap, make_deployment
from tests.fakes import FakeKube, MemoryStore, _merge

NS = "apps"
NAMESPACE = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}}


class ApplyingKube(FakeKube):
    """FakeKube with what the sync needs besides: dry runs, discovery, and a server-side apply that keeps the
    resourceVersion when nothing changes; a list's items carry no apiVersion or kind, as the API's."""

    def apply(self, body: Obj, *, field_manager: str, subresource: str | None = None) -> Obj:
        self.calls.append(f"apply {body['kind']} {body['metadata']['name']}")
        current = self.objects.get(self._key(body["kind"], body["metadata"]["name"], body["metadata"].get("namespace")))
        merged = _merge(current or {}, body)
        if current is not None and merged == current:
            return copy.deepcopy(current)
        return self._store(merged)

    def apply_dry_run(self, body: Obj, *, field_manager: str) -> Obj:
        self.calls.append(f"dry-run {body['kind']} {body['metadata']['name']}")
        meta = body["metadata"]
        current = self.objects.get(self._key(body["kind"], meta["name"], meta.get("namespace")), {})
        return cast(Obj, _merge(copy.deepcopy(current), body))

    def is_namespaced(self, api_version: str, kind: str) -> bool:
        return kind != "Namespace"

    def list_objects(self, api_version: str, kind: str, *, namespace: str | None = None,
                     label_selector: str | None = None) -> list[Obj]:
        if kind == "Canary":
            self.calls.append("list Canary")
            return []
        items = super().list_objects(api_version, kind, namespace=namespace, label_selector=label_selector)
        for item in items:
            del item["apiVersion"], item["kind"]
        return items

    def edit(self, kind: str, name: str, data: dict[str, str]) -> None:
        """What ``kubectl edit`` would do: the object changes, and so does its resourceVersion."""
        self._store(_merge(self.objects[kind, NS, name], {"data": data}))


    def write_status(self, kind: str, name: str) -> None:
        """What a controller's status update does: a new resourceVersion, the same spec and metadata."""
        self._store(_merge(self.objects[kind, NS, name], {"status": {"seen": self.objects[kind, NS, name][
            "metadata"]["resourceVersion"]}}))


def tree(**values: str) -> Rendered:
    """A Namespace and one ConfigMap per value, one a file."""
    objects = [RenderedObject(body=NAMESPACE, source=Source("k8s/ns.yaml", 1))]
    objects += [RenderedObject(body=make_configmap(name, NS, data={"value": value}),
                               source=Source(f"k8s/{name}.yaml", 1)) for name, value in values.items()]
    return Rendered(objects=tuple(objects))


def run(kube: ApplyingKube, store: MemoryStore, rendered: Rendered, verify: Verify = "cluster") -> SyncReport:
    kube.calls.clear()
    return sync(cast(Kube, kube), rendered, source="apps", inventory_store=store, dry_run=False, prune=True,
                revision="c1", verify=verify)


VALUES = {f"cm-{i}": str(i) for i in range(LIST_FROM + 6)}


def test_a_resync_of_an_unchanged_tree_reads_each_kind_once_and_neither_dry_runs_nor_applies() -> None:
    kube, store = ApplyingKube(), MemoryStore()
    first = run(kube, store, tree(**VALUES))
    assert len(first.created) == len(VALUES) + 1

    again = run(kube, store, tree(**VALUES))

    assert again.ok
    assert (again.created, again.changed) == ((), ())
    assert len(again.unchanged) == len(VALUES) + 1
    assert kube.calls == ["get Namespace apps", "list ConfigMap"], "no dry run, no apply, one read per kind"


def test_a_change_made_in_the_cluster_is_corrected_by_the_resync_and_only_that_object_is_applied() -> None:
    kube, store = ApplyingKube(), MemoryStore()
    run(kube, store, tree(**VALUES))
    kube.edit("ConfigMap", "cm-3", {"value": "edited by hand"})

    between = run(kube, store, tree(**VALUES), verify="changes")
    assert kube.calls == [], "a sync of a new commit that changed nothing here trusts the inventory"
    assert between.changed == ()

    resync = run(kube, store, tree(**VALUES))

    assert [str(c.ref) for c in resync.changed] == [f"ConfigMap {NS}/cm-3"]
    assert kube.objects["ConfigMap", NS, "cm-3"]["data"] == {"value": "3"}
    assert [c for c in kube.calls if not c.startswith(("get", "list"))] == ["dry-run ConfigMap cm-3",
                                                                             "apply ConfigMap cm-3"]
    assert run(kube, store, tree(**VALUES)).changed == (), "and the resync after it confirms it again"
    assert kube.calls == ["get Namespace apps", "list ConfigMap"]


def test_an_object_whose_status_alone_changed_is_confirmed_again_without_a_dry_run() -> None:
    kube, store = ApplyingKube(), MemoryStore()
    run(kube, store, tree(**VALUES))
    kube.write_status("ConfigMap", "cm-1")

    resync = run(kube, store, tree(**VALUES))

    assert resync.changed == ()
    assert kube.calls == ["get Namespace apps", "list ConfigMap"]
    version = kube.objects["ConfigMap", NS, "cm-1"]["metadata"]["resourceVersion"]
    assert store.saved["apps"].confirmed["", "ConfigMap", NS, "cm-1"].resource_version == version


def test_an_object_deleted_in_the_cluster_is_created_again_by_the_resync() -> None:
    kube, store = ApplyingKube(), MemoryStore()
    run(kube, store, tree(**VALUES))
    kube.delete("v1", "ConfigMap", "cm-0", namespace=NS)

    resync = run(kube, store, tree(**VALUES))

    assert [str(c.ref) for c in resync.created] == [f"ConfigMap {NS}/cm-0"]


def test_a_commit_changing_one_manifest_dry_runs_and_applies_that_object_alone() -> None:
    kube, store = ApplyingKube(), MemoryStore()
    run(kube, store, tree(**VALUES))

    changed = run(kube, store, tree(**{**VALUES, "cm-5": "new"}), verify="changes")

    assert [str(c.ref) for c in changed.changed] == [f"ConfigMap {NS}/cm-5"]
    assert kube.calls == ["get ConfigMap cm-5", "dry-run ConfigMap cm-5", "apply ConfigMap cm-5"]
    assert kube.objects["ConfigMap", NS, "cm-5"]["data"] == {"value": "new"}
    assert len(changed.unchanged) == len(VALUES)


def test_going_back_to_a_manifest_after_an_apply_trimmed_for_the_engine_applies_it_again() -> None:
    kube, store = ApplyingKube(), MemoryStore()
    target = make_deployment("web", NS, replicas=2, image="web:1")
    target["metadata"]["annotations"] = {"canary.dev/enabled": "true"}
    web = Source("k8s/web.yaml", 1)
    promoted = Rendered(objects=(*tree(**VALUES).objects, RenderedObject(body=target, source=web)))
    run(kube, store, promoted)
    kube.objects["Deployment", NS, "web"]["spec"]["replicas"] = 0  # the engine holds the target at zero
    failed = copy.deepcopy(target)
    failed["spec"]["template"]["spec"]["containers"][0]["image"] = "web:2"
    run(kube, store, Rendered(objects=(*tree(**VALUES).objects, RenderedObject(body=failed, source=Source(
        "k8s/web.yaml", 1)))), verify="changes")
    assert kube.objects["Deployment", NS, "web"]["spec"]["template"]["spec"]["containers"][0]["image"] == "web:2"
    assert kube.objects["Deployment", NS, "web"]["spec"]["replicas"] == 0

    reverted = run(kube, store, promoted, verify="changes")

    assert [str(c.ref) for c in reverted.changed] == [f"Deployment {NS}/web"]
    assert kube.objects["Deployment", NS, "web"]["spec"]["template"]["spec"]["containers"][0]["image"] == "web:1"
    assert kube.objects["Deployment", NS, "web"]["spec"]["replicas"] == 0, "still left to the engine"


def test_a_commit_removing_a_manifest_prunes_it_with_the_guard_still_counting_the_whole_inventory() -> None:
    kube, store = ApplyingKube(), MemoryStore()
    run(kube, store, tree(**VALUES))
    kept = dict(list(VALUES.items())[:2])

    refused = run(kube, store, tree(**kept), verify="changes")
    assert refused.pruned == ()
    assert refused.prune_blocked is not None, "most of the inventory would go"

    pruned = run(kube, store, tree(**{k: v for k, v in VALUES.items() if k != "cm-1"}), verify="changes")
    assert [str(r) for r in pruned.pruned] == [f"ConfigMap {NS}/cm-1"]
    assert ("ConfigMap", NS, "cm-1") not in kube.objects


def test_the_inventory_confirms_only_what_matched_and_the_confirmations_survive_a_failed_sync() -> None:
    kube, store = ApplyingKube(), MemoryStore()
    run(kube, store, tree(**VALUES))
    confirmed = store.saved["apps"].confirmed
    assert set(confirmed) == {ObjectRef.of(o.body).identity for o in tree(**VALUES).objects}
    version = kube.objects["ConfigMap", NS, "cm-2"]["metadata"]["resourceVersion"]
    assert confirmed["", "ConfigMap", NS, "cm-2"].resource_version == version

    broken = tree(**VALUES)
    duplicate = Rendered(objects=(*broken.objects, broken.objects[1]))
    assert not run(kube, store, duplicate).ok
    assert store.saved["apps"].confirmed == confirmed


def test_the_inventory_is_compact_and_reads_the_earlier_format() -> None:
    inventory = Inventory(source="apps", revision="c1", objects=(ObjectRef("v1", "ConfigMap", NS, "a"),
                                                                 ObjectRef("v1", "Namespace", "", NS)),
                          last_error=None, synced_at="",
                          confirmed={("", "ConfigMap", NS, "a"): Confirmed("d1", "7", "l1")})

    text = inventory.to_json()

    assert '["v1","ConfigMap","apps","a","d1","7","l1"]' in text
    assert "\n" not in text
    assert Inventory.from_json(text, where="here") == inventory
    earlier = ('{"source": "apps", "revision": "c1", "lastError": null, "syncedAt": "", "objects": '
               '[{"apiVersion": "v1", "kind": "ConfigMap", "namespace": "apps", "name": "a"}]}')
    assert Inventory.from_json(earlier, where="here").objects == (ObjectRef("v1", "ConfigMap", NS, "a"),)


class ListForbiddenKube(ApplyingKube):
    """An install that may get but not list ConfigMaps."""

    def list_objects(self, api_version: str, kind: str, *, namespace: str | None = None,
                     label_selector: str | None = None) -> list[Obj]:
        if kind == "ConfigMap":
            self.calls.append("list ConfigMap (forbidden)")
            raise Forbidden("list ConfigMap: forbidden")
        return super().list_objects(api_version, kind, namespace=namespace, label_selector=label_selector)


def test_where_listing_is_forbidden_the_resync_reads_each_object_and_still_writes_nothing() -> None:
    kube, store = ListForbiddenKube(), MemoryStore()
    run(kube, store, tree(**VALUES))

    again = run(kube, store, tree(**VALUES))

    assert again.ok
    assert kube.calls == ["get Namespace apps", "list ConfigMap (forbidden)",
                          *(f"get ConfigMap {name}" for name in VALUES)]
