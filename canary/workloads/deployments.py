"""Deployment and DaemonSet targets: the primary copy, tracked configs, scaling, promotion and readiness.

A DaemonSet cannot be scaled, so, as Flagger does, the target DaemonSet is held at no pods by a
node selector that no node matches (``canary.dev/scale-to-zero``) while it is idle; that selector
is left out of the revision and of the primary's copy.

The primary is ``<target>-primary``: the target's spec with the selector label's value suffixed
``-primary`` and its config references pointed at the ``-primary`` copies, annotated with the
revision it was made from, so that the engine records what the primary really runs. Reads come from the
caches; writes go through server-side apply, and only when something differs.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from datetime import datetime

from canary.defaults import FIELD_MANAGER
from canary.errors import PermanentError
from canary.kube import Obj
from canary.kube.apply import apply_if_changed
from canary.kube.cache import Informer
from canary.kube.client import Kube
from canary.models.canary import Canary
from canary.workloads import configs
from canary.workloads.autoscalers import Autoscalers
from canary.workloads.configs import ConfigRef
from canary.workloads.readiness import Readiness, daemonset_readiness, deployment_readiness
from canary.workloads.revision import revision

REVISION_ANNOTATION = "canary.dev/revision"
SCALE_TO_ZERO = "canary.dev/scale-to-zero"
KINDS = {"Deployment": ("apps/v1", "Deployment"), "DaemonSet": ("apps/v1", "DaemonSet")}
DEFAULT_SELECTOR_LABELS = ("app", "name", "app.kubernetes.io/name")
_OWN_ANNOTATIONS = ("canary.dev/", "kubectl.kubernetes.io/last-applied-configuration", "deployment.kubernetes.io/")


def owner_reference(obj: Obj) -> Obj:
    """An owner reference that makes ``obj`` (the Canary) own what we generate for it."""
    meta = obj["metadata"]
    return {"apiVersion": obj["apiVersion"], "kind": obj["kind"], "name": meta["name"], "uid": meta["uid"],
            "controller": True, "blockOwnerDeletion": True}


def selector_label(target: Obj, keys: tuple[str, ...]) -> tuple[str, str]:
    """The first of ``keys`` that the target's selector uses, with its value."""
    labels = ((target.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
    for key in keys:
        if key in labels:
            return key, labels[key]
    name = target["metadata"]["name"]
    raise PermanentError(f"{target['kind']} {target['metadata'].get('namespace')}/{name}: spec.selector.matchLabels "
                         f"must contain one of {', '.join(keys)}")


def without_hold(template: Obj) -> Obj:
    """A pod template without the scale-to-zero node selector (what the user wrote)."""
    selector = (template.get("spec") or {}).get("nodeSelector") or {}
    if SCALE_TO_ZERO not in selector:
        return template
    released = copy.deepcopy(template)
    node_selector = {k: v for k, v in selector.items() if k != SCALE_TO_ZERO}
    if node_selector:
        released["spec"]["nodeSelector"] = node_selector
    else:
        released["spec"].pop("nodeSelector")
    return released


def primary_deployment(target: Obj, *, name: str, selector: tuple[str, str], tracked: set[ConfigRef],
                       owner: Obj, replicas: int | None, revision: str, label_prefixes: tuple[str, ...] = (),
                       kind: str = "Deployment") -> Obj:
    """The primary (a Deployment or DaemonSet, as the target) built from the target's current spec, at
    ``revision``; ``replicas`` for a Deployment.

    The target's labels are copied, all of them or those starting with one of ``label_prefixes``.
    """
    key, value = selector
    spec = copy.deepcopy(target["spec"])
    spec["template"] = without_hold(spec["template"])
    if replicas is not None:
        spec["replicas"] = replicas
    spec["selector"] = {"matchLabels": {**spec["selector"].get("matchLabels", {}), key: f"{value}-primary"}}
    template = spec["template"]
    template_meta = template.setdefault("metadata", {})
    template_meta["labels"] = {**(template_meta.get("labels") or {}), key: f"{value}-primary"}
    template["spec"] = configs.for_primary(template["spec"], tracked)
    meta = target["metadata"]
    copied = {k: v for k, v in (meta.get("labels") or {}).items()
              if not label_prefixes or k.startswith(label_prefixes) or "*" in label_prefixes}
    labels = {**copied, key: f"{value}-primary"}
    annotations = {k: v for k, v in (meta.get("annotations") or {}).items() if not k.startswith(_OWN_ANNOTATIONS)}
    annotations[REVISION_ANNOTATION] = revision
    return {
        "apiVersion": KINDS[kind][0],
        "kind": kind,
        "metadata": {"name": name, "namespace": meta["namespace"], "labels": labels, "annotations": annotations,
                     "ownerReferences": [owner]},
        "spec": spec,
    }


@dataclass(frozen=True)
class TargetState:
    """What a tick knows about a target (a Deployment or a DaemonSet)."""

    target: Obj
    primary: Obj | None
    selector: tuple[str, str]
    tracked: dict[ConfigRef, Obj]
    kind: str = "Deployment"

    @property
    def revision(self) -> str:
        """The revision of the target's template and tracked configs."""
        return revision(without_hold(self.target["spec"]["template"]), self.tracked_checksums)

    @property
    def held(self) -> bool:
        """A DaemonSet target held at no pods by the scale-to-zero node selector."""
        template_spec = self.target["spec"]["template"].get("spec") or {}
        return SCALE_TO_ZERO in (template_spec.get("nodeSelector") or {})

    @property
    def primary_revision(self) -> str | None:
        """The revision the primary was made from, when it says."""
        if self.primary is None:
            return None
        return (self.primary["metadata"].get("annotations") or {}).get(REVISION_ANNOTATION)

    @property
    def tracked_checksums(self) -> dict[str, str]:
        """status.trackedConfigs: ``configmap/name`` -> checksum."""
        return {ref.key: configs.checksum(obj) for ref, obj in sorted(self.tracked.items())}


@dataclass(frozen=True)
class Promoted:
    """The release the primary runs, as the target had it: its pod template and tracked configs."""

    template: Obj
    configs: dict[ConfigRef, Obj]


def _owned_by(obj: Obj, uid: str | None) -> bool:
    return uid is not None and any(o.get("uid") == uid for o in obj["metadata"].get("ownerReferences") or [])


class Deployments:
    """Reads and writes Deployment and DaemonSet targets and everything generated for them."""

    def __init__(self, kube: Kube, *, deployments: Informer, configmaps: Informer, secrets: Informer,
                 autoscalers: Autoscalers | None = None, selector_labels: tuple[str, ...] = DEFAULT_SELECTOR_LABELS,
                 track_configs: bool = True, label_prefixes: tuple[str, ...] = (),
                 daemonsets: Informer | None = None) -> None:
        self._kube = kube
        self._workloads = {"Deployment": deployments, **({"DaemonSet": daemonsets} if daemonsets else {})}
        self._configs = {"ConfigMap": configmaps, "Secret": secrets}
        self._autoscalers = autoscalers
        self._selector_labels = selector_labels
        self._track_configs = track_configs
        self._label_prefixes = label_prefixes

    def observe(self, canary: Canary) -> TargetState | None:
        """The target, its primary and its tracked configs from the caches; None without a target."""
        namespace = canary.metadata.namespace
        kind = canary.spec.target_ref.kind
        if kind not in self._workloads:
            raise PermanentError(f"Canary {namespace}/{canary.metadata.name}: spec.targetRef.kind: {kind} targets "
                                 f"are not supported; supported: {', '.join(self._workloads)}")
        cache = self._workloads[kind]
        # The cached objects themselves: whatever builds a changed object from them copies first.
        target = cache.peek(namespace, canary.spec.target_ref.name)
        if target is None:
            return None
        primary = cache.peek(namespace, canary.spec.primary_name)
        tracked: dict[ConfigRef, Obj] = {}
        if self._track_configs:
            for ref in sorted(configs.referenced(target["spec"]["template"].get("spec") or {})):
                found = self._configs[ref.kind].peek(namespace, ref.name)
                if found is None and primary is None:
                    found = self._fetch(ref, namespace or "")
                if found is not None and configs.is_tracked(found):
                    tracked[ref] = found
        return TargetState(target=target, primary=primary,
                           selector=selector_label({**target, "kind": kind}, self._selector_labels), tracked=tracked,
                           kind=kind)

    def _fetch(self, ref: ConfigRef, namespace: str) -> Obj | None:
        """A config the cache does not hold yet, from the API server: one written just before its
        Canary may still be on its way to the cache, and the primary made now must use its copy."""
        cache = self._configs[ref.kind]
        found = self._kube.get(cache.api_version, ref.kind, ref.name, namespace=namespace)
        if found is not None:
            cache.store(found)
        return found

    def promoted(self, canary: Canary, state: TargetState) -> Promoted | None:
        """What was last promoted, undoing the primary's renames; None before there is a primary.

        Only references to config copies this Canary owns are renamed back, so a config that is
        really called ``...-primary`` stays as it is.
        """
        if state.primary is None:
            return None
        template = copy.deepcopy(state.primary["spec"]["template"])
        key, value = state.selector
        labels = (template.get("metadata") or {}).get("labels") or {}
        if labels.get(key) == f"{value}{configs.PRIMARY_SUFFIX}":
            labels[key] = value
        copies: dict[ConfigRef, Obj] = {}
        for ref in configs.referenced(template.get("spec") or {}):
            found = self._configs[ref.kind].get(canary.metadata.namespace, ref.name)
            if found is not None and ref.name.endswith(configs.PRIMARY_SUFFIX) and \
                    _owned_by(found, canary.metadata.uid):
                copies[ref] = found
        template["spec"] = configs.for_target(template.get("spec") or {}, set(copies))
        return Promoted(template=template, configs={
            ConfigRef(ref.kind, ref.name.removesuffix(configs.PRIMARY_SUFFIX)): obj for ref, obj in copies.items()})

    def readiness(self, canary: Canary, deployment: Obj | None, *, primary: bool, now: datetime) -> Readiness:
        """Flagger's readiness rules with the Canary's deadline and thresholds."""
        analysis = canary.spec.analysis
        threshold = (analysis.effective_primary_ready_threshold if primary
                     else analysis.effective_canary_ready_threshold)
        if canary.spec.target_ref.kind == "DaemonSet":
            return daemonset_readiness(deployment, threshold=threshold)
        found = deployment_readiness(deployment, deadline_seconds=canary.spec.progress_deadline_seconds,
                                     threshold=threshold, now=now)
        if primary and found.ready and deployment is not None and deployment["spec"].get("replicas") == 0:
            return Readiness(False, f"{deployment['metadata']['name']} is scaled to zero", stuck=True)
        return found

    def ensure_primary(self, canary_obj: Obj, canary: Canary, state: TargetState) -> None:
        """Create the primary (and config copies) if it does not exist yet, and keep the primary's
        autoscaler a copy of the target's (an unchanged one costs no request)."""
        if state.primary is None:
            self._copy_configs(canary_obj, state)
            replicas = state.target["spec"].get("replicas", 1) or 1
            self._apply(state, primary_deployment(
                state.target, name=canary.spec.primary_name, selector=state.selector, tracked=set(state.tracked),
                owner=owner_reference(canary_obj), replicas=replicas if state.kind == "Deployment" else None,
                revision=state.revision, label_prefixes=self._label_prefixes, kind=state.kind))
        if self._autoscalers is not None:
            self._autoscalers.reconcile_primary(canary, owner=owner_reference(canary_obj))

    def promote(self, canary_obj: Obj, canary: Canary, state: TargetState) -> None:
        """Copy the target's template and tracked configs to the primary."""
        self._copy_configs(canary_obj, state)
        current = (state.primary or {}).get("spec", {}).get("replicas") or state.target["spec"].get("replicas", 1)
        self._apply(state, primary_deployment(
            state.target, name=canary.spec.primary_name, selector=state.selector, tracked=set(state.tracked),
            owner=owner_reference(canary_obj), replicas=(current or 1) if state.kind == "Deployment" else None,
            revision=state.revision, label_prefixes=self._label_prefixes, kind=state.kind))

    def scale_target(self, canary: Canary, state: TargetState, *, up: bool) -> None:
        """Scale the target to zero, or up to the primary's size (a DaemonSet: hold or release it)."""
        if state.kind == "DaemonSet":
            self._hold_daemonset(canary, state, held=not up)
            return
        want = 0
        if up:
            want = int(((state.primary or {}).get("spec") or {}).get("replicas") or 1)
        if self._autoscalers is not None:
            self._autoscalers.hold_target(canary, held=not up)
        if state.target["spec"].get("replicas") == want:
            return
        updated = self._kube.merge_patch("apps/v1", "Deployment", canary.spec.target_ref.name,
                                         {"spec": {"replicas": want}}, namespace=canary.metadata.namespace)
        self._workloads["Deployment"].store(updated)

    def _hold_daemonset(self, canary: Canary, state: TargetState, *, held: bool) -> None:
        """Keep the target DaemonSet's pods off every node (``held``), or let them run again."""
        if state.held == held:
            return
        patch = {"spec": {"template": {"spec": {"nodeSelector": {SCALE_TO_ZERO: "true" if held else None}}}}}
        updated = self._kube.merge_patch(*KINDS["DaemonSet"], canary.spec.target_ref.name, patch,
                                         namespace=canary.metadata.namespace)
        self._workloads["DaemonSet"].store(updated)

    def _apply(self, state: TargetState, body: Obj) -> None:
        apply_if_changed(self._kube, self._workloads[state.kind], body, field_manager=FIELD_MANAGER)

    def _copy_configs(self, canary_obj: Obj, state: TargetState) -> None:
        owner = owner_reference(canary_obj)
        for ref, obj in state.tracked.items():
            apply_if_changed(self._kube, self._configs[ref.kind], configs.primary_copy(obj, owner=owner),
                             field_manager=FIELD_MANAGER)
