"""The Istio router: a VirtualService ``<svc>`` that splits traffic between ``<svc>-primary`` and
``<svc>-canary`` by weight (or, for A/B testing, sends matching requests to the canary), and the
DestinationRules ``<svc>-primary`` and ``<svc>-canary`` that carry spec.service.trafficPolicy.

What it writes follows Flagger's pkg/router/istio.go: the hosts are spec.service.hosts plus the
apex Service; the gateways spec.service.gateways, else the ``mesh`` gateway; the HTTP route takes
spec.service.match, rewrite, timeout, retries, corsPolicy and headers; with spec.service.delegation
the VirtualService has no hosts or gateways (it is a delegate); with appProtocol ``tcp`` the route
is a TCP route. All of it is owned by the Canary and written by server-side apply.

Mirroring (spec.analysis.mirror) puts ``mirror`` (and ``mirrorPercentage`` for mirrorWeight) on
the weighted route; session affinity (spec.analysis.sessionAffinity) adds the cookie routes of
``canary.routers.affinity`` before it.
"""

from __future__ import annotations

from canary.defaults import FIELD_MANAGER
from canary.kube import Obj
from canary.kube.apply import apply_if_changed
from canary.models.canary import Canary, CanaryService, HTTPMatchRequest
from canary.routers import services
from canary.routers.affinity import COOKIE_HEADER, SET_COOKIE_HEADER, sticky_headers
from canary.routers.base import ALL_TO_PRIMARY, Getter, RouteTarget, Weights, split_of
from canary.routers.weighted import WeightedRouter

API_VERSION = "networking.istio.io/v1"
VIRTUAL_SERVICE = (API_VERSION, "VirtualService")
DESTINATION_RULE = (API_VERSION, "DestinationRule")
MESH_GATEWAY = "mesh"


def _is_tcp(service: CanaryService) -> bool:
    return (service.app_protocol or "").lower() == "tcp"


def _matches(matches: list[HTTPMatchRequest] | None) -> list[Obj]:
    return [m.model_dump(by_alias=True, exclude_none=True) for m in matches or []]


def merged_matches(canary_matches: list[HTTPMatchRequest], defaults: list[HTTPMatchRequest]) -> list[Obj]:
    """The A/B matches combined with spec.service.match, as Flagger's ``mergeMatchConditions``: each
    default match once per canary match, with the canary match's headers and sourceLabels."""
    if not defaults:
        return _matches(canary_matches)
    merged = []
    for wanted in canary_matches:
        for default in _matches(defaults):
            if wanted.headers is not None:
                default["headers"] = {k: v.model_dump(exclude_none=True) for k, v in wanted.headers.items()}
            if wanted.source_labels is not None:
                default["sourceLabels"] = dict(wanted.source_labels)
            merged.append(default)
    return merged


def _destination(service: CanaryService, host: str, weight: int, *, set_cookie: str | None = None) -> Obj:
    destination: Obj = {"host": host}
    outside_mesh = (service.gateways or [MESH_GATEWAY])[0] != MESH_GATEWAY
    if service.port_discovery and (outside_mesh or service.delegation):
        destination["port"] = {"number": service.port}
    found: Obj = {"destination": destination, "weight": weight}
    if set_cookie:
        found["headers"] = {"response": {"add": {SET_COOKIE_HEADER: set_cookie}}}
    return found


def _cookie_matches(regex: str, defaults: list[HTTPMatchRequest] | None) -> list[Obj]:
    cookie = HTTPMatchRequest.model_validate({"headers": {COOKIE_HEADER: {"regex": regex}}})
    return merged_matches([cookie], defaults or [])


