"""The Traefik router: a TraefikService ``<svc>`` whose weighted round robin splits traffic between
``<svc>-primary`` and ``<svc>-canary``, as Flagger's pkg/router/traefik.go writes it. The user's
IngressRoute sends to that TraefikService by name. Weights only: Traefik has no A/B here.
"""

from __future__ import annotations

from canary.defaults import FIELD_MANAGER
from canary.kube import Obj
from canary.kube.apply import apply_if_changed
from canary.kube.cache import Informer
from canary.kube.client import Kube
from canary.models.canary import Canary
from canary.routers import services
from canary.routers.base import (
    ALL_TO_PRIMARY,
    Getter,
    RouterContext,
    RouterPlugin,
    RouteTarget,
    Watch,
    Weights,
    split_of,
)

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


class TraefikRouter:
    """Weighted routing through a TraefikService."""

    name = "traefik"
    has_weights = True
    has_match = False
    supported: frozenset[str] = frozenset()

    def __init__(self, kube: Kube, *, services_cache: Informer, traefik_services: Informer) -> None:
        self._kube = kube
        self._services = services_cache
        self._traefik_services = traefik_services

    def _get(self, api_version: str, kind: str, namespace: str, name: str) -> Obj | None:
        return self._traefik_services.get(namespace, name)

    def reconcile(self, route: RouteTarget) -> None:
        """Create or correct the Services and the TraefikService (keeping its weights)."""
        services.reconcile(self._kube, self._services, route)
        self.set_weights(route, self.weights(route))

    def weights(self, route: RouteTarget) -> Weights:
        """The split of the TraefikService."""
        return read_weights(self._get, route.canary) or ALL_TO_PRIMARY

    def set_weights(self, route: RouteTarget, weights: Weights) -> None:
        """Rewrite the TraefikService with the new split."""
        apply_if_changed(self._kube, self._traefik_services, build(route, weights), field_manager=FIELD_MANAGER)

    def finalize(self, route: RouteTarget) -> None:
        """All traffic to the primary backend, and the apex Service to the target's pods."""
        self.set_weights(route, ALL_TO_PRIMARY)
        services.release_apex(self._kube, self._services, route)


def _create(context: RouterContext) -> TraefikRouter:
    return TraefikRouter(context.kube, services_cache=context.cache(*services.KIND),
                         traefik_services=context.cache(*TRAEFIK_SERVICE))


PLUGIN = RouterPlugin(name="traefik", watches=(services.WATCH, Watch(*TRAEFIK_SERVICE, optional=True)),
                      read_weights=read_weights, create=_create, crds=("traefik",))
