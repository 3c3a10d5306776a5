from __future__ import annotations

from typing import Any

from canary.models.canary import Canary
from canary.routers import gatewayapi, services
from canary.routers.base import RouteTarget, Weights


def _route(**analysis: Any) -> RouteTarget:
    spec: dict[str, Any] = {"targetRef": {"name": "web"}, "analysis": {"interval": "1s", **analysis},
                            "service": {"port": 80, "targetPort": "http",
                                        "gatewayRefs": [{"name": "public", "namespace": "gw"}]}}
    canary = Canary.model_validate({"metadata": {"name": "web", "namespace": "shop"}, "spec": spec})
    return RouteTarget(canary=canary, owner={"name": "web"}, selector=("app", "web"))


def test_three_services_select_primary_and_canary_pods() -> None:
    built = {s["metadata"]["name"]: s for s in services.build(_route(stepWeight=10))}
    assert set(built) == {"web", "web-primary", "web-canary"}
    assert built["web"]["spec"]["selector"] == {"app": "web-primary"}
    assert built["web-primary"]["spec"]["selector"] == {"app": "web-primary"}
    assert built["web-canary"]["spec"]["selector"] == {"app": "web"}
    assert built["web"]["spec"]["ports"] == [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": "http"}]


def test_the_http_route_splits_by_weight_and_reads_back() -> None:
    route = gatewayapi.build(_route(stepWeight=10), Weights(primary=70, canary=30))
    assert route["spec"]["parentRefs"] == [{"name": "public", "namespace": "gw"}]
    assert route["spec"]["rules"] == [{"backendRefs": [{"name": "web-primary", "port": 80, "weight": 70},
                                                       {"name": "web-canary", "port": 80, "weight": 30}]}]
    assert gatewayapi.route_weights(route) == Weights(primary=70, canary=30)


def test_ab_testing_sends_matching_requests_to_the_canary_and_the_rest_to_the_primary() -> None:
    match = [{"headers": {"x-canary": {"exact": "insider"}, "user-agent": {"regex": ".*Firefox.*"}}},
             {"uri": {"prefix": "/beta"}}]
    route = gatewayapi.build(_route(iterations=5, match=match), Weights(primary=0, canary=100))
    rules = route["spec"]["rules"]
    assert rules[0]["matches"] == [
        {"headers": [{"name": "user-agent", "type": "RegularExpression", "value": ".*Firefox.*"},
                     {"name": "x-canary", "type": "Exact", "value": "insider"}]},
        {"path": {"type": "PathPrefix", "value": "/beta"}},
    ]
    assert rules[0]["backendRefs"][1] == {"name": "web-canary", "port": 80, "weight": 100}
    assert rules[1] == {"backendRefs": [{"name": "web-primary", "port": 80, "weight": 100},
                                        {"name": "web-canary", "port": 80, "weight": 0}]}
    assert gatewayapi.route_weights(route) == Weights(primary=0, canary=100)


def test_the_services_carry_traffic_distribution() -> None:
    route = _route(stepWeight=10)
    spec = route.canary.spec.model_copy(update={"service": route.canary.spec.service.model_copy(
        update={"traffic_distribution": "PreferClose"})})
    canary = route.canary.model_copy(update={"spec": spec})
    built = services.build(RouteTarget(canary=canary, owner={}, selector=("app", "web")))
    assert {s["spec"]["trafficDistribution"] for s in built} == {"PreferClose"}


def test_blue_green_mirroring_is_a_request_mirror_filter_on_the_weighted_rule() -> None:
    route = gatewayapi.build(_route(iterations=5, mirror=True), Weights(primary=100, canary=0, mirror=100))
    [rule] = route["spec"]["rules"]
    assert rule["filters"] == [{"type": "RequestMirror",
                                "requestMirror": {"backendRef": {"name": "web-canary", "port": 80}}}]
    assert gatewayapi.route_weights(route) == Weights(primary=100, canary=0, mirror=100)
    unmirrored = gatewayapi.build(_route(iterations=5, mirror=True), Weights(primary=0, canary=100))
    assert gatewayapi.route_weights(unmirrored) == Weights(primary=0, canary=100)


def test_session_affinity_adds_cookie_rules_and_set_cookie_filters() -> None:
    base = _route(stepWeight=10, sessionAffinity={"cookieName": "flagger-cookie"})
    status = base.canary.status.model_copy(update={"session_affinity_cookie": "flagger-cookie=abc"})
    canary = base.canary.model_copy(update={"status": status})
    route = gatewayapi.build(RouteTarget(canary=canary, owner={}, selector=("app", "web")),
                             Weights(primary=80, canary=20))
    sticky, weighted = route["spec"]["rules"]
    assert sticky["matches"] == [{"headers": [{"type": "RegularExpression", "name": "Cookie",
                                               "value": ".*flagger-cookie.*abc.*"}]}]
    assert [b["weight"] for b in sticky["backendRefs"]] == [0, 100]
    assert weighted["backendRefs"][1]["filters"] == [{"type": "ResponseHeaderModifier", "responseHeaderModifier": {
        "add": [{"name": "Set-Cookie", "value": "flagger-cookie=abc; Max-Age=86400"}]}}]
    assert "filters" not in weighted["backendRefs"][0]
    assert gatewayapi.read_weights(lambda *key: route, canary) == Weights(primary=80, canary=20)
    assert gatewayapi.route_weights(route) == Weights(primary=0, canary=100), \
        "without session affinity the first rule is the canary rule"


def test_port_discovery_adds_the_targets_other_container_ports_to_every_service() -> None:
    base = _route(stepWeight=10)
    spec = base.canary.spec.model_copy(update={"service": base.canary.spec.service.model_copy(
        update={"port_discovery": True, "target_port": 9898})})
    canary = base.canary.model_copy(update={"spec": spec})
    pod_spec = {"containers": [
        {"name": "app", "ports": [{"name": "http", "containerPort": 9898}, {"name": "grpc", "containerPort": 9999},
                                  {"containerPort": 8081}]},
        {"name": "istio-proxy", "ports": [{"name": "http-envoy-prom", "containerPort": 15090}]}]}
    ports = services.discovered_ports(canary, pod_spec)
    assert ports == (("grpc", 9999), ("tcp-app-2", 8081))
    built = services.build(RouteTarget(canary=canary, owner={}, selector=("app", "web"), ports=ports))
    for service in built:
        assert [(p["name"], p["port"], p["targetPort"]) for p in service["spec"]["ports"]] == [
            ("http", 80, 9898), ("grpc", 9999, 9999), ("tcp-app-2", 8081, 8081)]
    assert services.discovered_ports(base.canary, pod_spec) == (), "only when asked for"


def _with_service(route: RouteTarget, **fields: Any) -> RouteTarget:
    service = route.canary.spec.service.model_validate({**route.canary.spec.service.model_dump(by_alias=True,
                                                                                                exclude_none=True),
                                                        **fields})
    canary = route.canary.model_copy(update={"spec": route.canary.spec.model_copy(update={"service": service})})
    return RouteTarget(canary=canary, owner=route.owner, selector=route.selector)


def test_headers_rewrite_and_timeouts_go_on_every_rule_as_flagger_writes_them() -> None:
    route = _with_service(_route(iterations=2, match=[{"headers": {"x-canary": {"exact": "insider"}}}]),
                          headers={"request": {"set": {"x-b": "2", "x-a": "1"}, "remove": ["x-debug"]},
                                   "response": {"add": {"x-served-by": "canary"}}},
                          rewrite={"uri": "/v2", "authority": "api.internal", "type": "ReplaceFullPath"},
                          timeout="30s", backendTimeout="10s")
    rules = gatewayapi.build(route, Weights(primary=0, canary=100))["spec"]["rules"]
    assert len(rules) == 2
    for rule in rules:
        assert rule["filters"] == [
            {"type": "RequestHeaderModifier", "requestHeaderModifier": {
                "set": [{"name": "x-a", "value": "1"}, {"name": "x-b", "value": "2"}], "remove": ["x-debug"]}},
            {"type": "ResponseHeaderModifier", "responseHeaderModifier": {
                "add": [{"name": "x-served-by", "value": "canary"}]}},
            {"type": "URLRewrite", "urlRewrite": {"hostname": "api.internal",
                                                  "path": {"type": "ReplaceFullPath", "replaceFullPath": "/v2"}}}]
        assert rule["timeouts"] == {"request": "30s", "backendRequest": "10s"}
    prefix = _with_service(_route(stepWeight=10), rewrite={"uri": "/"})
    [rule] = gatewayapi.build(prefix, Weights(primary=90, canary=10))["spec"]["rules"]
    assert rule["filters"] == [{"type": "URLRewrite", "urlRewrite": {
        "path": {"type": "ReplacePrefixMatch", "replacePrefixMatch": "/"}}}]
    assert "timeouts" not in rule


def test_a_cookie_expiry_and_the_services_response_headers_share_one_filter() -> None:
    base = _with_service(_route(stepWeight=10, sessionAffinity={"cookieName": "c"}),
                         headers={"response": {"add": {"x-a": "1"}}})
    status = base.canary.status.model_copy(update={"previous_session_affinity_cookie": "c=old"})
    route = RouteTarget(canary=base.canary.model_copy(update={"status": status}), owner={}, selector=("app", "web"))
    expire, _ = gatewayapi.build(route, Weights(primary=100, canary=0))["spec"]["rules"]
    assert expire["filters"] == [{"type": "ResponseHeaderModifier", "responseHeaderModifier": {
        "add": [{"name": "x-a", "value": "1"}, {"name": "Set-Cookie", "value": "c=old; Max-Age=-1"}]}}]
