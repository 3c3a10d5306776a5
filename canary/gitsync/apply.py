"""Applies a rendered commit to the cluster by server-side apply, and prunes what left Git, safely.

Called by the sync loop and ``canary sync`` with the output of ``canary.gitsync.render``. ``plan``
is the pure part: which objects go in which stage, which are skipped, which fields are left to
the canary engine, what to prune and whether the prune guard allows it. ``sync`` observes the
cluster, runs the plan and records the source's inventory.

Rules that keep the sync from losing anything or fighting the engine:
- A server-side dry run comes before every write; an object whose dry run equals the live object
  (content and our field ownership) is not written, so its resourceVersion stays.
- Namespaces and CRDs are applied first and the CRDs waited on, so the rest can use them. A stage
  whose dry runs fail writes nothing, and later stages do not run.
- Objects the canary engine generates (owned by a canary.dev Canary) are never touched, and a
  canary's target Deployment held at 0 replicas is applied without ``spec.replicas``.
- Nothing is pruned after any problem, nor beyond ``max_prune_fraction`` of the inventory without
  ``allow_mass_prune``; objects left by such a sync stay in the inventory, to be pruned later.
"""

from __future__ import annotations

import copy
import difflib
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import yaml

from canary.errors import CanaryError, PermanentError, WaitTimeout
from canary.gitsync.inventory import FIELD_MANAGER, Inventory, InventoryStore, ObjectRef, ordered_union
from canary.gitsync.render import Rendered, RenderedObject, RenderError
from canary.kube import Obj
from canary.kube.client import Kube
from canary.kube.conditions import is_true
from canary.models.base import API_VERSION as CANARY_API_VERSION
from canary.models.canary import CanaryHead
from canary.waiting import wait_until

Identity = tuple[str, str, str, str]
IGNORE_ANNOTATION = "canary.dev/ignore"
PRUNE_ANNOTATION = "canary.dev/prune"
ENABLED_ANNOTATION = "canary.dev/enabled"
CRD_API_VERSION = "apiextensions.k8s.io/v1"
_CANARY_GROUP = CANARY_API_VERSION.partition("/")[0]
_FIRST_STAGE = {("", "Namespace"), ("apiextensions.k8s.io", "CustomResourceDefinition")}
_VOLATILE_METADATA = ("resourceVersion", "generation", "managedFields")


@dataclass(frozen=True)
class PrunePolicy:
    """Whether and how much a sync may delete."""

    enabled: bool = True
    max_fraction: float = 0.5
    allow_mass_prune: bool = False


@dataclass(frozen=True)
class ClusterView:
    """What ``plan`` needs to know of the cluster: live objects by identity, and canary targets."""

    live: Mapping[Identity, Obj]
    canary_targets: frozenset[tuple[str, str]] = frozenset()  # (namespace, Deployment name)

    def get(self, ref: ObjectRef) -> Obj | None:
        """The live object at ``ref``, or None."""
        return self.live.get(ref.identity)


@dataclass(frozen=True)
class Step:
    """One object to apply: what to send (``body``), what is there now (``live``), and why it differs."""

    ref: ObjectRef
    body: Obj
    source: str
    live: Obj | None
    note: str = ""


@dataclass(frozen=True)
class Skip:
    """An object the sync leaves alone, and why."""

    ref: ObjectRef
    reason: str


@dataclass(frozen=True)
class Plan:
    """The decisions of one sync, before any write."""

    stages: tuple[tuple[Step, ...], ...]
    skipped: tuple[Skip, ...]
    prune: tuple[ObjectRef, ...]  # candidates, in deletion order (the reverse of apply order)
    prune_blocked: str | None
    problems: tuple[str, ...]

    @property
    def steps(self) -> tuple[Step, ...]:
        """Every object to apply, in apply order."""
        return tuple(step for stage in self.stages for step in stage)


@dataclass(frozen=True)
class Change:
    """An object created or changed (or that would be, in a dry run), with a unified diff of live vs desired."""

    ref: ObjectRef
    diff: str
    note: str = ""


@dataclass(frozen=True)
class SyncReport:
    """The outcome of one sync."""

    source: str
    revision: str | None
    dry_run: bool
    created: tuple[Change, ...]
    changed: tuple[Change, ...]
    unchanged: tuple[ObjectRef, ...]
    pruned: tuple[ObjectRef, ...]
    skipped: tuple[Skip, ...]
    errors: tuple[str, ...]
    prune_blocked: str | None
    duration: float

    @property
    def ok(self) -> bool:
        """True when every object was applied and nothing failed."""
        return not self.errors


