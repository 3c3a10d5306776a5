"""The Gloo Edge router: the Upstreams ``<ns>-<svc>-primaryupstream-<port>`` and
``<ns>-<svc>-canaryupstream-<port>`` (gloo.solo.io/v1) of the primary and canary Services, and a
RouteTable ``<svc>`` (gateway.solo.io/v1) whose route splits traffic between them by weight. The
user's VirtualService delegates to that RouteTable; the route inherits its path matchers.

As Flagger's pkg/router/gloo.go: the Upstreams are Gloo's own (discovery may be off), copying the
connection settings of spec.upstreamRef when it is set; A/B testing puts analysis.match on the
route as Gloo matchers (headers, query parameters, method). Two deliberate differences: each
analysis.match entry is one matcher (Gloo ORs matchers, as Istio ORs match entries; Flagger ANDs
them all into one), and under A/B a second route sends every other request to the primary (in
Flagger's table they match no route). A header or query prefix becomes an anchored regex; a
match on the uri or on source labels is refused, as the path belongs to the VirtualService.
"""

from __future__ import annotations

import re

from canary.defaults import FIELD_MANAGER
from canary.errors import PermanentError
from canary.kube import Obj
from canary.kube.apply import apply_if_changed
from canary.models.canary import Canary, StringMatch
from canary.routers.base import ALL_TO_PRIMARY, Getter, RouteTarget, Weights, split_of
from canary.routers.weighted import WeightedRouter

ROUTE_TABLE = ("gateway.solo.io/v1", "RouteTable")
UPSTREAM = ("gloo.solo.io/v1", "Upstream")
COPIED_UPSTREAM_FIELDS = ("labels", "sslConfig", "circuitBreakers", "connectionConfig", "loadBalancerConfig",
                          "useHttp2", "initialStreamWindowSize", "initialConnectionWindowSize", "httpProxyHostName")
"""What Flagger copies from spec.upstreamRef's Upstream to the primary and canary Upstreams."""


def upstream_names(canary: Canary) -> tuple[str, str]:
    """The primary and canary Upstreams: ``<ns>-<svc>-primaryupstream-<port>`` and ``...-canaryupstream-...``."""
    namespace = canary.metadata.namespace or "default"
    apex = canary.spec.service_names[0]
    port = canary.spec.service.port
    return (f"{namespace}-{apex}-primaryupstream-{port}", f"{namespace}-{apex}-canaryupstream-{port}")


def upstreams(route: RouteTarget, config: Obj | None) -> list[Obj]:
    """The primary and canary Upstreams, with ``config``'s (spec.upstreamRef's) settings when given."""
    key, value = route.selector
    spec = route.canary.spec
    copied = {k: v for k, v in ((config or {}).get("spec") or {}).items() if k in COPIED_UPSTREAM_FIELDS}
    found = []
    for name, service, selects in zip(upstream_names(route.canary), spec.service_names[1:],
                                      (f"{value}-primary", value), strict=True):
        kube = {"serviceName": service, "serviceNamespace": route.namespace, "servicePort": spec.service.port,
                "selector": {key: selects}}
        found.append({"apiVersion": UPSTREAM[0], "kind": UPSTREAM[1],
                      "metadata": {"name": name, "namespace": route.namespace, "ownerReferences": [route.owner]},
                      "spec": {**copied, "kube": kube}})
    return found


def _value(match: StringMatch) -> Obj:
    """A Gloo header or query matcher's value: exact, a regex, or a prefix as a regex (Gloo's match whole values)."""
    if match.exact is not None:
        return {"value": match.exact}
    if match.regex is not None:
        return {"value": match.regex, "regex": True}
    return {"value": re.escape(match.prefix or "") + ".*", "regex": True}


