"""What a router is: the protocol each router implements and the declaration each router module makes.

Every canary gets three Services from ``canary.routers.services`` (apex, primary, canary); a
router then decides how requests reach the primary and canary Services. The router's objects
are the truth for the current weights, not the Canary's status.

A router module declares a ``RouterPlugin``: its name, the resources it reads from watch caches
(the controller builds those caches from the declarations; nothing outside canary/routers names
a router's resource), the vendored CRDs it needs, how to read the weights from its objects (the
controller and the local traffic simulator share that function) and how to build the router.
Flagger's pkg/router/router.go and Argo Rollouts' traffic-routing interface are the models.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

from canary.errors import PermanentError
from canary.kube import Obj
from canary.kube.cache import Informer
from canary.kube.client import Kube
from canary.models.canary import Canary

Getter = Callable[[str, str, str, str], Obj | None]
"""Reads one object: (apiVersion, kind, namespace, name) -> the object, or None."""


@dataclass(frozen=True)
class RouteTarget:
    """What a router needs to know about one canary."""

    canary: Canary
    owner: Obj
    selector: tuple[str, str]
    ports: tuple[tuple[str, int], ...] = ()
    """The target's other container ports, (name, port), that spec.service.portDiscovery adds to the Services."""

    @property
    def namespace(self) -> str:
        """The canary's namespace."""
        return self.canary.metadata.namespace or "default"


@dataclass(frozen=True)
class Weights:
    """The traffic split, in percent; ``mirror`` is the percent of requests also copied to the canary
    (whose answers are dropped), 0 when nothing is mirrored."""

    primary: int
    canary: int
    mirror: int = 0


ALL_TO_PRIMARY = Weights(primary=100, canary=0)


@dataclass(frozen=True)
class Watch:
    """A kind a router reads from a watch cache; ``optional`` when it exists only with a router's CRDs,
    so the controller is ready without it (and the cache starts when the CRDs are installed)."""

    api_version: str
    kind: str
    optional: bool = False


class Caches(Protocol):
    """The controller's watch caches, by kind."""

    def __call__(self, api_version: str, kind: str) -> Informer:
        """The cache of one kind (declared in a plugin's ``watches``)."""
        ...


@dataclass(frozen=True)
class RouterContext:
    """What a router is built from: the API client and the watch caches its plugin declared."""

    kube: Kube
    cache: Caches

    def get(self, api_version: str, kind: str, namespace: str, name: str) -> Obj | None:
        """A ``Getter`` over the caches."""
        return self.cache(api_version, kind).get(namespace, name)


_ROUTING_FIELDS = {
    "service.gateways": ("service", "gateways"), "service.gatewayRefs": ("service", "gateway_refs"),
    "service.hosts": ("service", "hosts"), "service.delegation": ("service", "delegation"),
    "service.trafficPolicy": ("service", "traffic_policy"), "service.match": ("service", "match"),
    "service.rewrite": ("service", "rewrite"), "service.retries": ("service", "retries"),
    "service.headers": ("service", "headers"), "service.corsPolicy": ("service", "cors_policy"),
    "service.timeout": ("service", "timeout"), "service.backendTimeout": ("service", "backend_timeout"),
    "service.mirror": ("service", "mirror"), "service.meshName": ("service", "mesh_name"),
    "service.backends": ("service", "backends"),
    "analysis.mirror": ("analysis", "mirror"),
    "analysis.mirrorWeight": ("analysis", "mirror_weight"),
    "analysis.sessionAffinity": ("analysis", "session_affinity"),
}
"""The fields of a Canary that only some routers act on, by their path under spec."""


def unsupported_fields(canary: Canary, supported: frozenset[str]) -> list[str]:
    """The routing fields ``canary`` sets that a router supporting only ``supported`` would drop."""
    found = []
    for path, (section, attribute) in _ROUTING_FIELDS.items():
        value = getattr(canary.spec.service if section == "service" else canary.spec.analysis, attribute)
        if value not in (None, False, [], {}) and path not in supported:
            found.append(f"spec.{path}")
    return found


class Router(Protocol):
    """Routes traffic between the primary and canary Services of one provider.

    ``supported`` lists the routing fields (paths under spec, see ``unsupported_fields``) the router
    acts on; a Canary that sets another one is refused with a condition, never quietly half-served.
    """

    name: str
    has_weights: bool
    has_match: bool
    supported: frozenset[str]
    holds_deletion: bool
    """True when ``remove`` has work to do, so that a deleted Canary waits for it (with a finalizer)."""

    def reconcile(self, route: RouteTarget) -> None:
        """Create or correct the router's objects (by server-side apply), keeping the current weights."""
        ...

    def weights(self, route: RouteTarget) -> Weights:
        """The split the router currently applies."""
        ...

    def set_weights(self, route: RouteTarget, weights: Weights) -> None:
        """Apply a new split."""
        ...

    def finalize(self, route: RouteTarget) -> None:
        """Give the traffic back to the target through the apex (revertOnDeletion)."""
        ...

    def remove(self, canary: Canary) -> None:
        """Delete what the Canary's deletion would leave behind: objects no owner reference collects
        (cluster-scoped ones); nothing for a router whose objects the Canary owns."""
        ...


@dataclass(frozen=True)
class RouterPlugin:
    """A router module's declaration; ``registry.PLUGINS`` lists them."""

    name: str
    watches: tuple[Watch, ...]
    create: Callable[[RouterContext], Router]
    read_weights: Callable[[Getter, Canary], Weights | None]
    """The split the router's objects hold for ``canary``; None when it has no objects (yet)."""
    crds: tuple[str, ...] = ()
    """Folders under manifests/vendor with the CRDs the router's objects need."""


def split_of(found: Mapping[str, int], names: tuple[str, str], *, where: str) -> Weights:
    """The split between the primary and canary Services ``names`` among ``found`` (Service -> weight).

    ``where`` names the object and field for the error when either Service is missing.
    """
    primary, canary = names
    if primary not in found or canary not in found:
        raise PermanentError(f"{where} must route to {primary} and {canary}")
    return Weights(primary=found[primary], canary=found[canary])
