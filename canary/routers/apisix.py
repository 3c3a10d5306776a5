"""The APISIX router: an ApisixRoute ``<routeRef>-<svc>-canary`` (apisix.apache.org/v2) made from the
user's spec.routeRef route, whose HTTP route to the apex Service weighs ``<svc>-primary`` and
``<svc>-canary``.

As Flagger's pkg/router/apisix.go: the user's route is never changed. The canary route copies its
labels, annotations and the one HTTP route whose single backend is the apex Service, with priority
10000 so that APISIX prefers it to the user's, the backend renamed to the primary and a canary
backend beside it (same port, resolveGranularity and subset). Unlike Flagger, the user's stream
(L4) routes are not copied, as two routes cannot hold one ingress port. Weights only: Flagger's
apisix router has no A/B. The user's route needs APISIX's prometheus plugin (``prefer_name:
true``) for the built-in queries, which read the canary route's requests by its name.
"""

from __future__ import annotations

import copy

from canary.errors import PermanentError
from canary.kube import Obj
from canary.models.canary import Canary
from canary.routers.base import Getter, RouteTarget, Weights, split_of
from canary.routers.weighted import WeightedRouter

APISIX_ROUTE = ("apisix.apache.org/v2", "ApisixRoute")
PRIORITY = 10000
_NOT_COPIED = ("kubectl.kubernetes.io/last-applied-configuration",)
_CANARY_BACKEND_FIELDS = ("servicePort", "resolveGranularity", "subset")


def _route_ref(canary: Canary) -> str:
    ref = canary.spec.route_ref
    where = f"Canary {canary.metadata.namespace}/{canary.metadata.name}: spec.routeRef"
    if ref is None:
        raise PermanentError(f"{where}: the apisix router needs the ApisixRoute that routes to the apex Service")
    if ref.kind not in (None, APISIX_ROUTE[1]) or ref.api_version not in (None, APISIX_ROUTE[0]):
        raise PermanentError(f"{where}: the apisix router needs an {APISIX_ROUTE[0]} {APISIX_ROUTE[1]}, "
                             f"got {ref.api_version} {ref.kind}")
    return ref.name


def canary_route_name(canary: Canary) -> str:
    """``<routeRef>-<svc>-canary``."""
    return f"{_route_ref(canary)}-{canary.spec.service_names[0]}-canary"


def build(canary: Canary, main: Obj, weights: Weights, *, owner: Obj) -> Obj:
    """The canary ApisixRoute: ``main``'s HTTP route to the apex Service, split between primary and canary."""
    apex, primary, canary_service = canary.spec.service_names
    where = f"Canary {canary.metadata.namespace}/{canary.metadata.name}: spec.routeRef: ApisixRoute " \
            f"{main['metadata']['name']}"
    http = ((main.get("spec") or {}).get("http")) or []
    found = [r for r in http if any(b.get("serviceName") == apex for b in r.get("backends") or [])]
    if not found:
        raise PermanentError(f"{where} has no spec.http route whose backend is the apex Service {apex}")
    route = copy.deepcopy(found[0])
    if len(route.get("backends") or []) != 1:
        raise PermanentError(f"{where}: spec.http route {route.get('name')} must have exactly one backend, "
                             f"the apex Service {apex}")
    first = route["backends"][0]
    route["priority"] = PRIORITY
    route["backends"] = [
        {**first, "serviceName": primary, "weight": weights.primary},
        {"serviceName": canary_service, **{k: first[k] for k in _CANARY_BACKEND_FIELDS if first.get(k)},
         "weight": weights.canary}]
    meta = main["metadata"]
    return {"apiVersion": APISIX_ROUTE[0], "kind": APISIX_ROUTE[1],
            "metadata": {"name": canary_route_name(canary), "namespace": canary.metadata.namespace,
                         "labels": dict(meta.get("labels") or {}),
                         "annotations": {k: v for k, v in (meta.get("annotations") or {}).items()
                                         if k not in _NOT_COPIED},
                         "ownerReferences": [owner]},
            "spec": {"http": [route]}}


def route_weights(found: Obj, canary: Canary) -> Weights:
    """The split of the HTTP route that sends to the primary."""
    _, primary, _ = canary.spec.service_names
    meta = found["metadata"]
    where = f"ApisixRoute {meta.get('namespace')}/{meta['name']}: spec.http"
    for index, route in enumerate((found.get("spec") or {}).get("http") or []):
        backends = route.get("backends") or []
        if any(b.get("serviceName") == primary for b in backends):
            return split_of({str(b.get("serviceName")): int(b.get("weight") or 0) for b in backends},
                            canary.spec.service_names[1:], where=f"{where}[{index}].backends")
    raise PermanentError(f"{where} has no route to {primary}")


def read_weights(get: Getter, canary: Canary) -> Weights | None:
    """The split of the canary ApisixRoute, or None before there is one."""
    if canary.spec.route_ref is None:
        return None
    found = get(*APISIX_ROUTE, canary.metadata.namespace or "default", canary_route_name(canary))
    return route_weights(found, canary) if found is not None else None


def metric_route(get: Getter, canary: Canary) -> str:
    """The name APISIX's prometheus plugin gives the canary route's requests (``<namespace>_<ApisixRoute>_<http
    route>``, as its ingress controller names routes), or "" before there is a canary route."""
    if canary.spec.route_ref is None:
        return ""
    namespace = canary.metadata.namespace or "default"
    found = get(*APISIX_ROUTE, namespace, canary_route_name(canary))
    http = ((found or {}).get("spec") or {}).get("http") or []
    return f"{namespace}_{canary_route_name(canary)}_{http[0].get('name')}" if http else ""


class ApisixRouter(WeightedRouter):
    """Weighted routing through a canary ApisixRoute."""

    name = "apisix"
    kind = APISIX_ROUTE
    read = staticmethod(read_weights)

    def build(self, route: RouteTarget, weights: Weights) -> Obj:
        """The canary ApisixRoute for ``weights``, from the user's route as it is now."""
        name = _route_ref(route.canary)
        main = self._objects.get(route.namespace, name)
        if main is None:
            raise PermanentError(f"Canary {route.namespace}/{route.canary.metadata.name}: spec.routeRef: "
                                 f"ApisixRoute {name} not found")
        return build(route.canary, main, weights, owner=route.owner)


PLUGIN = ApisixRouter.plugin(crds=("apisix",))
