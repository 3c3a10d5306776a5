"""What most routers share: one routing object per canary, built for a split and read back for it.

A router module subclasses ``WeightedRouter`` with its object's kind, a ``build(route, weights)``
and its module's ``read_weights``, and declares its plugin with ``plugin``; reconcile, weights,
set_weights and finalize then behave alike: the apex, primary and canary Services, the object
written by server-side apply only when it differs, and on deletion all traffic to the primary and
the apex Service handed to the target.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from canary.defaults import FIELD_MANAGER
from canary.errors import PermanentError
from canary.kube import Obj
from canary.kube.apply import apply_if_changed
from canary.kube.cache import Informer
from canary.kube.client import Kube
from canary.models.canary import Canary
from canary.routers import services
from canary.routers.base import ALL_TO_PRIMARY, Getter, RouterContext, RouterPlugin, RouteTarget, Watch, Weights


class WeightedRouter:
    """A router that splits traffic with one object per canary, named after the apex Service or not."""

    name: str
    kind: tuple[str, str]
    has_weights: bool = True
    has_match: bool = False
    supported: frozenset[str] = frozenset()
    holds_deletion: bool = False
    read: Callable[[Getter, Canary], Weights | None]
    extra_kinds: tuple[tuple[str, str], ...] = ()
    """Other kinds the router writes (Istio's DestinationRules), cached in ``_extra``."""

    def __init__(self, kube: Kube, *, services_cache: Informer, objects: Informer,
                 extra: Mapping[tuple[str, str], Informer] | None = None) -> None:
        self._kube = kube
        self._services = services_cache
        self._objects = objects
        self._extra = dict(extra or {})

    def build(self, route: RouteTarget, weights: Weights) -> Obj:
        """The routing object of ``route`` for ``weights``."""
        raise NotImplementedError

    def _get(self, api_version: str, kind: str, namespace: str, name: str) -> Obj | None:
        return self._objects.get(namespace, name)

    def owns(self, route: RouteTarget, found: Obj) -> bool:
        """Whether ``found``, the object this router writes for ``route``, is the canary's own."""
        uid = route.owner.get("uid")
        return any(ref.get("uid") == uid for ref in found["metadata"].get("ownerReferences") or [])

    def reconcile(self, route: RouteTarget) -> None:
        """Create or correct the Services and the routing object, keeping its split; an object of the same
        name that is not the canary's (the user's VirtualService, say) is taken over with all traffic on
        the primary, as Flagger does."""
        services.reconcile(self._kube, self._services, route)
        meta = self.build(route, ALL_TO_PRIMARY)["metadata"]
        found = self._objects.get(meta.get("namespace") or "", meta["name"])
        taken_over = found is not None and not self.owns(route, found)
        self.set_weights(route, ALL_TO_PRIMARY if taken_over else self.weights(route))

    def weights(self, route: RouteTarget) -> Weights:
        """The split the routing object holds (all to the primary before there is one)."""
        return type(self).read(self._get, route.canary) or ALL_TO_PRIMARY

    def set_weights(self, route: RouteTarget, weights: Weights) -> None:
        """Rewrite the routing object for ``weights``."""
        apply_if_changed(self._kube, self._objects, self.build(route, weights), field_manager=FIELD_MANAGER)

    def finalize(self, route: RouteTarget) -> None:
        """All traffic to the primary, and the apex Service to the target's pods."""
        self.set_weights(route, ALL_TO_PRIMARY)
        services.release_apex(self._kube, self._services, route)

    def remove(self, canary: Canary) -> None:
        """Nothing: the Canary owns the routing object, so it goes with the Canary."""

    @classmethod
    def plugin(cls, *, crds: tuple[str, ...] = (), optional: bool = True) -> RouterPlugin:
        """The declaration of this router: the Services and its kind watched, its CRDs."""

        def create(context: RouterContext) -> WeightedRouter:
            return cls(context.kube, services_cache=context.cache(*services.KIND), objects=context.cache(*cls.kind),
                       extra={kind: context.cache(*kind) for kind in cls.extra_kinds})

        watches = (services.WATCH, *(Watch(*kind, optional=optional) for kind in (cls.kind, *cls.extra_kinds)))
        return RouterPlugin(name=cls.name, watches=watches, read_weights=cls.read, create=create, crds=crds)


class CanaryIngressRouter(WeightedRouter):
    """A router whose object is a canary Ingress copied from the user's spec.ingressRef Ingress (nginx, skipper)."""

    kind = ("networking.k8s.io/v1", "Ingress")
    ingress_name: Callable[[Canary], str]
    """The name of the user's Ingress (spec.ingressRef), or a PermanentError naming the field."""
    copy: Callable[..., Obj]
    """``copy(canary, main, weights, owner=...)``: the canary Ingress made from ``main``."""

    def build(self, route: RouteTarget, weights: Weights) -> Obj:
        """The canary Ingress for ``weights``, from the user's Ingress as it is now."""
        name = type(self).ingress_name(route.canary)
        main = self._objects.get(route.namespace, name)
        if main is None:
            raise PermanentError(f"Canary {route.namespace}/{route.canary.metadata.name}: spec.ingressRef: Ingress "
                                 f"{name} not found")
        return type(self).copy(route.canary, main, weights, owner=route.owner)
