"""The kubernetes router: Services only, so no weights; canaries run as blue/green iterations."""

from __future__ import annotations

from canary.kube.cache import Informer
from canary.kube.client import Kube
from canary.models.canary import Canary
from canary.routers import services
from canary.routers.base import ALL_TO_PRIMARY, Getter, RouterPlugin, RouteTarget, Weights


class KubernetesRouter:
    """Blue/green through the Services alone: the apex always points at the primary."""

    name = "kubernetes"
    has_weights = False
    has_match = False
    supported: frozenset[str] = frozenset()
    holds_deletion = False

    def __init__(self, kube: Kube, *, services_cache: Informer) -> None:
        self._kube = kube
        self._services = services_cache

    def reconcile(self, route: RouteTarget) -> None:
        """Create or correct the apex, primary and canary Services."""
        services.reconcile(self._kube, self._services, route)

    def weights(self, route: RouteTarget) -> Weights:
        """Always all traffic to the primary."""
        return ALL_TO_PRIMARY

    def set_weights(self, route: RouteTarget, weights: Weights) -> None:
        """Nothing to set: the Services carry no weights."""

    def finalize(self, route: RouteTarget) -> None:
        """Point the apex Service at the target's pods."""
        services.release_apex(self._kube, self._services, route)

    def remove(self, canary: Canary) -> None:
        """Nothing: the Canary owns the Services."""


def _no_weights(get: Getter, canary: Canary) -> Weights | None:
    return None


PLUGIN = RouterPlugin(
    name="kubernetes", watches=(services.WATCH,), read_weights=_no_weights,
    create=lambda context: KubernetesRouter(context.kube, services_cache=context.cache(*services.KIND)))
