"""The Kuma router: a TrafficRoute ``<svc>`` (kuma.io/v1alpha1) that splits the requests to the
apex Service's Kuma service ``<svc>_<ns>_svc_<port>`` between ``<svc>-primary_<ns>_svc_<port>`` and
``<svc>-canary_<ns>_svc_<port>``, in the mesh the Canary's ``kuma.io/mesh`` annotation names
(``default`` without it), as Flagger's pkg/router/kuma.go writes it.

A TrafficRoute is cluster-scoped, so no owner reference can tie it to the Canary and nothing
collects it when the Canary goes: the router holds the Canary's deletion (``holds_deletion``) and
deletes the TrafficRoute itself, where Flagger leaves it behind. On revertOnDeletion the apex
Service first selects the target's pods, so deleting the TrafficRoute hands the traffic back.
Being cluster-wide, its name can clash across namespaces: the TrafficRoute carries the Canary it
serves (annotation ``canary.dev/canary``), and another Canary's is refused, never overwritten.
Weights only: Flagger's kuma router has no A/B.
"""

from __future__ import annotations

from canary.defaults import FIELD_MANAGER
from canary.errors import PermanentError
from canary.kube import Obj
from canary.kube.apply import apply_if_changed
from canary.models.canary import Canary
from canary.routers import services
from canary.routers.base import Getter, RouteTarget, Weights, split_of
from canary.routers.weighted import WeightedRouter

TRAFFIC_ROUTE = ("kuma.io/v1alpha1", "TrafficRoute")
MESH_ANNOTATION = "kuma.io/mesh"
DEFAULT_MESH = "default"
SERVICE_TAG = "kuma.io/service"
SERVED = "canary.dev/canary"
"""The annotation naming the Canary (``<namespace>/<name>``) a TrafficRoute serves."""


def kuma_services(canary: Canary) -> tuple[str, str, str]:
    """The Kuma services (``<service>_<namespace>_svc_<port>``) of the apex, primary and canary Services."""
    namespace = canary.metadata.namespace or "default"
    port = canary.spec.service.port
    apex, primary, canary_service = (f"{name}_{namespace}_svc_{port}" for name in canary.spec.service_names)
    return apex, primary, canary_service


def served(canary: Canary) -> str:
    """``<namespace>/<name>`` of ``canary``."""
    return f"{canary.metadata.namespace}/{canary.metadata.name}"


def build(canary: Canary, weights: Weights) -> Obj:
    """The TrafficRoute of ``canary`` with ``weights``."""
    apex, primary, canary_service = kuma_services(canary)
    meta = canary.spec.service.apex
    split = [{"weight": weight, "destination": {SERVICE_TAG: service}}
             for service, weight in ((primary, weights.primary), (canary_service, weights.canary))]
    return {"apiVersion": TRAFFIC_ROUTE[0], "kind": TRAFFIC_ROUTE[1],
            "metadata": {"name": canary.spec.service_names[0],
                         "labels": dict(meta.labels or {}) if meta else {},
                         "annotations": {**(dict(meta.annotations or {}) if meta else {}), SERVED: served(canary)}},
            "mesh": (canary.metadata.annotations or {}).get(MESH_ANNOTATION, DEFAULT_MESH),
            "spec": {"sources": [{"match": {SERVICE_TAG: "*"}}],
                     "destinations": [{"match": {SERVICE_TAG: apex}}],
                     "conf": {"split": split}}}


def _serves_another(found: Obj, canary: Canary) -> str | None:
    """The other Canary ``found`` serves, if it names one."""
    other = (found["metadata"].get("annotations") or {}).get(SERVED)
    return other if other not in (None, served(canary)) else None


def route_weights(found: Obj, canary: Canary) -> Weights:
    """The split of a TrafficRoute's conf.split."""
    where = f"TrafficRoute {found['metadata']['name']}: spec.conf.split"
    split = ((found.get("spec") or {}).get("conf") or {}).get("split") or []
    weights = {str((s.get("destination") or {}).get(SERVICE_TAG)): int(s.get("weight") or 0) for s in split}
    return split_of(weights, kuma_services(canary)[1:], where=where)


def read_weights(get: Getter, canary: Canary) -> Weights | None:
    """The split of the canary's TrafficRoute, or None before there is one (or when another Canary's has its name)."""
    found = get(*TRAFFIC_ROUTE, "", canary.spec.service_names[0])
    if found is None or _serves_another(found, canary):
        return None
    return route_weights(found, canary)


class KumaRouter(WeightedRouter):
    """Weighted routing through a cluster-scoped Kuma TrafficRoute, deleted with its Canary."""

    name = "kuma"
    kind = TRAFFIC_ROUTE
    holds_deletion = True
    read = staticmethod(read_weights)

    def build(self, route: RouteTarget, weights: Weights) -> Obj:
        """The TrafficRoute for ``weights``."""
        return build(route.canary, weights)

    def owns(self, route: RouteTarget, found: Obj) -> bool:
        """Whether the TrafficRoute is the canary's: cluster-scoped, it says so by annotation."""
        return (found["metadata"].get("annotations") or {}).get(SERVED) == served(route.canary)

    def set_weights(self, route: RouteTarget, weights: Weights) -> None:
        """Rewrite the TrafficRoute, unless another Canary's has its name."""
        name = route.canary.spec.service_names[0]
        found = self._objects.get("", name)
        if found is not None and (other := _serves_another(found, route.canary)) is not None:
            raise PermanentError(f"Canary {served(route.canary)}: TrafficRoute {name} (cluster-scoped, named after "
                                 f"the apex Service) already serves Canary {other}; set spec.service.name to "
                                 "another name")
        apply_if_changed(self._kube, self._objects, self.build(route, weights), field_manager=FIELD_MANAGER)

    def finalize(self, route: RouteTarget) -> None:
        """The apex Service to the target's pods, then no TrafficRoute: Kuma routes the apex to them."""
        services.release_apex(self._kube, self._services, route)
        self.remove(route.canary)

    def remove(self, canary: Canary) -> None:
        """Delete the canary's TrafficRoute (not another Canary's of the same name)."""
        name = canary.spec.service_names[0]
        found = self._kube.get(*TRAFFIC_ROUTE, name)  # not the cache: a deletion happens once, and must see it
        if found is not None and _serves_another(found, canary) is None:
            self._kube.delete(*TRAFFIC_ROUTE, name)


PLUGIN = KumaRouter.plugin(crds=("kuma",))