def _annotation(obj: Obj | None, key: str) -> str | None:
    value = (((obj or {}).get("metadata") or {}).get("annotations") or {}).get(key)
    return None if value is None else str(value)


def _canary_owner(obj: Obj | None) -> str | None:
    for owner in ((obj or {}).get("metadata") or {}).get("ownerReferences") or []:
        if str(owner.get("apiVersion", "")).startswith(f"{_CANARY_GROUP}/") and owner.get("kind") == "Canary":
            return str(owner.get("name"))
    return None


def _is_canary_target(ref: ObjectRef, body: Obj, live: Obj, cluster: ClusterView) -> bool:
    return ("true" in (_annotation(body, ENABLED_ANNOTATION), _annotation(live, ENABLED_ANNOTATION))
            or (ref.namespace, ref.name) in cluster.canary_targets)


def _leave_engine_fields(ref: ObjectRef, body: Obj, live: Obj | None, cluster: ClusterView) -> tuple[Obj, str]:
    """The body to apply, without the fields the engine holds, and a note saying what was left out."""
    if ref.identity[:2] != ("apps", "Deployment") or live is None or "replicas" not in (body.get("spec") or {}):
        return body, ""
    if (live.get("spec") or {}).get("replicas") != 0 or not _is_canary_target(ref, body, live, cluster):
        return body, ""
    # Between releases the engine scales the target to 0 and the primary serves; applying Git's
    # replicas would start the target's pods again. Leaving the field out of the apply leaves its
    # ownership (and value) with the engine, which took it when it scaled.
    trimmed = copy.deepcopy(body)
    del trimmed["spec"]["replicas"]
    return trimmed, "spec.replicas left to the canary engine, which holds the target at 0"


def plan(desired: Sequence[RenderedObject], inventory: Inventory | None, cluster: ClusterView, *,
         policy: PrunePolicy = PrunePolicy()) -> Plan:
    """Decide stages, skips and prunes; ``desired`` must have their namespaces filled in."""
    problems: list[str] = []
    skipped: list[Skip] = []
    stages: tuple[list[Step], list[Step]] = ([], [])
    seen: dict[Identity, str] = {}
    for obj in desired:
        ref = ObjectRef.of(obj.body)
        where = str(obj.source)
        if ref.identity in seen:
            problems.append(f"{where}: {ref} is also defined in {seen[ref.identity]}")
            continue
        seen[ref.identity] = where
        live = cluster.get(ref)
        if "true" in (_annotation(obj.body, IGNORE_ANNOTATION), _annotation(live, IGNORE_ANNOTATION)):
            skipped.append(Skip(ref, f'annotated {IGNORE_ANNOTATION}: "true"'))
            continue
        owner = _canary_owner(live) or _canary_owner(obj.body)
        if owner is not None:
            skipped.append(Skip(ref, f"generated by the canary engine for Canary {owner}; not synced"))
            continue
        body, note = _leave_engine_fields(ref, obj.body, live, cluster)
        stages[0 if ref.identity[:2] in _FIRST_STAGE else 1].append(Step(ref, body, where, live, note))

    candidates: list[ObjectRef] = []
    left = [r for r in (inventory.objects if inventory else ()) if r.identity not in seen]
    for ref in reversed(left):
        live = cluster.get(ref)
        if live is None:
            continue  # already gone
        if _annotation(live, PRUNE_ANNOTATION) == "disabled":
            skipped.append(Skip(ref, f"removed from Git but annotated {PRUNE_ANNOTATION}: disabled; left in place"))
        elif (owner := _canary_owner(live)) is not None:
            skipped.append(Skip(ref, f"removed from Git but now owned by Canary {owner}; left to the engine"))
        elif not policy.enabled:
            skipped.append(Skip(ref, "removed from Git; pruning is off, so left in place"))
        else:
            candidates.append(ref)
    return Plan(stages=(tuple(stages[0]), tuple(stages[1])), skipped=tuple(skipped), prune=tuple(candidates),
                prune_blocked=_prune_guard(candidates, inventory, policy), problems=tuple(problems))


