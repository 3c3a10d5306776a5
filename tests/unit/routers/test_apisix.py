"""What the apisix router writes, after Flagger's pkg/router/apisix.go: a canary ApisixRoute
``<routeRef>-<svc>-canary`` made from the user's route, its HTTP route to the apex split between the
primary and canary backends, and what it reads back."""

from __future__ import annotations

from typing import Any

import pytest

from canary.errors import PermanentError
from canary.models.canary import Canary
from canary.routers import apisix
from canary.routers.base import Weights

MAIN: dict[str, Any] = {
    "apiVersion": "apisix.apache.org/v2", "kind": "ApisixRoute",
    "metadata": {"name": "web", "namespace": "shop", "labels": {"team": "a"},
                 "annotations": {"note": "x", "kubectl.kubernetes.io/last-applied-configuration": "{}"}},
    "spec": {"http": [
        {"name": "other", "match": {"paths": ["/other"]}, "backends": [{"serviceName": "other", "servicePort": 80}]},
        {"name": "method", "match": {"hosts": ["app.example.com"], "methods": ["GET"], "paths": ["/*"]},
         "plugins": [{"name": "prometheus", "enable": True, "config": {"prefer_name": True}}],
         "backends": [{"serviceName": "web", "servicePort": 80, "resolveGranularity": "service"}]}],
        "stream": [{"name": "tcp", "protocol": "TCP", "match": {"ingressPort": 9100},
                    "backend": {"serviceName": "web", "servicePort": 9100}}]}}


def _canary(**spec: Any) -> Canary:
    return Canary.model_validate({"metadata": {"name": "web", "namespace": "shop"}, "spec": {
        "provider": "apisix", "targetRef": {"name": "web"}, "service": {"port": 80},
        "routeRef": {"apiVersion": "apisix.apache.org/v2", "kind": "ApisixRoute", "name": "web"},
        "analysis": {"interval": "1s", "stepWeight": 10}, **spec}})


def test_the_canary_route_is_the_users_route_to_the_apex_split_between_primary_and_canary() -> None:
    body = apisix.build(_canary(), MAIN, Weights(primary=90, canary=10), owner={"name": "web"})
    assert (body["apiVersion"], body["kind"]) == ("apisix.apache.org/v2", "ApisixRoute")
    meta = body["metadata"]
    assert (meta["name"], meta["namespace"], meta["ownerReferences"]) == ("web-web-canary", "shop", [{"name": "web"}])
    assert (meta["labels"], meta["annotations"]) == ({"team": "a"}, {"note": "x"})
    assert body["spec"] == {"http": [{
        "name": "method", "priority": 10000,
        "match": {"hosts": ["app.example.com"], "methods": ["GET"], "paths": ["/*"]},
        "plugins": [{"name": "prometheus", "enable": True, "config": {"prefer_name": True}}],
        "backends": [
            {"serviceName": "web-primary", "servicePort": 80, "resolveGranularity": "service", "weight": 90},
            {"serviceName": "web-canary", "servicePort": 80, "resolveGranularity": "service", "weight": 10}]}]}
    assert apisix.route_weights(body, _canary()) == Weights(primary=90, canary=10)
    assert MAIN["spec"]["http"][1]["backends"][0]["serviceName"] == "web", "the user's route is not changed"


def test_the_canary_route_is_named_after_the_route_ref_and_the_apex_service() -> None:
    canary = _canary(service={"port": 80, "name": "api"})
    main = {**MAIN, "spec": {"http": [{"name": "r", "backends": [{"serviceName": "api", "servicePort": 80}]}]}}
    body = apisix.build(canary, main, Weights(100, 0), owner={})
    assert body["metadata"]["name"] == "web-api-canary"
    assert [b["serviceName"] for b in body["spec"]["http"][0]["backends"]] == ["api-primary", "api-canary"]


@pytest.mark.parametrize(("http", "words"), [
    ([{"name": "r", "backends": [{"serviceName": "other", "servicePort": 80}]}],
     "has no spec.http route whose backend is the apex Service web"),
    ([{"name": "r", "backends": [{"serviceName": "web", "servicePort": 80}, {"serviceName": "x", "servicePort": 80}]}],
     "spec.http route r must have exactly one backend, the apex Service web"),
])
def test_a_user_route_that_cannot_be_split_is_refused_naming_it(http: list[Any], words: str) -> None:
    with pytest.raises(PermanentError, match=f"Canary shop/web: spec.routeRef: ApisixRoute web:? {words}"):
        apisix.build(_canary(), {**MAIN, "spec": {"http": http}}, Weights(100, 0), owner={})


@pytest.mark.parametrize(("ref", "words"), [
    (None, "spec.routeRef: the apisix router needs the ApisixRoute that routes to the apex Service"),
    ({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "name": "web"},
     "spec.routeRef: the apisix router needs an apisix.apache.org/v2 ApisixRoute, got networking.k8s.io/v1 Ingress"),
])
def test_the_route_ref_must_name_an_apisix_route(ref: dict[str, str] | None, words: str) -> None:
    with pytest.raises(PermanentError, match=f"Canary shop/web: {words}"):
        apisix.canary_route_name(_canary(routeRef=ref))


def test_read_weights_reads_the_canary_route_and_is_none_without_one() -> None:
    body = apisix.build(_canary(), MAIN, Weights(70, 30), owner={})
    assert apisix.read_weights(lambda _v, _k, _ns, name: body if name == "web-web-canary" else None, _canary()) \
        == Weights(70, 30)
    assert apisix.read_weights(lambda *_: None, _canary()) is None
    assert apisix.read_weights(lambda *_: body, _canary(routeRef=None)) is None


def test_the_metric_route_is_the_name_apisix_gives_the_canary_route() -> None:
    body = apisix.build(_canary(), MAIN, Weights(70, 30), owner={})
    assert apisix.metric_route(lambda *_: body, _canary()) == "shop_web-web-canary_method"
    assert apisix.metric_route(lambda *_: None, _canary()) == ""
