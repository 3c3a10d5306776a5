"""The Gateway API router: an HTTPRoute ``<svc>`` that splits traffic between ``<svc>-primary`` and
``<svc>-canary`` by weight, and for A/B testing sends matching requests to the canary.

The route's parents come from spec.service.gatewayRefs, its hostnames from spec.service.hosts.
"""

from __future__ import annotations

from canary.kube import Obj
from canary.models.canary import Canary, HTTPMatchRequest, Strategy, StringMatch
from canary.routers.base import Getter, RouteTarget, Weights, split_of
from canary.routers.weighted import WeightedRouter

API_VERSION = "gateway.networking.k8s.io/v1"
KIND = (API_VERSION, "HTTPRoute")


def _string_match(match: StringMatch) -> tuple[str, str]:
    if match.exact is not None:
        return "Exact", match.exact
    if match.prefix is not None:
        return "RegularExpression", f"^{_quote_meta(match.prefix)}.*"
    return "RegularExpression", match.regex or ""


def _quote_meta(text: str) -> str:
    return "".join(f"\\{c}" if c in r"\.+*?()|[]{}^$" else c for c in text)


def http_route_matches(matches: list[HTTPMatchRequest]) -> list[Obj]:
    """Istio-style request matches (Flagger's spec) as Gateway API HTTPRouteMatches."""
    converted = []
    for match in matches:
        out: Obj = {}
        if match.uri is not None:
            kind, value = _string_match(match.uri)
            if match.uri.prefix is not None:
                kind, value = "PathPrefix", match.uri.prefix
            out["path"] = {"type": kind, "value": value}
        if match.method is not None and match.method.exact is not None:
            out["method"] = match.method.exact
        if match.headers:
            out["headers"] = [{"name": name, "type": _string_match(m)[0], "value": _string_match(m)[1]}
                              for name, m in sorted(match.headers.items())]
        if match.query_params:
            out["queryParams"] = [{"name": name, "type": _string_match(m)[0], "value": _string_match(m)[1]}
                                  for name, m in sorted(match.query_params.items())]
        converted.append(out)
    return converted


def build(route: RouteTarget, weights: Weights) -> Obj:
    """The HTTPRoute for ``route`` with ``weights`` on its canary rule."""
    spec = route.canary.spec
    apex, primary, canary = spec.service_names
    port = spec.service.port

    def backends(split: Weights) -> list[Obj]:
        return [{"name": primary, "port": port, "weight": split.primary},
                {"name": canary, "port": port, "weight": split.canary}]

    rules: list[Obj] = []
    if spec.analysis.strategy is Strategy.AB_TESTING and spec.analysis.match:
        rules.append({"matches": http_route_matches(spec.analysis.match), "backendRefs": backends(weights)})
        rules.append({"backendRefs": backends(Weights(primary=100, canary=0))})
    else:
        rule: Obj = {"backendRefs": backends(weights)}
        if spec.service.match:
            rule["matches"] = http_route_matches(spec.service.match)
        rules.append(rule)
    body: Obj = {
        "apiVersion": API_VERSION,
        "kind": "HTTPRoute",
        "metadata": {"name": apex, "namespace": route.namespace, "ownerReferences": [route.owner]},
        "spec": {"parentRefs": [ref.model_dump(by_alias=True, exclude_none=True)
                                for ref in spec.service.gateway_refs or []],
                 "rules": rules},
    }
    if spec.service.hosts:
        body["spec"]["hostnames"] = list(spec.service.hosts)
    return body


def route_weights(http_route: Obj) -> Weights:
    """The split of the route's first rule (the canary rule)."""
    apex = http_route["metadata"]["name"]
    refs = {ref["name"]: int(ref.get("weight", 1)) for ref in http_route["spec"]["rules"][0]["backendRefs"]}
    return split_of(refs, (f"{apex}-primary", f"{apex}-canary"),
                    where=f"HTTPRoute {http_route['metadata'].get('namespace')}/{apex}: spec.rules[0]")


def read_weights(get: Getter, canary: Canary) -> Weights | None:
    """The split of the canary's HTTPRoute, or None before there is one."""
    found = get(*KIND, canary.metadata.namespace or "default", canary.spec.service_names[0])
    return route_weights(found) if found is not None else None


class GatewayAPIRouter(WeightedRouter):
    """Weighted and matched routing through a Gateway API HTTPRoute."""

    name = "gatewayapi"
    kind = KIND
    has_match = True
    supported = frozenset({"service.gatewayRefs", "service.hosts", "service.match"})
    read = staticmethod(read_weights)

    def build(self, route: RouteTarget, weights: Weights) -> Obj:
        """The HTTPRoute for ``weights``."""
        return build(route, weights)


PLUGIN = GatewayAPIRouter.plugin(crds=("gateway-api",))
