"""The Gateway API router: an HTTPRoute ``<svc>`` that splits traffic between ``<svc>-primary`` and
``<svc>-canary`` by weight, and for A/B testing sends matching requests to the canary.

The route's parents come from spec.service.gatewayRefs, its hostnames from spec.service.hosts;
as Flagger's, every rule carries spec.service.headers (header modifier filters), rewrite (a
URLRewrite filter) and timeout/backendTimeout (the rule's timeouts). CORS is a filter of Gateway
API's experimental channel only, so spec.service.corsPolicy is refused with the standard CRDs.
Mirroring (spec.analysis.mirror) is a RequestMirror filter on the weighted rule (the standard
channel has no mirror percentage, so mirrorWeight is refused); session affinity adds the cookie
rules of ``canary.routers.affinity`` before it, and Set-Cookie filters on its backends.
"""

from __future__ import annotations

from canary.kube import Obj
from canary.models.canary import Canary, CanaryService, HeaderOperations, HTTPMatchRequest, Strategy, StringMatch
from canary.routers.affinity import COOKIE_HEADER, SET_COOKIE_HEADER, sticky_headers
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


def _header_filter(kind: str, operations: HeaderOperations) -> Obj:
    modifier: Obj = {}
    for field, values in (("add", operations.add), ("set", operations.set)):
        if values:
            modifier[field] = [{"name": name, "value": value} for name, value in sorted(values.items())]
    if operations.remove:
        modifier["remove"] = list(operations.remove)
    key = kind[0].lower() + kind[1:]
    return {"type": kind, key: modifier}


def service_filters(service: CanaryService) -> list[Obj]:
    """spec.service.headers and rewrite as HTTPRoute filters (Flagger's makeFilters)."""
    filters = []
    if service.headers is not None:
        if service.headers.request is not None:
            filters.append(_header_filter("RequestHeaderModifier", service.headers.request))
        if service.headers.response is not None:
            filters.append(_header_filter("ResponseHeaderModifier", service.headers.response))
    if service.rewrite is not None:
        rewrite: Obj = {}
        if service.rewrite.authority:
            rewrite["hostname"] = service.rewrite.authority
        if service.rewrite.uri:
            full = service.rewrite.type == "ReplaceFullPath"
            rewrite["path"] = {"type": "ReplaceFullPath", "replaceFullPath": service.rewrite.uri} if full else \
                {"type": "ReplacePrefixMatch", "replacePrefixMatch": service.rewrite.uri}
        filters.append({"type": "URLRewrite", "urlRewrite": rewrite})
    return filters


def _merged_filters(common: list[Obj], own: list[Obj]) -> list[Obj]:
    """``common`` then ``own``, a header modifier of both made one (Gateway API allows one of each type)."""
    merged = [dict(f) for f in common]
    for filter_ in own:
        same = next((f for f in merged if f["type"] == filter_["type"] and f["type"].endswith("HeaderModifier")), None)
        if same is None:
            merged.append(filter_)
            continue
        key = filter_["type"][0].lower() + filter_["type"][1:]
        theirs, mine = dict(same[key]), filter_[key]
        for field in ("add", "set", "remove"):
            if field in mine:
                theirs[field] = [*theirs.get(field, []), *mine[field]]
        same[key] = theirs
    return merged


def _timeouts(service: CanaryService) -> Obj:
    timeouts = {key: value for key, value in (("request", service.timeout), ("backendRequest", service.backend_timeout))
                if value}
    return {"timeouts": timeouts} if timeouts else {}


def _set_cookie(value: str | None) -> Obj:
    if not value:
        return {}
    return {"filters": [{"type": "ResponseHeaderModifier",
                         "responseHeaderModifier": {"add": [{"name": SET_COOKIE_HEADER, "value": value}]}}]}


def _cookie_matches(regex: str, defaults: list[Obj]) -> list[Obj]:
    cookie = {"type": "RegularExpression", "name": COOKIE_HEADER, "value": regex}
    if not defaults:
        return [{"headers": [cookie]}]
    return [{**match, "headers": [*(match.get("headers") or []), cookie]} for match in defaults]


def _is_sticky(rule: Obj) -> bool:
    """A session-affinity rule: every match tests the Cookie header."""
    matches = rule.get("matches") or []
    return bool(matches) and all(any(h.get("name") == COOKIE_HEADER for h in m.get("headers") or [])
                                 for m in matches)


