"""The Contour router: an HTTPProxy ``<svc>`` whose route splits traffic between ``<svc>-primary`` and
``<svc>-canary`` by weight, or, for A/B testing, whose first route sends requests that match a
header to the canary.

As Flagger's pkg/router/contour.go: the route's prefix is spec.service.match[0].uri.prefix (else
``/``); spec.service.timeout becomes the response timeout (idle 5m) and spec.service.retries the
retry policy; each backend sets ``l5d-dst-override``, so that the proxy also works with Linkerd.
"""

from __future__ import annotations

from canary.defaults import FIELD_MANAGER
from canary.errors import PermanentError
from canary.kube import Obj
from canary.kube.apply import apply_if_changed
from canary.kube.cache import Informer
from canary.kube.client import Kube
from canary.models.canary import Canary
from canary.routers import services
from canary.routers.base import ALL_TO_PRIMARY, Getter, RouterContext, RouterPlugin, RouteTarget, Watch, Weights

HTTP_PROXY = ("projectcontour.io/v1", "HTTPProxy")


def _prefix(canary: Canary) -> str:
    matches = canary.spec.service.match or []
    uri = matches[0].uri if matches else None
    return uri.prefix if uri is not None and uri.prefix else "/"


def _header_conditions(canary: Canary) -> list[Obj]:
    """analysis.match as header conditions (exact; a prefix or suffix as ``contains``, as Flagger)."""
    conditions = []
    for index, match in enumerate(canary.spec.analysis.match or []):
        for name, value in (match.headers or {}).items():
            if value.exact is not None:
                header = {"name": name, "exact": value.exact}
            elif value.prefix is not None:
                header = {"name": name, "contains": value.prefix}
            else:
                raise PermanentError(f"Canary {canary.metadata.namespace}/{canary.metadata.name}: spec.analysis."
                                     f"match[{index}].headers.{name}: the contour router needs exact or prefix")
            conditions.append({"prefix": _prefix(canary), "header": header})
    return conditions


def _route(canary: Canary, conditions: list[Obj], weights: Weights) -> Obj:
    spec = canary.spec
    namespace = canary.metadata.namespace
    _, primary, canary_service = spec.service_names

    def backend(name: str, weight: int) -> Obj:
        override = {"name": "l5d-dst-override", "value": f"{name}.{namespace}.svc.cluster.local:{spec.service.port}"}
        return {"name": name, "port": spec.service.port, "weight": weight,
                "requestHeadersPolicy": {"set": [override]}}

    route: Obj = {"conditions": conditions,
                  "services": [backend(primary, weights.primary), backend(canary_service, weights.canary)]}
    if spec.service.timeout:
        route["timeoutPolicy"] = {"response": spec.service.timeout, "idle": "5m"}
    retries = spec.service.retries
    if retries is not None:
        policy: Obj = {"count": retries.attempts or 0}
        if retries.per_try_timeout:
            policy["perTryTimeout"] = retries.per_try_timeout
        if retries.retry_on:
            policy["retryOn"] = [r.strip() for r in retries.retry_on.split(",") if r.strip()]
        route["retryPolicy"] = policy
    return route


def build(route: RouteTarget, weights: Weights) -> Obj:
    """The HTTPProxy of ``route`` with ``weights`` on its first route."""
    canary = route.canary
    everything = [{"prefix": _prefix(canary)}]
    if canary.spec.analysis.match:
        routes = [_route(canary, _header_conditions(canary), weights), _route(canary, everything, ALL_TO_PRIMARY)]
    else:
        routes = [_route(canary, everything, weights)]
    apex = canary.spec.service.apex
    return {"apiVersion": HTTP_PROXY[0], "kind": "HTTPProxy",
            "metadata": {"name": canary.spec.service_names[0], "namespace": route.namespace,
                         "ownerReferences": [route.owner],
                         "labels": dict(apex.labels or {}) if apex else {},
                         "annotations": dict(apex.annotations or {}) if apex else {}},
            "spec": {"routes": routes}}


def proxy_weights(proxy: Obj, canary: Canary) -> Weights:
    """The split of the first route: the primary's weight, the canary the rest (as Flagger reads it)."""
    _, primary, _ = canary.spec.service_names
    routes = (proxy.get("spec") or {}).get("routes") or []
    for backend in (routes[0].get("services") or []) if routes else []:
        if backend.get("name") == primary:
            weight = int(backend.get("weight", 0) or 0)
            return Weights(primary=weight, canary=100 - weight)
    raise PermanentError(f"HTTPProxy {proxy['metadata'].get('namespace')}/{proxy['metadata']['name']}: "
                         f"spec.routes[0].services must include {primary}")


def read_weights(get: Getter, canary: Canary) -> Weights | None:
    """The split of the canary's HTTPProxy, or None before there is one."""
    found = get(*HTTP_PROXY, canary.metadata.namespace or "default", canary.spec.service_names[0])
    return proxy_weights(found, canary) if found is not None else None


class ContourRouter:
    """Weighted and header-matched routing through a Contour HTTPProxy."""

    name = "contour"
    has_weights = True
    has_match = True
    supported: frozenset[str] = frozenset({"service.match", "service.timeout", "service.retries"})

    def __init__(self, kube: Kube, *, services_cache: Informer, proxies: Informer) -> None:
        self._kube = kube
        self._services = services_cache
        self._proxies = proxies

    def _get(self, api_version: str, kind: str, namespace: str, name: str) -> Obj | None:
        return self._proxies.get(namespace, name)

    def reconcile(self, route: RouteTarget) -> None:
        """Create or correct the Services and the HTTPProxy (keeping its weights)."""
        services.reconcile(self._kube, self._services, route)
        self.set_weights(route, self.weights(route))

    def weights(self, route: RouteTarget) -> Weights:
        """The split of the HTTPProxy's first route."""
        return read_weights(self._get, route.canary) or ALL_TO_PRIMARY

    def set_weights(self, route: RouteTarget, weights: Weights) -> None:
        """Rewrite the HTTPProxy with the new split."""
        apply_if_changed(self._kube, self._proxies, build(route, weights), field_manager=FIELD_MANAGER)

    def finalize(self, route: RouteTarget) -> None:
        """All traffic to the primary Service's backend, and the apex Service to the target's pods."""
        self.set_weights(route, ALL_TO_PRIMARY)
        services.release_apex(self._kube, self._services, route)


def _create(context: RouterContext) -> ContourRouter:
    return ContourRouter(context.kube, services_cache=context.cache(*services.KIND),
                         proxies=context.cache(*HTTP_PROXY))


PLUGIN = RouterPlugin(name="contour", watches=(services.WATCH, Watch(*HTTP_PROXY, optional=True)),
                      read_weights=read_weights, create=_create, crds=("contour",))
