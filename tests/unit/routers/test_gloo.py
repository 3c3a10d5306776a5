"""What the gloo router writes, after Flagger's pkg/router/gloo.go: the primary and canary Upstreams and
a RouteTable with weighted destinations; analysis.match as matchers, one per entry, with every other
request left on the primary."""

from __future__ import annotations

import re
from typing import Any

import pytest

from canary.errors import PermanentError
from canary.models.canary import Canary
from canary.routers import gloo
from canary.routers.base import RouteTarget, Weights


def _canary(**analysis: Any) -> Canary:
    return Canary.model_validate({"metadata": {"name": "web", "namespace": "shop"}, "spec": {
        "provider": "gloo", "targetRef": {"name": "web"}, "service": {"port": 9898},
        "analysis": {"interval": "1s", "stepWeight": 10, **analysis}}})


def _route(canary: Canary) -> RouteTarget:
    return RouteTarget(canary=canary, owner={"name": "web"}, selector=("app", "web"))


def _destination(name: str, weight: int) -> dict[str, Any]:
    return {"destination": {"upstream": {"name": name, "namespace": "shop"}}, "weight": weight}


def test_the_route_table_is_named_after_the_apex_and_weighs_flaggers_upstreams() -> None:
    body = gloo.build(_route(_canary()), Weights(primary=80, canary=20))
    assert (body["apiVersion"], body["kind"], body["metadata"]["name"]) == ("gateway.solo.io/v1", "RouteTable", "web")
    assert body["metadata"]["ownerReferences"] == [{"name": "web"}]
    assert body["spec"] == {"routes": [{"inheritablePathMatchers": True, "routeAction": {"multi": {"destinations": [
        _destination("shop-web-primaryupstream-9898", 80), _destination("shop-web-canaryupstream-9898", 20)]}}}]}
    assert gloo.table_weights(body, _canary()) == Weights(primary=80, canary=20)


def test_the_upstreams_select_the_primary_and_canary_services_pods() -> None:
    primary, canary = gloo.upstreams(_route(_canary()), None)
    assert (primary["apiVersion"], primary["kind"], primary["metadata"]["name"]) == \
        ("gloo.solo.io/v1", "Upstream", "shop-web-primaryupstream-9898")
    assert primary["spec"] == {"kube": {"serviceName": "web-primary", "serviceNamespace": "shop", "servicePort": 9898,
                                        "selector": {"app": "web-primary"}}}
    assert canary["metadata"]["name"] == "shop-web-canaryupstream-9898"
    assert canary["spec"]["kube"]["selector"] == {"app": "web"}


def test_the_upstream_ref_lends_its_connection_settings_but_not_its_destination() -> None:
    config = {"spec": {"loadBalancerConfig": {"roundRobin": {}}, "useHttp2": True,
                       "kube": {"serviceName": "elsewhere", "servicePort": 1}, "static": {"hosts": []}}}
    primary, _ = gloo.upstreams(_route(_canary()), config)
    assert primary["spec"]["loadBalancerConfig"] == {"roundRobin": {}}
    assert primary["spec"]["useHttp2"] is True
    assert primary["spec"]["kube"]["serviceName"] == "web-primary"
    assert "static" not in primary["spec"]


def test_ab_matches_become_one_matcher_each_and_other_requests_stay_on_the_primary() -> None:
    canary = _canary(match=[{"headers": {"x-canary": {"exact": "insider"}, "user-agent": {"regex": ".*Mobile.*"}}},
                            {"headers": {"x-beta": {"prefix": "v1."}}, "method": {"exact": "GET"}},
                            {"queryParams": {"canary": {"exact": "1"}}}])
    routes = gloo.build(_route(canary), Weights(0, 100))["spec"]["routes"]
    assert routes[0]["matchers"] == [
        {"headers": [{"name": "x-canary", "value": "insider"},
                     {"name": "user-agent", "value": ".*Mobile.*", "regex": True}]},
        {"headers": [{"name": "x-beta", "value": r"v1\..*", "regex": True}], "methods": ["GET"]},
        {"queryParameters": [{"name": "canary", "value": "1"}]}]
    assert routes[0]["routeAction"]["multi"]["destinations"][1]["weight"] == 100
    assert "matchers" not in routes[1]
    assert [d["weight"] for d in routes[1]["routeAction"]["multi"]["destinations"]] == [100, 0]
    assert gloo.GlooRouter.has_match


@pytest.mark.parametrize(("match", "words"), [
    ({"uri": {"prefix": "/api"}}, r"spec.analysis.match\[0\].uri: not implemented by the gloo router"),
    ({"sourceLabels": {"app": "x"}}, r"spec.analysis.match\[0\].sourceLabels: not implemented by the gloo router"),
    ({"method": {"regex": "GET|POST"}}, r"spec.analysis.match\[0\].method: the gloo router matches methods exactly"),
])
def test_a_match_gloo_cannot_express_is_refused_naming_the_field(match: dict[str, Any], words: str) -> None:
    with pytest.raises(PermanentError, match=f"Canary shop/web: {words}"):
        gloo.build(_route(_canary(match=[match])), Weights(0, 100))


def test_a_destination_without_a_weight_has_none_and_a_missing_upstream_is_an_error() -> None:
    destinations = [_destination("shop-web-primaryupstream-9898", 100),
                    {"destination": {"upstream": {"name": "shop-web-canaryupstream-9898"}}}]
    table: dict[str, Any] = {"metadata": {"name": "web", "namespace": "shop"},
                             "spec": {"routes": [{"routeAction": {"multi": {"destinations": destinations}}}]}}
    assert gloo.table_weights(table, _canary()) == Weights(100, 0)
    destinations.pop()
    with pytest.raises(PermanentError, match=re.escape(
            "RouteTable shop/web: spec.routes[0].routeAction.multi.destinations must route to "
            "shop-web-primaryupstream-9898 and shop-web-canaryupstream-9898")):
        gloo.table_weights(table, _canary())


def test_read_weights_reads_the_route_table_and_is_none_before_there_is_one() -> None:
    body = gloo.build(_route(_canary()), Weights(60, 40))
    assert gloo.read_weights(lambda _v, kind, _ns, name: body if kind == "RouteTable" else None, _canary()) \
        == Weights(60, 40)
    assert gloo.read_weights(lambda *_: None, _canary()) is None
