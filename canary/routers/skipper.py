"""The Skipper router: a canary Ingress ``<ingress>-canary``, a copy of spec.ingressRef's Ingress whose
paths to the apex Service go to ``<svc>-primary`` and, added beside each, to ``<svc>-canary``, with
Skipper's ``zalando.org/backend-weights`` splitting the traffic between them.

As Flagger's pkg/router/skipper.go: the user's Ingress is never changed. While the canary has
traffic, the predicate ``Weight(100)`` put first in ``zalando.org/skipper-predicate`` makes the
canary Ingress's routes win over the user's; with no canary traffic ``False()`` takes its place,
so the canary Ingress is off and requests flow through the user's Ingress to the apex Service
again (that is also how finalize hands the traffic back). Ingresses are core objects, so no CRD
is needed. Weights only: Skipper's router in Flagger has no A/B.

``route_ids`` names the routes Skipper builds from an Ingress, as its Kubernetes data client does;
the local traffic simulator labels Skipper's series with them, so that the built-in skipper
queries, which select the canary backend's routes by name, run unchanged.
"""

from __future__ import annotations

import copy
import json
import math
import re

from canary.errors import PermanentError
from canary.kube import Obj
from canary.models.canary import Canary
from canary.routers.base import Getter, Weights, split_of
from canary.routers.weighted import CanaryIngressRouter

INGRESS = ("networking.k8s.io/v1", "Ingress")
BACKEND_WEIGHTS = "zalando.org/backend-weights"
PREDICATE = "zalando.org/skipper-predicate"
ON = "Weight(100)"
OFF = "False()"
_NOT_COPIED = ("kubectl.kubernetes.io/last-applied-configuration",)
_NON_WORD = re.compile(r"\W", re.ASCII)


def canary_ingress_name(canary: Canary) -> str:
    """``<ingressRef>-canary``."""
    return f"{_ingress_ref(canary)}-canary"


def _ingress_ref(canary: Canary) -> str:
    ref = canary.spec.ingress_ref
    if ref is None:
        raise PermanentError(f"Canary {canary.metadata.namespace}/{canary.metadata.name}: spec.ingressRef: the "
                             "skipper router needs the Ingress that routes to the apex Service")
    return ref.name


def predicate(current: str, *, canary_weight: int) -> str:
    """``current`` (the user's predicates) led by ``Weight(100)``, or ``False()`` without canary traffic."""
    kept = [p for p in (part.strip() for part in current.split("&&")) if p and p not in (ON, OFF)]
    return " && ".join([ON if canary_weight > 0 else OFF, *kept])


def build(canary: Canary, main: Obj, weights: Weights, *, owner: Obj) -> Obj:
    """The canary Ingress: ``main`` with each apex path sent to the primary plus a copy to the canary."""
    apex, primary, canary_service = canary.spec.service_names
    spec = copy.deepcopy(main.get("spec") or {})
    routed = False
    for rule in spec.get("rules") or []:
        paths = (rule.get("http") or {}).get("paths") or []
        added = []
        for path in paths:
            service = (path.get("backend") or {}).get("service") or {}
            if service.get("name") == apex:
                service["name"] = primary
                twin = copy.deepcopy(path)
                twin["backend"]["service"]["name"] = canary_service
                added.append(twin)
        paths.extend(added)
        routed = routed or bool(added)
    if not routed:
        raise PermanentError(f"Canary {canary.metadata.namespace}/{canary.metadata.name}: spec.ingressRef: Ingress "
                             f"{main['metadata']['name']} has no path whose backend is the apex Service {apex}")
    annotations = {k: v for k, v in (main["metadata"].get("annotations") or {}).items() if k not in _NOT_COPIED}
    # Go's encoding/json sorts map keys: the annotation reads exactly as Flagger writes it.
    annotations[BACKEND_WEIGHTS] = json.dumps({primary: weights.primary, canary_service: weights.canary},
                                              sort_keys=True, separators=(",", ":"))
    annotations[PREDICATE] = predicate(annotations.get(PREDICATE, ""), canary_weight=weights.canary)
    return {"apiVersion": INGRESS[0], "kind": "Ingress",
            "metadata": {"name": canary_ingress_name(canary), "namespace": canary.metadata.namespace,
                         "labels": dict(main["metadata"].get("labels") or {}), "annotations": annotations,
                         "ownerReferences": [owner]},
            "spec": spec}


