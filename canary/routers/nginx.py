"""The NGINX router: a canary Ingress ``<ingress>-canary``, a copy of spec.ingressRef's Ingress that
sends to ``<svc>-canary``, with ingress-nginx's canary annotations.

As Flagger's pkg/router/ingress.go: ``canary-weight`` carries the canary's share of the traffic; for
A/B testing the first header match of analysis.match becomes ``canary-by-header`` with
``-value`` (exact) or ``-pattern`` (regex), and a ``cookie`` header match ``canary-by-cookie``,
while the canary has traffic. The main Ingress stays the user's: it routes to the apex Service.
Ingresses are core Kubernetes objects, so no CRD is needed.
"""

from __future__ import annotations

import copy

from canary.errors import PermanentError
from canary.kube import Obj
from canary.models.canary import Canary
from canary.routers.base import Getter, Weights
from canary.routers.weighted import CanaryIngressRouter

INGRESS = ("networking.k8s.io/v1", "Ingress")
PREFIX = "nginx.ingress.kubernetes.io/"
CANARY = f"{PREFIX}canary"
WEIGHT = f"{PREFIX}canary-weight"
BY_HEADER = f"{PREFIX}canary-by-header"
BY_HEADER_VALUE = f"{PREFIX}canary-by-header-value"
BY_HEADER_PATTERN = f"{PREFIX}canary-by-header-pattern"
BY_COOKIE = f"{PREFIX}canary-by-cookie"
_OURS = (CANARY, "kubectl.kubernetes.io/last-applied-configuration")


def canary_ingress_name(canary: Canary) -> str:
    """``<ingressRef>-canary``."""
    return f"{_ingress_ref(canary)}-canary"


def _ingress_ref(canary: Canary) -> str:
    ref = canary.spec.ingress_ref
    if ref is None:
        raise PermanentError(f"Canary {canary.metadata.namespace}/{canary.metadata.name}: spec.ingressRef: the nginx "
                             "router needs the Ingress that routes to the apex Service")
    return ref.name


def match_annotations(canary: Canary) -> dict[str, str]:
    """analysis.match as ingress-nginx's canary-by-* annotations; a match it cannot express is an error."""
    found: dict[str, str] = {}
    for index, match in enumerate(canary.spec.analysis.match or []):
        where = f"Canary {canary.metadata.namespace}/{canary.metadata.name}: spec.analysis.match[{index}]"
        other = [f for f in ("uri", "method", "query_params", "source_labels") if getattr(match, f) is not None]
        if other or match.model_extra:
            raise PermanentError(f"{where}: the nginx router matches headers and cookies only, not "
                                 f"{', '.join(other + sorted(match.model_extra or {}))}")
        for header, value in (match.headers or {}).items():
            if header.lower() == "cookie":
                if value.exact is None:
                    raise PermanentError(f"{where}.headers.cookie: the nginx router needs exact (a cookie name)")
                found[BY_COOKIE] = value.exact
            elif value.exact is not None:
                found.update({BY_HEADER: header, BY_HEADER_VALUE: value.exact})
            elif value.regex is not None:
                found.update({BY_HEADER: header, BY_HEADER_PATTERN: value.regex})
            else:
                raise PermanentError(f"{where}.headers.{header}: the nginx router needs exact or regex")
    return found


def build(canary: Canary, main: Obj, weights: Weights, *, owner: Obj) -> Obj:
    """The canary Ingress: ``main`` sending to the canary Service, with the annotations for ``weights``."""
    apex, _, canary_service = canary.spec.service_names
    spec = copy.deepcopy(main.get("spec") or {})
    routed = False
    for rule in spec.get("rules") or []:
        for path in (rule.get("http") or {}).get("paths") or []:
            service = (path.get("backend") or {}).get("service") or {}
            if service.get("name") == apex:
                service["name"] = canary_service
                routed = True
    if not routed:
        raise PermanentError(f"Canary {canary.metadata.namespace}/{canary.metadata.name}: spec.ingressRef: Ingress "
                             f"{main['metadata']['name']} has no path whose backend is the apex Service {apex}")
    kept = {k: v for k, v in (main["metadata"].get("annotations") or {}).items()
            if not k.startswith(_OURS)}
    annotations = {**kept, CANARY: "true"}
    matches = match_annotations(canary)
    if matches and weights.canary > 0:
        annotations.update(matches)
    else:
        annotations[WEIGHT] = str(weights.canary)
    return {"apiVersion": INGRESS[0], "kind": "Ingress",
            "metadata": {"name": canary_ingress_name(canary), "namespace": canary.metadata.namespace,
                         "labels": dict(main["metadata"].get("labels") or {}), "annotations": annotations,
                         "ownerReferences": [owner]},
            "spec": spec}


def ingress_weights(ingress: Obj) -> Weights:
    """The split a canary Ingress makes: all matching traffic when it routes by header or cookie."""
    annotations = ingress["metadata"].get("annotations") or {}
    if BY_HEADER in annotations or BY_COOKIE in annotations:
        return Weights(primary=0, canary=100)
    try:
        canary = int(annotations.get(WEIGHT, "0"))
    except ValueError as exc:
        raise PermanentError(f"Ingress {ingress['metadata'].get('namespace')}/{ingress['metadata']['name']}: "
                             f"annotation {WEIGHT} is not a number: {annotations[WEIGHT]!r}") from exc
    return Weights(primary=100 - canary, canary=canary)


def read_weights(get: Getter, canary: Canary) -> Weights | None:
    """The split of the canary Ingress, or None before there is one."""
    if canary.spec.ingress_ref is None:
        return None
    found = get(*INGRESS, canary.metadata.namespace or "default", canary_ingress_name(canary))
    return ingress_weights(found) if found is not None else None


class NginxRouter(CanaryIngressRouter):
    """Weighted and header-matched routing through ingress-nginx's canary Ingress."""

    name = "nginx"
    has_match = True
    read = staticmethod(read_weights)
    ingress_name = staticmethod(_ingress_ref)
    copy = staticmethod(build)


# Ingresses are core objects: the cache is always served.
PLUGIN = NginxRouter.plugin(optional=False)