def build(route: RouteTarget, weights: Weights) -> Obj:
    """The HTTPRoute for ``route`` with ``weights`` on its canary rule."""
    spec = route.canary.spec
    apex, primary, canary = spec.service_names
    port = spec.service.port

    def backends(split: Weights, *, primary_cookie: str | None = None, canary_cookie: str | None = None) -> list[Obj]:
        return [{"name": primary, "port": port, "weight": split.primary, **_set_cookie(primary_cookie)},
                {"name": canary, "port": port, "weight": split.canary, **_set_cookie(canary_cookie)}]

    rules: list[Obj] = []
    if spec.analysis.strategy is Strategy.AB_TESTING and spec.analysis.match:
        rules.append({"matches": http_route_matches(spec.analysis.match), "backendRefs": backends(weights)})
        rules.append({"backendRefs": backends(Weights(primary=100, canary=0))})
    else:
        defaults = http_route_matches(spec.service.match or [])
        rule: Obj = {"backendRefs": backends(weights)}
        if defaults:
            rule["matches"] = defaults
        if weights.mirror:
            rule["filters"] = [{"type": "RequestMirror",
                                "requestMirror": {"backendRef": {"name": canary, "port": port}}}]
        sticky = sticky_headers(route.canary, weights.canary)
        if sticky is not None and sticky.to_canary:
            rule["backendRefs"] = backends(weights, primary_cookie=sticky.primary_set_cookie,
                                           canary_cookie=sticky.canary_set_cookie)
            rules.append({"matches": _cookie_matches(sticky.to_canary, defaults),
                          "backendRefs": backends(Weights(primary=0, canary=100))})
        if sticky is not None and sticky.to_primary:
            rules.append({"matches": _cookie_matches(sticky.to_primary, defaults),
                          "backendRefs": backends(Weights(primary=100, canary=0))})
        if sticky is not None and sticky.expire:
            regex, expire = sticky.expire
            rules.append({"matches": _cookie_matches(regex, defaults), "backendRefs": backends(weights),
                          "filters": [{"type": "ResponseHeaderModifier", "responseHeaderModifier": {
                              "add": [{"name": SET_COOKIE_HEADER, "value": expire}]}}]})
        rules.append(rule)
    common = service_filters(spec.service)
    for each in rules:
        if common:
            each["filters"] = _merged_filters(common, each.get("filters", []))
        each.update(_timeouts(spec.service))
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


def route_weights(http_route: Obj, *, sticky: bool = False) -> Weights:
    """The split of the route's canary rule (with ``sticky``, session affinity, the first that is not
    a cookie rule), and whether it mirrors requests to the canary."""
    apex = http_route["metadata"]["name"]
    rules = http_route["spec"]["rules"]
    index, rule = next(((i, r) for i, r in enumerate(rules) if not (sticky and _is_sticky(r))), (0, rules[0]))
    refs = {ref["name"]: int(ref.get("weight", 1)) for ref in rule["backendRefs"]}
    canary = f"{apex}-canary"
    split = split_of(refs, (f"{apex}-primary", canary),
                     where=f"HTTPRoute {http_route['metadata'].get('namespace')}/{apex}: spec.rules[{index}]")
    mirrored = any(f.get("type") == "RequestMirror" and (f.get("requestMirror") or {}).get("backendRef", {})
                   .get("name") == canary for f in rule.get("filters") or [])
    return Weights(primary=split.primary, canary=split.canary, mirror=100 if mirrored else 0)


def read_weights(get: Getter, canary: Canary) -> Weights | None:
    """The split of the canary's HTTPRoute, or None before there is one."""
    found = get(*KIND, canary.metadata.namespace or "default", canary.spec.service_names[0])
    if found is None:
        return None
    return route_weights(found, sticky=canary.spec.analysis.session_affinity is not None)


class GatewayAPIRouter(WeightedRouter):
    """Weighted and matched routing through a Gateway API HTTPRoute."""

    name = "gatewayapi"
    kind = KIND
    has_match = True
    supported = frozenset({"service.gatewayRefs", "service.hosts", "service.match", "service.headers",
                           "service.rewrite", "service.timeout", "service.backendTimeout", "analysis.mirror",
                           "analysis.sessionAffinity"})
    read = staticmethod(read_weights)

    def build(self, route: RouteTarget, weights: Weights) -> Obj:
        """The HTTPRoute for ``weights``."""
        return build(route, weights)


PLUGIN = GatewayAPIRouter.plugin(crds=("gateway-api",))