def _prune_guard(candidates: Sequence[ObjectRef], inventory: Inventory | None, policy: PrunePolicy) -> str | None:
    """Why pruning ``candidates`` is refused, or None when it may go ahead."""
    total = len(inventory.objects) if inventory else 0
    if not candidates or policy.allow_mass_prune or len(candidates) <= policy.max_fraction * total:
        return None
    named = ", ".join(str(r) for r in candidates[:5]) + (", ..." if len(candidates) > 5 else "")
    return (f"refusing to prune {len(candidates)} of the {total} objects in the inventory (more than "
            f"{policy.max_fraction:.0%}); allow a mass prune to delete them: {named}")


def _comparable(obj: Obj) -> tuple[Obj, list[Any]]:
    """An object without what changes on every write or read, and the fields our apply owns."""
    clean = copy.deepcopy(obj)
    clean.pop("status", None)
    meta = clean.get("metadata") or {}
    ours = [{k: v for k, v in entry.items() if k != "time"} for entry in meta.get("managedFields") or []
            if entry.get("manager") == FIELD_MANAGER and entry.get("operation") == "Apply"]
    for key in _VOLATILE_METADATA:
        meta.pop(key, None)
    return clean, ours


def _diff(ref: ObjectRef, live: Obj | None, desired: Obj) -> str:
    before = yaml.safe_dump(_comparable(live)[0], sort_keys=True) if live is not None else ""
    after = yaml.safe_dump(_comparable(desired)[0], sort_keys=True)
    return "".join(difflib.unified_diff(before.splitlines(keepends=True), after.splitlines(keepends=True),
                                        fromfile=f"live: {ref}", tofile=f"git: {ref}"))


@dataclass
class _Run:
    """The mutable tally of one sync, frozen into a ``SyncReport`` at the end."""

    source: str
    revision: str | None
    dry_run: bool
    started: float = field(default_factory=time.monotonic)
    created: list[Change] = field(default_factory=list)
    changed: list[Change] = field(default_factory=list)
    unchanged: list[ObjectRef] = field(default_factory=list)
    pruned: list[ObjectRef] = field(default_factory=list)
    skipped: list[Skip] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    prune_blocked: str | None = None

    def report(self) -> SyncReport:
        return SyncReport(source=self.source, revision=self.revision, dry_run=self.dry_run,
                          created=tuple(self.created), changed=tuple(self.changed), unchanged=tuple(self.unchanged),
                          pruned=tuple(self.pruned), skipped=tuple(self.skipped), errors=tuple(self.errors),
                          prune_blocked=self.prune_blocked, duration=time.monotonic() - self.started)


def sync(kube: Kube, rendered: Rendered | RenderError, *, source: str, inventory_store: InventoryStore,
         dry_run: bool, prune: bool, max_prune_fraction: float = 0.5, allow_mass_prune: bool = False,
         revision: str | None = None, default_namespace: str = "default", crd_timeout: float = 60.0) -> SyncReport:
    """Apply ``rendered`` (the commit ``revision`` of ``source``), prune, and save the inventory.

    A ``RenderError`` is accepted in place of a render so that the failure is recorded in the
    inventory like any other: nothing is applied or pruned. ``dry_run`` writes nothing at all.
    """
    run = _Run(source=source, revision=revision, dry_run=dry_run)
    try:
        previous = inventory_store.load(source)
    except CanaryError as exc:
        run.errors.append(f"inventory of source {source}: {exc}")
        return run.report()
    if isinstance(rendered, RenderError):
        run.errors.extend(rendered.problems)
        _record(inventory_store, run, previous, applied=())
        return run.report()
    try:
        desired = _with_namespaces(kube, rendered.objects, default_namespace)
        view = _observe(kube, desired, previous)
    except CanaryError as exc:
        run.errors.append(str(exc))
        _record(inventory_store, run, previous, applied=())
        return run.report()
    decided = plan(desired, previous, view, policy=PrunePolicy(enabled=prune, max_fraction=max_prune_fraction,
                                                              allow_mass_prune=allow_mass_prune))
    run.skipped.extend(decided.skipped)
    if decided.problems:
        run.errors.extend(decided.problems)
        _record(inventory_store, run, previous, applied=())
        return run.report()
    pending: tuple[ObjectRef, ...] = ()
    if _apply_stages(kube, decided, run, crd_timeout=crd_timeout):
        pending = _prune(kube, decided, run)
    elif decided.prune:
        run.prune_blocked = f"nothing pruned: {len(run.errors)} error(s) while applying"
    _record(inventory_store, run, previous, applied=tuple(s.ref for s in decided.steps), pending=pending)
    return run.report()


