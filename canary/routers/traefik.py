"""The Traefik router: a TraefikService ``<svc>`` whose weighted round robin splits traffic between
``<svc>-primary`` and ``<svc>-canary``, as Flagger's pkg/router/traefik.go writes it. The user's
IngressRoute sends to that TraefikService by name. Weights only: Traefik has no A/B here.
"""

from __future__ import annotations

from canary.kube import Obj
from canary.models.canary import Canary
from canary.routers.base import Getter, RouteTarget, Weights, split_of
from canary.routers.weighted import WeightedRouter

TRAEFIK_SERVICE = ("traefik.io/v1alpha1", "TraefikService")


def build(route: RouteTarget, weights: Weights) -> Obj:
    """The TraefikService of ``route`` with ``weights``."""
    spec = route.canary.spec
    apex, primary, canary = spec.service_names
    backends = [{"name": name, "namespace": route.namespace, "port": spec.service.port, "weight": weight}
                for name, weight in ((primary, weights.primary), (canary, weights.canary))]
    meta = spec.service.apex
    return {"apiVersion": TRAEFIK_SERVICE[0], "kind": "TraefikService",
            "metadata": {"name": apex, "namespace": route.namespace, "ownerReferences": [route.owner],
                         "labels": dict(meta.labels or {}) if meta else {},
                         "annotations": dict(meta.annotations or {}) if meta else {}},
            "spec": {"weighted": {"services": backends}}}


def service_weights(found: Obj, canary: Canary) -> Weights:
    """The split of the weighted round robin."""
    backends = ((found.get("spec") or {}).get("weighted") or {}).get("services") or []
    meta = found["metadata"]
    return split_of({b.get("name"): int(b.get("weight", 0) or 0) for b in backends}, canary.spec.service_names[1:],
                    where=f"TraefikService {meta.get('namespace')}/{meta['name']}: spec.weighted.services")


def read_weights(get: Getter, canary: Canary) -> Weights | None:
    """The split of the canary's TraefikService, or None before there is one."""
    found = get(*TRAEFIK_SERVICE, canary.metadata.namespace or "default", canary.spec.service_names[0])
    return service_weights(found, canary) if found is not None else None


class TraefikRouter(WeightedRouter):
    """Weighted routing through a TraefikService."""

    name = "traefik"
    kind = TRAEFIK_SERVICE
    read = staticmethod(read_weights)

    def build(self, route: RouteTarget, weights: Weights) -> Obj:
        """The TraefikService for ``weights``."""
        return build(route, weights)


PLUGIN = TraefikRouter.plugin(crds=("traefik",))