def _sticky_routes(route: RouteTarget, weights: Weights, weighted: Obj) -> list[Obj]:
    """The session-affinity routes before ``weighted`` (which gets the Set-Cookie headers)."""
    spec = route.canary.spec
    service = spec.service
    _, primary, canary = spec.service_names
    sticky = sticky_headers(route.canary, weights.canary)
    if sticky is None:
        return []
    routes = []
    plain = {k: v for k, v in weighted.items() if k not in ("mirror", "mirrorPercentage")}
    if sticky.to_canary:
        weighted["route"] = [_destination(service, primary, weights.primary, set_cookie=sticky.primary_set_cookie),
                             _destination(service, canary, weights.canary, set_cookie=sticky.canary_set_cookie)]
        routes.append({**plain, "match": _cookie_matches(sticky.to_canary, service.match),
                       "route": [_destination(service, primary, 0), _destination(service, canary, 100)]})
    if sticky.to_primary:
        routes.append({**plain, "match": _cookie_matches(sticky.to_primary, service.match),
                       "route": [_destination(service, primary, 100), _destination(service, canary, 0)]})
    if sticky.expire:
        regex, expire = sticky.expire
        headers = dict(plain.get("headers") or {})
        response = dict(headers.get("response") or {})
        response["add"] = {**(response.get("add") or {}), SET_COOKIE_HEADER: expire}
        routes.append({**plain, "match": _cookie_matches(regex, service.match),
                       "headers": {**headers, "response": response}})
    return routes


def _is_sticky(rule: Obj) -> bool:
    """A session-affinity route: every match tests the Cookie header."""
    matches = rule.get("match") or []
    return bool(matches) and all(COOKIE_HEADER in (m.get("headers") or {}) for m in matches)


def _http_route(service: CanaryService, destinations: list[Obj], matches: list[Obj]) -> Obj:
    route: Obj = {"route": destinations}
    if matches:
        route["match"] = matches
    if service.rewrite is not None:
        rewrite = service.rewrite.model_dump(by_alias=True, exclude_none=True)
        rewrite.pop("type", None)  # Gateway API's rewrite type; Istio rewrites the given uri and authority
        if rewrite:
            route["rewrite"] = rewrite
    if service.timeout:
        route["timeout"] = service.timeout
    for field, value in (("retries", service.retries), ("corsPolicy", service.cors_policy),
                         ("headers", service.headers)):
        if value is not None:
            route[field] = value.model_dump(by_alias=True, exclude_none=True)
    return route


def virtual_service(route: RouteTarget, weights: Weights) -> Obj:
    """The VirtualService of ``route`` with ``weights`` on its canary route."""
    spec = route.canary.spec
    service = spec.service
    apex, primary, canary = spec.service_names
    hosts = list(service.hosts or [])
    if apex not in hosts and "*" not in hosts:
        hosts.append(apex)
    gateways = list(service.gateways or [MESH_GATEWAY])
    if service.delegation:
        hosts, gateways = [], []  # a delegate VirtualService has neither
    split = [_destination(service, primary, weights.primary), _destination(service, canary, weights.canary)]
    body: Obj = {"hosts": hosts, "gateways": gateways}
    if _is_tcp(service):
        ports = [{"port": port} for m in service.match or [] if (port := (m.model_extra or {}).get("port"))]
        body["tcp"] = [{"route": split, **({"match": ports} if ports else {})}]
    elif spec.analysis.match:
        body["http"] = [
            _http_route(service, split, merged_matches(spec.analysis.match, service.match or [])),
            _http_route(service, [_destination(service, primary, 100)], _matches(service.match)),
        ]
    else:
        weighted = _http_route(service, split, _matches(service.match))
        if weights.mirror:
            weighted["mirror"] = {"host": canary}
            if spec.analysis.mirror_weight:
                weighted["mirrorPercentage"] = {"value": weights.mirror}
        body["http"] = [*_sticky_routes(route, weights, weighted), weighted]
    apex_meta = service.apex
    return {
        "apiVersion": API_VERSION,
        "kind": "VirtualService",
        "metadata": {"name": apex, "namespace": route.namespace, "ownerReferences": [route.owner],
                     "labels": dict(apex_meta.labels or {}) if apex_meta else {},
                     "annotations": dict(apex_meta.annotations or {}) if apex_meta else {}},
        "spec": body,
    }