def matchers(canary: Canary) -> list[Obj]:
    """analysis.match as Gloo matchers, one per entry."""
    where = f"Canary {canary.metadata.namespace}/{canary.metadata.name}: spec.analysis.match"
    found = []
    for index, match in enumerate(canary.spec.analysis.match or []):
        here = f"{where}[{index}]"
        for field, value in (("uri", match.uri), ("sourceLabels", match.source_labels)):
            if value is not None:
                raise PermanentError(f"{here}.{field}: not implemented by the gloo router (the path is the "
                                     "VirtualService's); match on headers, queryParams or method")
        matcher: Obj = {}
        if match.headers:
            matcher["headers"] = [{"name": name, **_value(value)}
                                  for name, value in match.headers.items()]
        if match.query_params:
            matcher["queryParameters"] = [{"name": name, **_value(value)}
                                          for name, value in match.query_params.items()]
        if match.method is not None:
            if match.method.exact is None:
                raise PermanentError(f"{here}.method: the gloo router matches methods exactly")
            matcher["methods"] = [match.method.exact]
        found.append(matcher)
    return found


def _route(canary: Canary, weights: Weights, found: list[Obj]) -> Obj:
    namespace = canary.metadata.namespace or "default"
    destinations = [{"destination": {"upstream": {"name": name, "namespace": namespace}}, "weight": weight}
                    for name, weight in zip(upstream_names(canary), (weights.primary, weights.canary), strict=True)]
    route: Obj = {"inheritablePathMatchers": True, "routeAction": {"multi": {"destinations": destinations}}}
    if found:
        route["matchers"] = found
    return route


def build(route: RouteTarget, weights: Weights) -> Obj:
    """The RouteTable of ``route`` with ``weights`` on its first route."""
    canary = route.canary
    matched = matchers(canary)
    routes = [_route(canary, weights, matched)]
    if matched:
        routes.append(_route(canary, ALL_TO_PRIMARY, []))
    meta = canary.spec.service.apex
    return {"apiVersion": ROUTE_TABLE[0], "kind": ROUTE_TABLE[1],
            "metadata": {"name": canary.spec.service_names[0], "namespace": route.namespace,
                         "ownerReferences": [route.owner],
                         "labels": dict(meta.labels or {}) if meta else {},
                         "annotations": dict(meta.annotations or {}) if meta else {}},
            "spec": {"routes": routes}}


def table_weights(table: Obj, canary: Canary) -> Weights:
    """The split of the first route's destinations (a destination without a weight has 0, as Gloo reads it)."""
    meta = table["metadata"]
    where = f"RouteTable {meta.get('namespace')}/{meta['name']}: spec.routes[0].routeAction.multi.destinations"
    routes = (table.get("spec") or {}).get("routes") or [{}]
    destinations = ((routes[0].get("routeAction") or {}).get("multi") or {}).get("destinations") or []
    found = {str(((d.get("destination") or {}).get("upstream") or {}).get("name")): int(d.get("weight") or 0)
             for d in destinations}
    return split_of(found, upstream_names(canary), where=where)


def read_weights(get: Getter, canary: Canary) -> Weights | None:
    """The split of the canary's RouteTable, or None before there is one."""
    found = get(*ROUTE_TABLE, canary.metadata.namespace or "default", canary.spec.service_names[0])
    return table_weights(found, canary) if found is not None else None


class GlooRouter(WeightedRouter):
    """Weighted and matched routing through a Gloo RouteTable over Gloo Upstreams."""

    name = "gloo"
    kind = ROUTE_TABLE
    extra_kinds = (UPSTREAM,)
    has_match = True
    read = staticmethod(read_weights)

    def build(self, route: RouteTarget, weights: Weights) -> Obj:
        """The RouteTable for ``weights``."""
        return build(route, weights)

    def reconcile(self, route: RouteTarget) -> None:
        """Create or correct the Upstreams too, kept in step with spec.upstreamRef."""
        for upstream in upstreams(route, self._config_upstream(route)):
            apply_if_changed(self._kube, self._extra[UPSTREAM], upstream, field_manager=FIELD_MANAGER)
        super().reconcile(route)

    def _config_upstream(self, route: RouteTarget) -> Obj | None:
        ref = route.canary.spec.upstream_ref
        if ref is None:
            return None
        namespace = ref.namespace or route.namespace
        found = self._extra[UPSTREAM].get(namespace, ref.name)
        if found is None:
            raise PermanentError(f"Canary {route.namespace}/{route.canary.metadata.name}: spec.upstreamRef: "
                                 f"Upstream {namespace}/{ref.name} not found")
        return found


PLUGIN = GlooRouter.plugin(crds=("gloo",))
