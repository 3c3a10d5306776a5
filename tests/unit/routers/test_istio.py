"""What the istio router writes, after Flagger's pkg/router/istio.go, and what it reads back."""

from __future__ import annotations

from typing import Any

import pytest

from canary.errors import PermanentError
from canary.models.canary import Canary
from canary.routers import istio
from canary.routers.base import RouteTarget, Weights, unsupported_fields


def _route(service: dict[str, Any] | None = None, **analysis: Any) -> RouteTarget:
    spec: dict[str, Any] = {"provider": "istio", "targetRef": {"name": "web"},
                            "analysis": {"interval": "1s", **(analysis or {"stepWeight": 10})},
                            "service": {"port": 9898, **(service or {})}}
    canary = Canary.model_validate({"metadata": {"name": "web", "namespace": "shop"}, "spec": spec})
    return RouteTarget(canary=canary, owner={"name": "web"}, selector=("app", "web"))


def test_the_virtual_service_splits_by_weight_on_the_mesh_gateway_and_reads_back() -> None:
    route = _route()
    vs = istio.virtual_service(route, Weights(primary=70, canary=30))
    assert vs["apiVersion"] == "networking.istio.io/v1"
    assert vs["spec"] == {"hosts": ["web"], "gateways": ["mesh"], "http": [{"route": [
        {"destination": {"host": "web-primary"}, "weight": 70},
        {"destination": {"host": "web-canary"}, "weight": 30}]}]}
    assert istio.service_weights(vs, route.canary) == Weights(primary=70, canary=30)
    assert istio.read_weights(lambda *key: vs if key[1] == "VirtualService" else None, route.canary) == \
        Weights(primary=70, canary=30)


def test_the_service_fields_go_on_the_http_route_and_the_destination_rules() -> None:
    route = _route({"hosts": ["web.example.com"], "gateways": ["public/gateway"], "portDiscovery": True,
                    "timeout": "30s", "retries": {"attempts": 3, "perTryTimeout": "1s", "retryOn": "5xx"},
                    "rewrite": {"uri": "/"}, "headers": {"request": {"add": {"x-canary": "maybe"}}},
                    "corsPolicy": {"allowOrigins": [{"exact": "https://example.com"}]},
                    "match": [{"uri": {"prefix": "/api"}}],
                    "trafficPolicy": {"tls": {"mode": "ISTIO_MUTUAL"}}})
    vs = istio.virtual_service(route, Weights(primary=100, canary=0))
    assert vs["spec"]["hosts"] == ["web.example.com", "web"]
    assert vs["spec"]["gateways"] == ["public/gateway"]
    (http,) = vs["spec"]["http"]
    assert http["match"] == [{"uri": {"prefix": "/api"}}]
    assert http["timeout"] == "30s"
    assert http["retries"] == {"attempts": 3, "perTryTimeout": "1s", "retryOn": "5xx"}
    assert http["rewrite"] == {"uri": "/"}
    assert http["headers"] == {"request": {"add": {"x-canary": "maybe"}}}
    assert http["corsPolicy"] == {"allowOrigins": [{"exact": "https://example.com"}]}
    assert http["route"][0] == {"destination": {"host": "web-primary", "port": {"number": 9898}}, "weight": 100}
    rules = istio.destination_rules(route)
    assert [(r["metadata"]["name"], r["spec"]) for r in rules] == [
        ("web-primary", {"host": "web-primary", "trafficPolicy": {"tls": {"mode": "ISTIO_MUTUAL"}}}),
        ("web-canary", {"host": "web-canary", "trafficPolicy": {"tls": {"mode": "ISTIO_MUTUAL"}}})]


def test_ab_testing_sends_matching_requests_to_the_canary_and_the_rest_to_the_primary() -> None:
    cookie = {"cookie": {"regex": "^(.*?;)?(canary=always)(;.*)?$"}}
    route = _route({"match": [{"uri": {"prefix": "/api"}}]}, iterations=5,
                   match=[{"headers": {"x-canary": {"exact": "insider"}}}, {"headers": cookie}])
    vs = istio.virtual_service(route, Weights(primary=0, canary=100))
    first, rest = vs["spec"]["http"]
    assert first["match"] == [{"uri": {"prefix": "/api"}, "headers": {"x-canary": {"exact": "insider"}}},
                              {"uri": {"prefix": "/api"}, "headers": cookie}]
    assert first["route"][1] == {"destination": {"host": "web-canary"}, "weight": 100}
    assert rest == {"match": [{"uri": {"prefix": "/api"}}], "route": [{"destination": {"host": "web-primary"},
                                                                       "weight": 100}]}
    assert istio.service_weights(vs, route.canary) == Weights(primary=0, canary=100)


