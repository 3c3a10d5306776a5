"""The target's autoscaler, copied for the primary: a HorizontalPodAutoscaler or a KEDA ScaledObject.

``<name>-primary`` is the target's autoscaler pointed at the primary, with
spec.autoscalerRef.primaryScalerReplicas as its bounds. For a ScaledObject, as Flagger's
pkg/canary/scaled_object_reconciler.go does, each trigger's ``query`` is taken from
primaryScalerQueries (by trigger name) or, without them, has the target's name replaced by the
primary's; and the target's own ScaledObject is paused at zero replicas
(``autoscaling.keda.sh/paused-replicas``) while the target is scaled down, so KEDA does not scale
it back up between releases.
"""

from __future__ import annotations

import copy
import re

from canary.defaults import FIELD_MANAGER
from canary.errors import PermanentError, TemporaryError
from canary.kube import Obj
from canary.kube.apply import apply_if_changed
from canary.kube.cache import Informer
from canary.kube.client import Kube
from canary.models.canary import Canary

HPA = ("autoscaling/v2", "HorizontalPodAutoscaler")
SCALED_OBJECT = ("keda.sh/v1alpha1", "ScaledObject")
PAUSED_REPLICAS = "autoscaling.keda.sh/paused-replicas"


def _bounds(canary: Canary, spec: Obj, *, low: str, high: str) -> None:
    ref = canary.spec.autoscaler_ref
    bounds = ref.primary_scaler_replicas if ref is not None else None
    if bounds is not None and bounds.min_replicas is not None:
        spec[low] = bounds.min_replicas
    if bounds is not None and bounds.max_replicas is not None:
        spec[high] = bounds.max_replicas


def primary_hpa(hpa: Obj, canary: Canary, *, owner: Obj) -> Obj:
    """The HorizontalPodAutoscaler of the primary."""
    spec = copy.deepcopy(hpa["spec"])
    spec["scaleTargetRef"] = {**spec["scaleTargetRef"], "name": canary.spec.primary_name}
    _bounds(canary, spec, low="minReplicas", high="maxReplicas")
    return {"apiVersion": hpa["apiVersion"], "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": f"{hpa['metadata']['name']}-primary", "namespace": canary.metadata.namespace,
                         "ownerReferences": [owner]},
            "spec": spec}


def primary_query(query: str, canary: Canary) -> str:
    """A trigger's query about the target, made about the primary (``<target>-canary`` too, as Flagger)."""
    target = canary.spec.target_ref.name
    return re.sub(rf"{re.escape(target)}(-canary)?", canary.spec.primary_name, query)


def primary_scaled_object(scaled_object: Obj, canary: Canary, *, owner: Obj) -> Obj:
    """The ScaledObject of the primary."""
    ref = canary.spec.autoscaler_ref
    queries = (ref.primary_scaler_queries if ref is not None else None) or {}
    spec = copy.deepcopy(scaled_object["spec"])
    spec["scaleTargetRef"] = {**spec["scaleTargetRef"], "name": canary.spec.primary_name}
    for trigger in spec.get("triggers") or []:
        metadata = trigger.setdefault("metadata", {})
        if queries:
            if trigger.get("name") in queries:
                metadata["query"] = queries[trigger["name"]]
        elif "query" in metadata:
            metadata["query"] = primary_query(metadata["query"], canary)
    hpa_config = (spec.get("advanced") or {}).get("horizontalPodAutoscalerConfig") or {}
    if hpa_config.get("name"):
        hpa_config["name"] = f"{hpa_config['name']}-primary"
    _bounds(canary, spec, low="minReplicaCount", high="maxReplicaCount")
    meta = scaled_object["metadata"]
    annotations = {k: v for k, v in (meta.get("annotations") or {}).items()
                   if k != PAUSED_REPLICAS and not k.startswith("kubectl.kubernetes.io/")}
    return {"apiVersion": scaled_object["apiVersion"], "kind": "ScaledObject",
            "metadata": {"name": f"{meta['name']}-primary", "namespace": canary.metadata.namespace,
                         "labels": dict(meta.get("labels") or {}), "annotations": annotations,
                         "ownerReferences": [owner]},
            "spec": spec}


class Autoscalers:
    """Keeps the primary's autoscaler a copy of the target's, and pauses the target's ScaledObject."""

    def __init__(self, kube: Kube, *, hpas: Informer, scaled_objects: Informer) -> None:
        self._kube = kube
        self._caches = {HPA[1]: hpas, SCALED_OBJECT[1]: scaled_objects}

    def _target_scaler(self, canary: Canary) -> Obj | None:
        ref = canary.spec.autoscaler_ref
        if ref is None:
            return None
        cache = self._caches[ref.kind]
        found = cache.get(canary.metadata.namespace, ref.name)
        if found is None and not cache.synced:
            raise TemporaryError(f"Canary {canary.metadata.namespace}/{canary.metadata.name}: spec.autoscalerRef: "
                                 f"the {ref.kind} cache is not loaded yet (are its CRDs installed?)")
        if found is None:
            raise PermanentError(f"Canary {canary.metadata.namespace}/{canary.metadata.name}: spec.autoscalerRef: "
                                 f"{ref.kind} {ref.name} not found")
        return found

    def reconcile_primary(self, canary: Canary, *, owner: Obj) -> None:
        """Create or correct the primary's autoscaler."""
        found = self._target_scaler(canary)
        if found is None:
            return
        kind = found["kind"]
        body = primary_hpa(found, canary, owner=owner) if kind == HPA[1] else \
            primary_scaled_object(found, canary, owner=owner)
        apply_if_changed(self._kube, self._caches[kind], body, field_manager=FIELD_MANAGER)

    def hold_target(self, canary: Canary, *, held: bool) -> None:
        """Pause the target's ScaledObject at zero replicas (``held``), or let it scale again."""
        ref = canary.spec.autoscaler_ref
        if ref is None or ref.kind != SCALED_OBJECT[1]:
            return
        found = self._target_scaler(canary)
        assert found is not None  # noqa: S101 - _target_scaler raises when it is missing
        paused = PAUSED_REPLICAS in (found["metadata"].get("annotations") or {})
        if paused == held:
            return
        patch = {"metadata": {"annotations": {PAUSED_REPLICAS: "0" if held else None}}}
        updated = self._kube.merge_patch(*SCALED_OBJECT, ref.name, patch, namespace=canary.metadata.namespace)
        self._caches[SCALED_OBJECT[1]].store(updated)