def _record(store: InventoryStore, run: _Run, previous: Inventory | None, *, applied: Sequence[ObjectRef],
            pending: Sequence[ObjectRef] = ()) -> None:
    """Save the inventory after a real sync: on failure the previous commit and every object still claimed."""
    if run.dry_run:
        return
    revision: str | None
    last_error: str | None
    if run.errors:
        objects = ordered_union(applied, previous.objects if previous else ())
        revision, last_error = (previous.revision if previous else None), "\n".join(run.errors)
    else:
        # Objects the guard kept stay listed, so that a later sync (with the override) can prune them.
        objects = ordered_union(applied, tuple(reversed(pending)))
        revision, last_error = run.revision, run.prune_blocked
    try:
        store.save(Inventory(source=run.source, revision=revision, objects=objects, last_error=last_error,
                             synced_at=datetime.now(UTC).isoformat(timespec="seconds")))
    except CanaryError as exc:
        run.errors.append(f"saving the inventory of source {run.source}: {exc}")


def _with_namespaces(kube: Kube, objects: Sequence[RenderedObject], default: str) -> list[RenderedObject]:
    """The objects with ``metadata.namespace`` set where their kind is namespaced, and removed where not."""
    scopes = {(crd["spec"].get("group"), (crd["spec"].get("names") or {}).get("kind")): crd["spec"].get("scope")
              for crd in (o.body for o in objects) if _is_crd(crd) and isinstance(crd.get("spec"), dict)}
    problems = []
    resolved = []
    for obj in objects:
        api_version, kind = obj.body["apiVersion"], obj.body["kind"]
        group = api_version.rpartition("/")[0]
        try:
            namespaced = (scopes[group, kind] == "Namespaced") if (group, kind) in scopes \
                else kube.is_namespaced(api_version, kind)
        except PermanentError as exc:
            problems.append(f"{obj.source}: {exc}")
            continue
        body = copy.deepcopy(obj.body)
        if namespaced:
            body["metadata"]["namespace"] = body["metadata"].get("namespace") or default
        else:
            body["metadata"].pop("namespace", None)
        resolved.append(RenderedObject(body=body, source=obj.source))
    if problems:
        raise PermanentError("; ".join(problems))
    return resolved


def _is_crd(body: Obj) -> bool:
    return bool(body.get("kind") == "CustomResourceDefinition"
                and str(body.get("apiVersion", "")).startswith("apiextensions.k8s.io/"))


def _new_kinds(desired: Sequence[RenderedObject] | Sequence[Step], live: Callable[[ObjectRef], Obj | None]) -> set[
        tuple[str, str]]:
    """(group, kind) defined by desired CRDs that the cluster does not serve yet."""
    found = set()
    for item in desired:
        body = item.body
        if _is_crd(body) and not is_true(live(ObjectRef.of(body)), "Established"):
            spec = body.get("spec") or {}
            found.add((str(spec.get("group")), str((spec.get("names") or {}).get("kind"))))
    return found


def _observe(kube: Kube, desired: Sequence[RenderedObject], previous: Inventory | None) -> ClusterView:
    """Read the live copy of every desired and previously applied object, and the canary targets."""
    live: dict[Identity, Obj] = {}
    for obj in desired:
        if _is_crd(obj.body) or obj.body["kind"] == "Namespace":
            ref = ObjectRef.of(obj.body)
            if (found := kube.get(ref.api_version, ref.kind, ref.name)) is not None:
                live[ref.identity] = found
    unserved = _new_kinds(desired, lambda ref: live.get(ref.identity))
    for obj in desired:
        ref = ObjectRef.of(obj.body)
        if ref.identity in live or ref.identity[:2] in unserved:
            continue
        if (found := kube.get(ref.api_version, ref.kind, ref.name, namespace=ref.namespace or None)) is not None:
            live[ref.identity] = found
    wanted = {ObjectRef.of(o.body).identity for o in desired}
    for ref in previous.objects if previous else ():
        if ref.identity in wanted:
            continue
        try:
            found = kube.get(ref.api_version, ref.kind, ref.name, namespace=ref.namespace or None)
        except PermanentError:
            continue  # its kind is no longer served (the CRD went), so neither is the object
        if found is not None:
            live[ref.identity] = found
    return ClusterView(live=live, canary_targets=_canary_targets(kube, desired))


