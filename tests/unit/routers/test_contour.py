"""What the contour router writes, after Flagger's pkg/router/contour.go, and what it reads back."""

from __future__ import annotations

from typing import Any

from canary.models.canary import Canary
from canary.routers import contour
from canary.routers.base import RouteTarget, Weights


def _route(service: dict[str, Any] | None = None, **analysis: Any) -> RouteTarget:
    spec: dict[str, Any] = {"provider": "contour", "targetRef": {"name": "web"},
                            "analysis": {"interval": "1s", **(analysis or {"stepWeight": 10})},
                            "service": {"port": 9898, **(service or {})}}
    canary = Canary.model_validate({"metadata": {"name": "web", "namespace": "shop"}, "spec": spec})
    return RouteTarget(canary=canary, owner={"name": "web"}, selector=("app", "web"))


def test_the_proxy_splits_by_weight_with_the_timeout_and_retries_and_reads_back() -> None:
    route = _route({"timeout": "15s", "retries": {"attempts": 3, "perTryTimeout": "5s", "retryOn": "5xx,reset"},
                    "match": [{"uri": {"prefix": "/api"}}]})
    proxy = contour.build(route, Weights(primary=80, canary=20))
    (only,) = proxy["spec"]["routes"]
    assert only["conditions"] == [{"prefix": "/api"}]
    assert [(s["name"], s["port"], s["weight"]) for s in only["services"]] == [("web-primary", 9898, 80),
                                                                             ("web-canary", 9898, 20)]
    assert only["services"][1]["requestHeadersPolicy"] == {
        "set": [{"name": "l5d-dst-override", "value": "web-canary.shop.svc.cluster.local:9898"}]}
    assert only["timeoutPolicy"] == {"response": "15s", "idle": "5m"}
    assert only["retryPolicy"] == {"count": 3, "perTryTimeout": "5s", "retryOn": ["5xx", "reset"]}
    assert contour.proxy_weights(proxy, route.canary) == Weights(primary=80, canary=20)


def test_ab_testing_puts_a_header_route_first_and_everything_else_on_the_primary() -> None:
    route = _route(iterations=2, match=[{"headers": {"x-canary": {"exact": "insider"}}}])
    proxy = contour.build(route, Weights(primary=0, canary=100))
    first, rest = proxy["spec"]["routes"]
    assert first["conditions"] == [{"prefix": "/", "header": {"name": "x-canary", "exact": "insider"}}]
    assert [s["weight"] for s in first["services"]] == [0, 100]
    assert rest["conditions"] == [{"prefix": "/"}]
    assert [s["weight"] for s in rest["services"]] == [100, 0]
    assert contour.proxy_weights(proxy, route.canary) == Weights(primary=0, canary=100)
