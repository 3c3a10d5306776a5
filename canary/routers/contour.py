"""The Contour router: an HTTPProxy ``<svc>`` whose route splits traffic between ``<svc>-primary`` and
``<svc>-canary`` by weight, or, for A/B testing, whose first route sends requests that match a
header to the canary.

As Flagger's pkg/router/contour.go: the route's prefix is spec.service.match[0].uri.prefix (else
``/``); spec.service.timeout becomes the response timeout (idle 5m) and spec.service.retries the
retry policy; each backend sets ``l5d-dst-override``, so that the proxy also works with Linkerd.
"""

from __future__ import annotations

from canary.errors import PermanentError
from canary.kube import Obj
from canary.models.canary import Canary
from canary.routers.base import ALL_TO_PRIMARY, Getter, RouteTarget, Weights
from canary.routers.weighted import WeightedRouter

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


class ContourRouter(WeightedRouter):
    """Weighted and header-matched routing through a Contour HTTPProxy."""

    name = "contour"
    kind = HTTP_PROXY
    has_match = True
    supported = frozenset({"service.match", "service.timeout", "service.retries"})
    read = staticmethod(read_weights)

    def build(self, route: RouteTarget, weights: Weights) -> Obj:
        """The HTTPProxy for ``weights``."""
        return build(route, weights)


PLUGIN = ContourRouter.plugin(crds=("contour",))