def _canary_targets(kube: Kube, desired: Sequence[RenderedObject]) -> frozenset[tuple[str, str]]:
    namespaces = {o.body["metadata"]["namespace"] for o in desired if o.body["kind"] == "Deployment"}
    if not namespaces or not _canaries_served(kube):
        return frozenset()
    targets = set()
    for namespace in namespaces:
        for canary in map(CanaryHead.of, kube.list_objects(CANARY_API_VERSION, "Canary", namespace=namespace)):
            target = canary.spec.target_ref
            if target.kind == "Deployment" and target.name:
                targets.add((namespace, target.name))
    return frozenset(targets)


def _canaries_served(kube: Kube) -> bool:
    """Whether the API server serves Canaries: discovery, which any install may read (a namespaced one may
    not read CRDs)."""
    try:
        kube.is_namespaced(CANARY_API_VERSION, "Canary")
    except PermanentError:
        return False
    return True


def _apply_stages(kube: Kube, decided: Plan, run: _Run, *, crd_timeout: float) -> bool:
    """Dry-run and apply each stage in turn; True when everything went through."""
    first = decided.stages[0]
    new_namespaces = {s.ref.name for s in first if s.ref.kind == "Namespace" and s.live is None}
    new_kinds = _new_kinds(first, lambda ref: next((s.live for s in first if s.ref == ref), None))
    for stage in decided.stages:
        outcomes: list[tuple[Step, Obj | None]] = []
        for step in stage:
            # A dry run cannot see the namespaces and CRDs that an earlier stage would have made.
            unseen = run.dry_run and (step.ref.namespace in new_namespaces or step.ref.identity[:2] in new_kinds)
            try:
                outcomes.append((step, None if unseen else kube.apply_dry_run(step.body, field_manager=FIELD_MANAGER)))
            except CanaryError as exc:
                run.errors.append(f"{step.source}: {exc}")
        if run.errors:
            return False
        for step, result in outcomes:
            _write(kube, step, result, run)
        if run.errors:
            return False
        crds = [s.ref.name for s in stage if _is_crd(s.body)]
        if crds and not run.dry_run and not _wait_established(kube, crds, run, timeout=crd_timeout):
            return False
    return True


def _write(kube: Kube, step: Step, result: Obj | None, run: _Run) -> None:
    """Apply ``step`` unless its dry run ``result`` equals the live object; tally either way."""
    if result is None:  # not validated: see _apply_stages
        run.created.append(Change(step.ref, _diff(step.ref, None, step.body), "not validated: it needs a "
                                  "namespace or CRD that this sync creates"))
        return
    if step.live is not None and _comparable(result) == _comparable(step.live):
        run.unchanged.append(step.ref)
        return
    change = Change(step.ref, _diff(step.ref, step.live, result) or "(field ownership only)\n", step.note)
    if not run.dry_run:
        try:
            kube.apply(step.body, field_manager=FIELD_MANAGER)
        except CanaryError as exc:
            run.errors.append(f"{step.source}: {exc}")
            return
    (run.created if step.live is None else run.changed).append(change)


def _wait_established(kube: Kube, names: Sequence[str], run: _Run, *, timeout: float) -> bool:
    def waiting() -> list[str]:
        return [n for n in names if not _served(kube, kube.get(CRD_API_VERSION, "CustomResourceDefinition", n))]

    try:
        wait_until(waiting, lambda left: not left, what=f"CustomResourceDefinition {', '.join(names)} to be "
                   "Established", timeout=timeout)
    except WaitTimeout as exc:
        run.errors.append(str(exc))
        return False
    return True


def _served(kube: Kube, crd: Obj | None) -> bool:
    """Established, and listed by discovery (which lags a little behind the condition)."""
    if crd is None or not is_true(crd, "Established"):
        return False
    spec = crd["spec"]
    version = next((v["name"] for v in spec.get("versions") or [] if v.get("served")), None)
    try:
        kube.is_namespaced(f"{spec['group']}/{version}", spec["names"]["kind"])
    except PermanentError:
        return False
    return True


def _prune(kube: Kube, decided: Plan, run: _Run) -> tuple[ObjectRef, ...]:
    """Delete the prune candidates unless the guard refuses; returns those still to delete."""
    if decided.prune_blocked is not None:
        run.prune_blocked = decided.prune_blocked
        return decided.prune
    pending = []
    for ref in decided.prune:
        if run.dry_run:
            run.pruned.append(ref)
            continue
        try:
            kube.delete(ref.api_version, ref.kind, ref.name, namespace=ref.namespace or None)
        except CanaryError as exc:
            run.errors.append(f"prune {ref}: {exc}")
            pending.append(ref)
            continue
        run.pruned.append(ref)
    return tuple(pending)