def ingress_weights(ingress: Obj, canary: Canary) -> Weights:
    """The split of a canary Ingress's backend weights (whole numbers, as Flagger writes them)."""
    meta = ingress["metadata"]
    where = f"Ingress {meta.get('namespace')}/{meta['name']}: annotation {BACKEND_WEIGHTS}"
    raw = (meta.get("annotations") or {}).get(BACKEND_WEIGHTS)
    if raw is None:
        raise PermanentError(f"{where} is missing")
    try:
        found = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise PermanentError(f"{where} is not JSON: {raw!r}") from exc
    if not isinstance(found, dict) or not all(_whole(v) for v in found.values()):
        raise PermanentError(f"{where} must map Services to whole numbers, got {raw!r}")
    return split_of({str(k): int(v) for k, v in found.items()}, canary.spec.service_names[1:], where=where)


def _whole(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) \
        and float(value).is_integer()


def read_weights(get: Getter, canary: Canary) -> Weights | None:
    """The split of the canary Ingress, or None before there is one."""
    if canary.spec.ingress_ref is None:
        return None
    found = get(*INGRESS, canary.metadata.namespace or "default", canary_ingress_name(canary))
    return ingress_weights(found, canary) if found is not None else None


def route_id(*, namespace: str, ingress: str, host: str, path: str, service: str) -> str:
    """The id Skipper gives the route of one Ingress path: ``kube_<ns>__<ingress>__<host>__<path>__<service>``,
    every character that is not a letter, digit or underscore made ``_``."""
    parts = (_NON_WORD.sub("_", part) for part in (namespace, ingress, host, path, service))
    return "kube_{}__{}__{}__{}__{}".format(*parts)


def route_ids(ingress: Obj) -> dict[str, str]:
    """Each backend Service of ``ingress`` -> the id of Skipper's route to it (its first path)."""
    meta = ingress["metadata"]
    found: dict[str, str] = {}
    for rule in (ingress.get("spec") or {}).get("rules") or []:
        for path in (rule.get("http") or {}).get("paths") or []:
            service = ((path.get("backend") or {}).get("service") or {}).get("name")
            if service and service not in found:
                found[service] = route_id(namespace=meta.get("namespace") or "", ingress=meta["name"],
                                          host=rule.get("host") or "", path=path.get("path") or "", service=service)
    return found


def served_routes(get: Getter, canary: Canary) -> dict[str, str]:
    """The primary and canary Services -> the ids of the routes that carry their requests now.

    The canary Ingress's routes while it is on; when ``False()`` turns it off, the primary's requests
    arrive through the user's Ingress and its route to the apex Service.
    """
    namespace = canary.metadata.namespace or "default"
    apex, primary, canary_service = canary.spec.service_names
    found = get(*INGRESS, namespace, canary_ingress_name(canary))
    if found is None:
        return {}
    annotations = found["metadata"].get("annotations") or {}
    if OFF not in (p.strip() for p in annotations.get(PREDICATE, "").split("&&")):
        ids = route_ids(found)
        return {s: ids[s] for s in (primary, canary_service) if s in ids}
    main = get(*INGRESS, namespace, _ingress_ref(canary))
    apex_route = route_ids(main).get(apex) if main is not None else None
    return {primary: apex_route} if apex_route else {}


class SkipperRouter(CanaryIngressRouter):
    """Weighted routing through Skipper's backend weights on a canary Ingress."""

    name = "skipper"
    read = staticmethod(read_weights)
    ingress_name = staticmethod(_ingress_ref)
    copy = staticmethod(build)


# Ingresses are core objects: the cache is always served.
PLUGIN = SkipperRouter.plugin(optional=False)
