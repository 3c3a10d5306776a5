"""Applies a rendered commit to the cluster by server-side apply, and prunes what left Git, safely.

Called by the sync loop and ``canary sync`` with the output of ``canary.gitsync.render``. ``plan``
is the pure part: which objects go in which stage, which are skipped, which fields are left to
the canary engine, what to prune and whether the prune guard allows it. ``sync`` observes the
cluster, runs the plan and records the source's inventory.

Rules that keep the sync from losing anything or fighting the engine:
- A server-side dry run comes before every write; an object whose dry run equals the live object
  (content and our field ownership) is not written, so its resourceVersion stays.
- An object is neither dry-run nor written when the inventory confirms it (``Confirmed``): Git's
  manifest has the digest it had when the sync last saw the object match it, and, with ``verify``
  ``cluster``, the object still has the resourceVersion it had then (nobody has written to it since,
  so it still matches) or, after writes, the same content and our field ownership (a status update
  does not make it differ from Git). ``cluster`` reads every object with one LIST per kind and
  namespace; a write by anyone (kubectl edit, a deletion) that touches content changes both, so
  drift is found and corrected. ``changes`` (the controller's sync of a new commit between
  resyncs) reads and checks only what Git changed and trusts the rest until the next resync.
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
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import yaml

from canary.errors import CanaryError, Forbidden, PermanentError, WaitTimeout
from canary.gitsync.inventory import (
    FIELD_MANAGER,
    Confirmed,
    Identity,
    Inventory,
    InventoryStore,
    ObjectRef,
    ordered_union,
)
from canary.gitsync.render import Rendered, RenderedObject, RenderError, digest
from canary.kube import Obj
from canary.kube.client import Kube
from canary.kube.conditions import is_true
from canary.models.base import API_VERSION as CANARY_API_VERSION
from canary.models.canary import CanaryHead
from canary.waiting import wait_until

Verify = Literal["cluster", "changes"]
IGNORE_ANNOTATION = "canary.dev/ignore"
PRUNE_ANNOTATION = "canary.dev/prune"
ENABLED_ANNOTATION = "canary.dev/enabled"
CRD_API_VERSION = "apiextensions.k8s.io/v1"
_CANARY_GROUP = CANARY_API_VERSION.partition("/")[0]
_FIRST_STAGE = {("", "Namespace"), ("apiextensions.k8s.io", "CustomResourceDefinition")}
_VOLATILE_METADATA = ("resourceVersion", "generation", "managedFields")
NOT_VALIDATED = "not validated: it needs a namespace or CRD that this sync creates"
# From this many objects of one kind in one namespace, one LIST reads them instead of a GET each.
LIST_FROM = 4
# From this many namespaces, one LIST of Canaries in all namespaces instead of one per namespace.
CANARIES_LIST_ALL_FROM = 4


@dataclass(frozen=True)
class PrunePolicy:
    """Whether and how much a sync may delete."""

    enabled: bool = True
    max_fraction: float = 0.5
    allow_mass_prune: bool = False


@dataclass(frozen=True)
class ClusterView:
    """What ``plan`` needs to know of the cluster: live objects by identity, canary targets, and the objects
    known to match Git already (``trusted``: confirmed by the inventory; their live copies are not kept)."""

    live: Mapping[Identity, Obj]
    canary_targets: frozenset[tuple[str, str]] = frozenset()  # (namespace, Deployment name)
    trusted: frozenset[Identity] = frozenset()
    reconfirmed: Mapping[Identity, Confirmed] = field(default_factory=dict)  # trusted at a new resourceVersion

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
    digest: str = ""  # of Git's manifest (RenderedObject.digest)


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
    unchanged: tuple[ObjectRef, ...] = ()  # trusted: neither read, dry-run nor written
    order: tuple[ObjectRef, ...] = ()  # the steps and the unchanged objects, in apply order

    @property
    def steps(self) -> tuple[Step, ...]:
        """Every object to apply, in apply order."""
        return tuple(step for stage in self.stages for step in stage)


@dataclass(frozen=True)
class Change:
    """An object created or changed (or that would be, in a dry run), with a unified diff of live vs desired
    in a dry run (a real sync does not spend the time: nothing shows it)."""

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
    unchanged: list[ObjectRef] = []
    order: tuple[list[ObjectRef], list[ObjectRef]] = ([], [])
    seen: dict[Identity, Any] = {}
    for obj in desired:
        ref = obj.ref
        if ref.identity in seen:
            problems.append(f"{obj.source}: {ref} is also defined in {seen[ref.identity]}")
            continue
        seen[ref.identity] = obj.source  # formatted only for a problem: thousands of objects pass here
        stage = 0 if ref.identity[:2] in _FIRST_STAGE else 1
        if ref.identity in cluster.trusted:
            unchanged.append(ref)
            order[stage].append(ref)
            continue
        where = str(obj.source)
        live = cluster.get(ref)
        if "true" in (_annotation(obj.body, IGNORE_ANNOTATION), _annotation(live, IGNORE_ANNOTATION)):
            skipped.append(Skip(ref, f'annotated {IGNORE_ANNOTATION}: "true"'))
            continue
        owner = _canary_owner(live) or _canary_owner(obj.body)
        if owner is not None:
            skipped.append(Skip(ref, f"generated by the canary engine for Canary {owner}; not synced"))
            continue
        body, note = _leave_engine_fields(ref, obj.body, live, cluster)
        stages[stage].append(Step(ref, body, where, live, note, obj.digest))
        order[stage].append(ref)

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
                prune_blocked=_prune_guard(candidates, inventory, policy), problems=tuple(problems),
                unchanged=tuple(unchanged), order=(*order[0], *order[1]))


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
    confirmed: dict[Identity, Confirmed] = field(default_factory=dict)  # what this sync saw match Git
    unconfirmed: set[Identity] = field(default_factory=set)  # earlier confirmations this sync makes stale

    def report(self) -> SyncReport:
        return SyncReport(source=self.source, revision=self.revision, dry_run=self.dry_run,
                          created=tuple(self.created), changed=tuple(self.changed), unchanged=tuple(self.unchanged),
                          pruned=tuple(self.pruned), skipped=tuple(self.skipped), errors=tuple(self.errors),
                          prune_blocked=self.prune_blocked, duration=time.monotonic() - self.started)


def sync(kube: Kube, rendered: Rendered | RenderError, *, source: str, inventory_store: InventoryStore,
         dry_run: bool, prune: bool, max_prune_fraction: float = 0.5, allow_mass_prune: bool = False,
         revision: str | None = None, default_namespace: str = "default", crd_timeout: float = 60.0,
         verify: Verify = "cluster") -> SyncReport:
    """Apply ``rendered`` (the commit ``revision`` of ``source``), prune, and save the inventory.

    A ``RenderError`` is accepted in place of a render so that the failure is recorded in the
    inventory like any other: nothing is applied or pruned. ``dry_run`` writes nothing at all.
    ``verify`` says which objects confirmed by the inventory are checked against the cluster (see the
    module's docstring): ``cluster`` for a resync, which corrects drift; ``changes`` for a new commit.
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
        view = _observe(kube, desired, previous, verify=verify)
    except CanaryError as exc:
        run.errors.append(str(exc))
        _record(inventory_store, run, previous, applied=())
        return run.report()
    decided = plan(desired, previous, view, policy=PrunePolicy(enabled=prune, max_fraction=max_prune_fraction,
                                                              allow_mass_prune=allow_mass_prune))
    run.skipped.extend(decided.skipped)
    run.unchanged.extend(decided.unchanged)
    run.confirmed.update(view.reconfirmed)
    if decided.problems:
        run.errors.extend(decided.problems)
        _record(inventory_store, run, previous, applied=())
        return run.report()
    pending: tuple[ObjectRef, ...] = ()
    # What this sync may write, or leaves alone, loses its earlier confirmation unless the sync confirms it
    # again: a body trimmed for the engine, or a failed apply, may have changed the object, and a later
    # commit going back to the confirmed manifest must apply it (without ``cluster``'s resourceVersion
    # check, a stale confirmation would hide that).
    run.unconfirmed.update(s.ref.identity for s in decided.steps)
    run.unconfirmed.update(s.ref.identity for s in decided.skipped)
    if _apply_stages(kube, decided, run, crd_timeout=crd_timeout):
        pending = _prune(kube, decided, run)
    elif decided.prune:
        run.prune_blocked = f"nothing pruned: {len(run.errors)} error(s) while applying"
    _record(inventory_store, run, previous, applied=decided.order, pending=pending)
    return run.report()


def _record(store: InventoryStore, run: _Run, previous: Inventory | None, *, applied: Sequence[ObjectRef],
            pending: Sequence[ObjectRef] = ()) -> None:
    """Save the inventory after a real sync: on failure the previous commit and every object still claimed."""
    if run.dry_run:
        return
    revision: str | None
    last_error: str | None
    # Confirmations are facts about the past (this digest matched at that resourceVersion); those of the
    # objects this sync did not touch stay, the others are replaced by what this sync saw.
    confirmed = {k: v for k, v in (previous.confirmed if previous else {}).items() if k not in run.unconfirmed}
    confirmed.update(run.confirmed)
    if run.errors:
        objects = ordered_union(applied, previous.objects if previous else ())
        revision, last_error = (previous.revision if previous else None), "\n".join(run.errors)
    else:
        # Objects the guard kept stay listed, so that a later sync (with the override) can prune them.
        objects = ordered_union(applied, tuple(reversed(pending)))
        revision, last_error = run.revision, run.prune_blocked
    listed = {r.identity for r in objects}
    try:
        store.save(Inventory(source=run.source, revision=revision, objects=objects, last_error=last_error,
                             synced_at=datetime.now(UTC).isoformat(timespec="seconds"),
                             confirmed={k: v for k, v in confirmed.items() if k in listed}))
    except CanaryError as exc:
        run.errors.append(f"saving the inventory of source {run.source}: {exc}")


def _with_namespaces(kube: Kube, objects: Sequence[RenderedObject], default: str) -> list[RenderedObject]:
    """The objects with ``metadata.namespace`` set where their kind is namespaced, and removed where not."""
    scopes = {(crd["spec"].get("group"), (crd["spec"].get("names") or {}).get("kind")): crd["spec"].get("scope")
              for crd in (o.body for o in objects) if _is_crd(crd) and isinstance(crd.get("spec"), dict)}
    problems = []
    resolved = []
    known: dict[tuple[str, str], bool] = {}
    for obj in objects:
        api_version, kind = obj.body["apiVersion"], obj.body["kind"]
        group = api_version.rpartition("/")[0]
        try:
            if (api_version, kind) not in known:
                known[api_version, kind] = (scopes[group, kind] == "Namespaced") if (group, kind) in scopes \
                    else kube.is_namespaced(api_version, kind)
            namespaced = known[api_version, kind]
        except PermanentError as exc:
            problems.append(f"{obj.source}: {exc}")
            continue
        meta = obj.body["metadata"]
        if namespaced and meta.get("namespace"):
            resolved.append(obj)  # as written: shared, not copied (the render may keep it for the next pass)
        elif namespaced:
            resolved.append(RenderedObject(body={**obj.body, "metadata": {**meta, "namespace": default}},
                                           source=obj.source))
        elif "namespace" in meta:
            resolved.append(RenderedObject(body={**obj.body, "metadata": {k: v for k, v in meta.items()
                                                                          if k != "namespace"}},
                                           source=obj.source))
        else:
            resolved.append(obj)
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


def _observe(kube: Kube, desired: Sequence[RenderedObject], previous: Inventory | None, *,
             verify: Verify) -> ClusterView:
    """Read what the plan needs of the cluster: the live copy of each desired object that the inventory does
    not confirm (with ``cluster``, of each one, to confirm it by its resourceVersion), of each previously
    applied object that left Git (to prune it), and the canary targets among the Deployments to apply."""
    confirmed = previous.confirmed if previous else {}
    refs = [o.ref for o in desired]
    same = {ref.identity for ref, obj in zip(refs, desired, strict=True)
            if (seen := confirmed.get(ref.identity)) is not None and seen.digest == obj.digest}
    trusted = set(same) if verify == "changes" else set()
    live: dict[Identity, Obj] = {}

    reconfirmed: dict[Identity, Confirmed] = {}

    def keep(identity: Identity, obj: Obj) -> None:
        version = str((obj.get("metadata") or {}).get("resourceVersion"))
        seen = confirmed.get(identity)
        if identity in same and seen is not None and version == seen.resource_version:
            trusted.add(identity)  # nobody has written to it since it matched Git: no copy needed
        elif identity in same and seen is not None and seen.live and seen.live == _live_digest(obj):
            trusted.add(identity)  # written since, but not where Git's manifest or our ownership is
            reconfirmed[identity] = Confirmed(seen.digest, version, seen.live)
        else:
            live[identity] = obj

    # CRDs first: the kinds they define may not be served yet, and objects of those kinds cannot be read.
    crds = {ref.identity for ref, obj in zip(refs, desired, strict=True) if _is_crd(obj.body)}
    for identity, found in _read(kube, [r for r in refs if r.identity in crds and r.identity not in trusted]):
        keep(identity, found)
    unserved = _new_kinds([o for r, o in zip(refs, desired, strict=True) if r.identity not in trusted],
                          lambda ref: live.get(ref.identity))
    for identity, found in _read(kube, [r for r in refs if r.identity not in crds and r.identity not in trusted
                                        and r.identity[:2] not in unserved]):
        keep(identity, found)
    wanted = {r.identity for r in refs}
    for identity, found in _read(kube, [r for r in previous.objects if r.identity not in wanted] if previous
                                 else [], lenient=True):
        live[identity] = found
    namespaces = {r.namespace for r in refs if r.identity[:2] == ("apps", "Deployment") and r.identity not in trusted}
    return ClusterView(live=live, canary_targets=_canary_targets(kube, namespaces), trusted=frozenset(trusted),
                       reconfirmed=reconfirmed)


def _read(kube: Kube, refs: Iterable[ObjectRef], *, lenient: bool = False) -> Iterator[tuple[Identity, Obj]]:
    """The live copies of those of ``refs`` that exist. ``lenient``: a kind no longer served (its CRD went)
    has none, instead of being an error."""
    groups: dict[tuple[str, str, str], list[ObjectRef]] = {}
    for ref in refs:
        groups.setdefault((ref.api_version, ref.kind, ref.namespace), []).append(ref)
    for (api_version, kind, namespace), members in groups.items():
        try:
            yield from _read_group(kube, api_version, kind, namespace, members)
        except PermanentError:
            if not lenient:
                raise


def _read_group(kube: Kube, api_version: str, kind: str, namespace: str,
                members: Collection[ObjectRef]) -> Iterator[tuple[Identity, Obj]]:
    """Objects of one kind in one namespace: one LIST from LIST_FROM of them (unless listing is forbidden;
    not for CRDs, whose schemas make a list of all of them heavy), else a GET each."""
    if len(members) >= LIST_FROM and kind != "CustomResourceDefinition":
        wanted = {r.identity for r in members}
        try:
            listed = kube.list_objects(api_version, kind, namespace=namespace or None)
        except Forbidden:
            listed = None  # may read them one by one, not list them
        if listed is not None:
            for item in listed:
                item["apiVersion"], item["kind"] = api_version, kind  # a list's items do not say
                identity = ObjectRef.of(item).identity
                if identity in wanted:
                    yield identity, item
            return
    for ref in members:
        found = kube.get(ref.api_version, ref.kind, ref.name, namespace=ref.namespace or None)
        if found is not None:
            yield ref.identity, found


def _canary_targets(kube: Kube, namespaces: Collection[str]) -> frozenset[tuple[str, str]]:
    """The Deployments that Canaries in ``namespaces`` target, as (namespace, name)."""
    if not namespaces or not _canaries_served(kube):
        return frozenset()
    canaries = None
    if len(namespaces) >= CANARIES_LIST_ALL_FROM:
        try:
            canaries = kube.list_objects(CANARY_API_VERSION, "Canary")
        except Forbidden:
            canaries = None  # a namespaced install: one list per namespace
    if canaries is None:
        canaries = [c for namespace in sorted(namespaces)
                    for c in kube.list_objects(CANARY_API_VERSION, "Canary", namespace=namespace)]
    targets = set()
    for obj in canaries:
        namespace = obj["metadata"].get("namespace") or ""
        target = CanaryHead.of(obj).spec.target_ref
        if namespace in namespaces and target.kind == "Deployment" and target.name:
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
        # Only the verdict of each dry run is kept until the stage is written, not its answer: a
        # stage of thousands of objects would hold a second copy of each.
        verdicts: list[tuple[Step, Change | None]] = []
        for step in stage:
            # A dry run cannot see the namespaces and CRDs that an earlier stage would have made.
            unseen = run.dry_run and (step.ref.namespace in new_namespaces or step.ref.identity[:2] in new_kinds)
            try:
                verdicts.append((step, _verdict(step, None if unseen else kube.apply_dry_run(
                    step.body, field_manager=FIELD_MANAGER), dry_run=run.dry_run)))
            except CanaryError as exc:
                run.errors.append(f"{step.source}: {exc}")
        if run.errors:
            return False
        for step, change in verdicts:
            _write(kube, step, change, run)
        if run.errors:
            return False
        crds = [s.ref.name for s in stage if _is_crd(s.body)]
        if crds and not run.dry_run and not _wait_established(kube, crds, run, timeout=crd_timeout):
            return False
    return True


def _verdict(step: Step, result: Obj | None, *, dry_run: bool) -> Change | None:
    """None when the dry run's ``result`` equals the live object, else the change (with its diff in a dry
    run; a ``result`` of None is an object the dry run could not validate: see _apply_stages)."""
    if result is None:
        return Change(step.ref, _diff(step.ref, None, step.body), NOT_VALIDATED)
    if step.live is not None and _comparable(result) == _comparable(step.live):
        return None
    return Change(step.ref, (_diff(step.ref, step.live, result) or "(field ownership only)\n") if dry_run else "",
                  step.note)


def _write(kube: Kube, step: Step, change: Change | None, run: _Run) -> None:
    """Apply ``step`` when its dry run found a ``change``; tally either way."""
    if change is None:
        run.unchanged.append(step.ref)
        if step.live is not None:
            _confirm(run, step, step.live)
        return
    if change.note == NOT_VALIDATED:
        run.created.append(change)
        return
    if not run.dry_run:
        try:
            _confirm(run, step, kube.apply(step.body, field_manager=FIELD_MANAGER))
        except CanaryError as exc:
            run.errors.append(f"{step.source}: {exc}")
            return
    (run.created if step.live is None else run.changed).append(change)


def _confirm(run: _Run, step: Step, seen: Obj) -> None:
    """Record that the object ``seen`` matches Git's manifest of ``step``, unless what is applied depends on
    more than the manifest and the object (a body trimmed for the engine depends on Canaries too)."""
    version = (seen.get("metadata") or {}).get("resourceVersion")
    if version is not None and step.digest and not step.note:
        run.confirmed[step.ref.identity] = Confirmed(step.digest, str(version), _live_digest(seen))


def _live_digest(obj: Obj) -> str:
    """The digest of a live object as ``_comparable`` sees it: its content and our field ownership."""
    content, ours = _comparable(obj)
    return digest({"content": content, "ours": ours})


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