def destination_rules(route: RouteTarget) -> list[Obj]:
    """The DestinationRules of the primary and canary Services, with spec.service.trafficPolicy."""
    spec = route.canary.spec
    policy = spec.service.traffic_policy
    rules = []
    for host in spec.service_names[1:]:
        body: Obj = {"host": host}
        if policy is not None:
            body["trafficPolicy"] = policy.model_dump(by_alias=True, exclude_none=True)
        rules.append({"apiVersion": API_VERSION, "kind": "DestinationRule",
                      "metadata": {"name": host, "namespace": route.namespace, "ownerReferences": [route.owner]},
                      "spec": body})
    return rules


def service_weights(vs: Obj, canary: Canary) -> Weights:
    """The split of the route that sends traffic to the canary Service (not a session-affinity
    cookie route), and how much of it is mirrored to the canary."""
    _, primary, canary_host = canary.spec.service_names
    where = f"VirtualService {vs['metadata'].get('namespace')}/{vs['metadata']['name']}"
    sticky = canary.spec.analysis.session_affinity is not None
    for kind in ("http", "tcp"):
        for index, rule in enumerate(vs.get("spec", {}).get(kind) or []):
            found = {d.get("destination", {}).get("host"): int(d.get("weight", 0) or 0)
                     for d in rule.get("route") or []}
            if canary_host in found and not (sticky and _is_sticky(rule)):
                split = split_of(found, (primary, canary_host), where=f"{where}: spec.{kind}[{index}].route")
                mirror = 0
                if (rule.get("mirror") or {}).get("host") == canary_host:
                    mirror = round(float((rule.get("mirrorPercentage") or {}).get("value", 100)))
                return Weights(primary=split.primary, canary=split.canary, mirror=mirror)
    return split_of({}, (primary, canary_host), where=f"{where}: spec.http")


def read_weights(get: Getter, canary: Canary) -> Weights | None:
    """The split of the canary's VirtualService, or None before there is one."""
    found = get(*VIRTUAL_SERVICE, canary.metadata.namespace or "default", canary.spec.service_names[0])
    return service_weights(found, canary) if found is not None else None


class IstioRouter(WeightedRouter):
    """Weighted and header-matched routing through an Istio VirtualService."""

    name = "istio"
    kind = VIRTUAL_SERVICE
    extra_kinds = (DESTINATION_RULE,)
    has_match = True
    supported = frozenset({
        "service.gateways", "service.hosts", "service.delegation", "service.trafficPolicy", "service.match",
        "service.rewrite", "service.retries", "service.headers", "service.corsPolicy", "service.timeout",
        "analysis.mirror", "analysis.mirrorWeight", "analysis.sessionAffinity"})
    read = staticmethod(read_weights)

    def build(self, route: RouteTarget, weights: Weights) -> Obj:
        """The VirtualService for ``weights``."""
        return virtual_service(route, weights)

    def reconcile(self, route: RouteTarget) -> None:
        """Create or correct the DestinationRules too."""
        for rule in destination_rules(route):
            apply_if_changed(self._kube, self._extra[DESTINATION_RULE], rule, field_manager=FIELD_MANAGER)
        super().reconcile(route)

    def finalize(self, route: RouteTarget) -> None:
        """Route the apex host to the apex Service, which then selects the target's pods."""
        body = virtual_service(route, ALL_TO_PRIMARY)
        apex = route.canary.spec.service_names[0]
        for kind in ("http", "tcp"):
            for rule in body["spec"].get(kind) or []:
                rule["route"] = [{"destination": {"host": apex}, "weight": 100}]
        apply_if_changed(self._kube, self._objects, body, field_manager=FIELD_MANAGER)
        services.release_apex(self._kube, self._services, route)


PLUGIN = IstioRouter.plugin(crds=("istio",))