def test_a_delegate_has_no_hosts_or_gateways_and_tcp_gets_a_tcp_route() -> None:
    delegate = istio.virtual_service(_route({"delegation": True}), Weights(100, 0))
    assert (delegate["spec"]["hosts"], delegate["spec"]["gateways"]) == ([], [])
    tcp = istio.virtual_service(_route({"appProtocol": "tcp"}), Weights(90, 10))
    assert "http" not in tcp["spec"]
    assert tcp["spec"]["tcp"] == [{"route": [{"destination": {"host": "web-primary"}, "weight": 90},
                                             {"destination": {"host": "web-canary"}, "weight": 10}]}]
    assert istio.service_weights(tcp, _route({"appProtocol": "tcp"}).canary) == Weights(90, 10)


def test_a_virtual_service_without_the_canary_names_itself() -> None:
    vs = {"kind": "VirtualService", "metadata": {"name": "web", "namespace": "shop"},
          "spec": {"http": [{"route": [{"destination": {"host": "elsewhere"}, "weight": 100}]}]}}
    with pytest.raises(PermanentError, match=r"VirtualService shop/web: spec.http must route to web-primary"):
        istio.service_weights(vs, _route().canary)


def test_a_field_the_router_does_not_implement_is_named() -> None:
    canary = _route({"timeout": "5s", "gatewayRefs": [{"name": "public"}]}, stepWeight=10,
                    sessionAffinity={"cookieName": "canary"}).canary
    assert unsupported_fields(canary, istio.IstioRouter.supported) == ["spec.service.gatewayRefs"]
    assert unsupported_fields(canary, frozenset({"service.gatewayRefs"})) == [
        "spec.service.timeout", "spec.analysis.sessionAffinity"]


def _with_status(route: RouteTarget, **status: str) -> RouteTarget:
    canary = route.canary.model_copy(update={"status": route.canary.status.model_copy(update=status)})
    return RouteTarget(canary=canary, owner=route.owner, selector=route.selector)


def test_mirroring_copies_the_weighted_routes_requests_to_the_canary_and_reads_back() -> None:
    route = _route(stepWeight=10, mirror=True, mirrorWeight=40)
    vs = istio.virtual_service(route, Weights(primary=100, canary=0, mirror=40))
    [http] = vs["spec"]["http"]
    assert http["mirror"] == {"host": "web-canary"}
    assert http["mirrorPercentage"] == {"value": 40}
    assert istio.service_weights(vs, route.canary) == Weights(primary=100, canary=0, mirror=40)

    everything = _route(stepWeight=10, mirror=True)
    vs = istio.virtual_service(everything, Weights(primary=100, canary=0, mirror=100))
    assert "mirrorPercentage" not in vs["spec"]["http"][0], "without mirrorWeight Istio mirrors every request"
    assert istio.service_weights(vs, everything.canary).mirror == 100
    stepped = istio.virtual_service(everything, Weights(primary=90, canary=10))
    assert "mirror" not in stepped["spec"]["http"][0]
    assert istio.service_weights(stepped, everything.canary).mirror == 0


def test_session_affinity_routes_cookie_holders_to_the_canary_and_sets_the_cookies() -> None:
    route = _with_status(_route(stepWeight=10, sessionAffinity={"cookieName": "flagger-cookie", "maxAge": 60,
                                                                "primaryCookieName": "primary-cookie"}),
                         session_affinity_cookie="flagger-cookie=abc",
                         primary_session_affinity_cookie="primary-cookie=xyz")
    vs = istio.virtual_service(route, Weights(primary=90, canary=10))
    sticky_canary, sticky_primary, weighted = vs["spec"]["http"]
    assert sticky_canary["match"] == [{"headers": {"Cookie": {"regex": ".*flagger-cookie.*abc.*"}}}]
    assert [d["weight"] for d in sticky_canary["route"]] == [0, 100]
    assert sticky_primary["match"] == [{"headers": {"Cookie": {"regex": ".*primary-cookie.*xyz.*"}}}]
    assert [d["weight"] for d in sticky_primary["route"]] == [100, 0]
    primary, canary = weighted["route"]
    assert canary["headers"] == {"response": {"add": {"Set-Cookie": "flagger-cookie=abc; Max-Age=60"}}}
    assert primary["headers"] == {"response": {"add": {"Set-Cookie": "primary-cookie=xyz; Max-Age=1"}}}, \
        "the primary's cookie lasts one analysis interval"
    assert istio.service_weights(vs, route.canary) == Weights(primary=90, canary=10), "the cookie routes are skipped"


def test_after_a_run_the_previous_cookie_is_expired_and_its_holders_follow_the_weights() -> None:
    route = _with_status(_route(stepWeight=10, sessionAffinity={"cookieName": "flagger-cookie"}),
                         previous_session_affinity_cookie="flagger-cookie=abc")
    expire, weighted = istio.virtual_service(route, Weights(primary=100, canary=0))["spec"]["http"]
    assert expire["match"] == [{"headers": {"Cookie": {"regex": ".*flagger-cookie.*abc.*"}}}]
    assert expire["headers"] == {"response": {"add": {"Set-Cookie": "flagger-cookie=abc; Max-Age=-1"}}}
    assert [d["weight"] for d in expire["route"]] == [100, 0]
    assert "match" not in weighted
