"""ConfigMaps and Secrets a pod template uses: found, checksummed, copied and re-pointed.

A change to a tracked config starts a canary run like a change to the template; promotion copies
each tracked config to ``<name>-primary`` and the primary's pod spec refers to those copies, so
the primary never sees the canary's configuration before it is promoted.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass

from canary.kube import Obj

TRACKING_ANNOTATION = "canary.dev/config-tracking"
PRIMARY_SUFFIX = "-primary"


@dataclass(frozen=True, order=True)
class ConfigRef:
    """A ConfigMap or Secret by kind and name."""

    kind: str  # "ConfigMap" or "Secret"
    name: str

    @property
    def key(self) -> str:
        """The key used in status.trackedConfigs, e.g. ``configmap/app-settings``."""
        return f"{self.kind.lower()}/{self.name}"


def _containers(pod_spec: Obj) -> Iterator[Obj]:
    yield from pod_spec.get("initContainers") or []
    yield from pod_spec.get("containers") or []


def _volume_refs(pod_spec: Obj) -> Iterator[tuple[Obj, str, str]]:
    """(dict holding the name, name key, kind) for every config a volume mounts."""
    for volume in pod_spec.get("volumes") or []:
        if "configMap" in volume:
            yield volume["configMap"], "name", "ConfigMap"
        if "secret" in volume:
            yield volume["secret"], "secretName", "Secret"
        for source in (volume.get("projected") or {}).get("sources") or []:
            if "configMap" in source:
                yield source["configMap"], "name", "ConfigMap"
            if "secret" in source:
                yield source["secret"], "name", "Secret"


def _env_refs(pod_spec: Obj) -> Iterator[tuple[Obj, str, str]]:
    for container in _containers(pod_spec):
        for env in container.get("env") or []:
            source = env.get("valueFrom") or {}
            if "configMapKeyRef" in source:
                yield source["configMapKeyRef"], "name", "ConfigMap"
            if "secretKeyRef" in source:
                yield source["secretKeyRef"], "name", "Secret"
        for env_from in container.get("envFrom") or []:
            if "configMapRef" in env_from:
                yield env_from["configMapRef"], "name", "ConfigMap"
            if "secretRef" in env_from:
                yield env_from["secretRef"], "name", "Secret"


def _refs(pod_spec: Obj) -> Iterator[tuple[Obj, str, str]]:
    yield from _volume_refs(pod_spec)
    yield from _env_refs(pod_spec)


def referenced(pod_spec: Obj) -> set[ConfigRef]:
    """Every ConfigMap and Secret the pod spec refers to."""
    return {ConfigRef(kind, holder[key]) for holder, key, kind in _refs(pod_spec) if holder.get(key)}


def is_tracked(config: Obj) -> bool:
    """Configs annotated ``canary.dev/config-tracking: disabled`` are left alone."""
    annotations = (config.get("metadata") or {}).get("annotations") or {}
    return annotations.get(TRACKING_ANNOTATION) != "disabled"


def checksum(config: Obj) -> str:
    """A digest of a config's content (data and binaryData)."""
    content = {"data": config.get("data") or {}, "binaryData": config.get("binaryData") or {}}
    return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()[:16]


def for_primary(pod_spec: Obj, tracked: set[ConfigRef]) -> Obj:
    """A copy of ``pod_spec`` whose references to tracked configs point at the -primary copies."""
    result = copy.deepcopy(pod_spec)
    for holder, key, kind in _refs(result):
        if ConfigRef(kind, holder.get(key, "")) in tracked:
            holder[key] = holder[key] + PRIMARY_SUFFIX
    return result


def for_target(pod_spec: Obj, copies: set[ConfigRef]) -> Obj:
    """The inverse of ``for_primary``: references to the ``copies`` point back at the target's configs."""
    result = copy.deepcopy(pod_spec)
    for holder, key, kind in _refs(result):
        if ConfigRef(kind, holder.get(key, "")) in copies:
            holder[key] = holder[key].removesuffix(PRIMARY_SUFFIX)
    return result


def primary_copy(config: Obj, *, owner: Obj) -> Obj:
    """The ``<name>-primary`` copy of a config, owned by the Canary."""
    meta = config["metadata"]
    body: Obj = {
        "apiVersion": "v1",
        "kind": config["kind"],
        "metadata": {
            "name": meta["name"] + PRIMARY_SUFFIX,
            "namespace": meta["namespace"],
            "labels": dict(meta.get("labels") or {}),
            "annotations": {k: v for k, v in (meta.get("annotations") or {}).items()
                            if not k.startswith("kubectl.kubernetes.io/")},
            "ownerReferences": [owner],
        },
    }
    for field in ("data", "binaryData", "type", "immutable"):
        if field in config:
            body[field] = config[field]
    return body
