"""What the skipper router writes, after Flagger's pkg/router/skipper.go, what it reads back, and the
route ids Skipper gives the canary Ingress's paths."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from typing import Any

import pytest

from analysis.builtin import builtin_query
from analysis.templates import TemplateContext, render_promql
from canary.errors import PermanentError
from canary.kube import Obj
from canary.models.canary import Canary
from canary.routers import skipper
from canary.routers.base import Weights

MAIN: dict[str, Any] = {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
        "metadata": {"name": "web-ingress", "namespace": "shop", "labels": {"team": "a"},
                     "annotations": {"kubernetes.io/ingress.class": "skipper",
                                     "zalando.org/skipper-predicate": "Header(\"X-Env\", \"prod\")",
                                     "kubectl.kubernetes.io/last-applied-configuration": "{}"}},
        "spec": {"rules": [{"host": "web.example.com", "http": {"paths": [
            {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "web", "port": {"number": 80}}}},
            {"path": "/static", "pathType": "Prefix",
             "backend": {"service": {"name": "assets", "port": {"number": 80}}}}]}}]}}


def _canary(**spec: Any) -> Canary:
    return Canary.model_validate({"metadata": {"name": "web", "namespace": "shop"}, "spec": {
        "provider": "skipper", "targetRef": {"name": "web"}, "ingressRef": {"name": "web-ingress"},
        "service": {"port": 80}, "analysis": {"interval": "1s", "stepWeight": 10}, **spec}})


def _paths(ingress: Obj) -> list[tuple[str, str]]:
    return [(p["path"], p["backend"]["service"]["name"]) for p in ingress["spec"]["rules"][0]["http"]["paths"]]


def test_the_canary_ingress_sends_each_apex_path_to_the_primary_and_adds_one_to_the_canary() -> None:
    body = skipper.build(_canary(), MAIN, Weights(primary=70, canary=30), owner={"name": "web"})
    assert body["metadata"]["name"] == "web-ingress-canary"
    assert body["metadata"]["labels"] == {"team": "a"}
    assert body["metadata"]["ownerReferences"] == [{"name": "web"}]
    assert _paths(body) == [("/", "web-primary"), ("/static", "assets"), ("/", "web-canary")]
    assert _paths(MAIN) == [("/", "web"), ("/static", "assets")], "the user's Ingress is left as it was"
    annotations = body["metadata"]["annotations"]
    assert annotations == {"kubernetes.io/ingress.class": "skipper",
                           "zalando.org/backend-weights": '{"web-canary":30,"web-primary":70}',
                           "zalando.org/skipper-predicate": 'Weight(100) && Header("X-Env", "prod")'}
    assert skipper.ingress_weights(body, _canary()) == Weights(primary=70, canary=30)


def test_without_canary_traffic_the_canary_ingress_is_switched_off_and_back_on_with_traffic() -> None:
    off = skipper.build(_canary(), MAIN, Weights(primary=100, canary=0), owner={})
    assert off["metadata"]["annotations"]["zalando.org/skipper-predicate"] == 'False() && Header("X-Env", "prod")'
    assert json.loads(off["metadata"]["annotations"]["zalando.org/backend-weights"]) == {
        "web-primary": 100, "web-canary": 0}
    main = {**MAIN, "metadata": {**MAIN["metadata"], "annotations": off["metadata"]["annotations"]}}
    on = skipper.build(_canary(), main, Weights(primary=90, canary=10), owner={})
    assert on["metadata"]["annotations"]["zalando.org/skipper-predicate"] == 'Weight(100) && Header("X-Env", "prod")'


@pytest.mark.parametrize(("current", "weight", "expected"), [
    ("", 10, "Weight(100)"),
    ("", 0, "False()"),
    ("False() && Path(\"/a\")", 5, "Weight(100) && Path(\"/a\")"),
    ("Path(\"/a\") && Weight(100) &&  ", 0, "False() && Path(\"/a\")"),
])
def test_the_switch_predicate_comes_first_and_replaces_the_other(current: str, weight: int, expected: str) -> None:
    assert skipper.predicate(current, canary_weight=weight) == expected


@pytest.mark.parametrize(("annotation", "words"), [
    (None, "is missing"),
    ("{not json", "is not JSON"),
    ('{"web-primary": 50.5, "web-canary": 49.5}', "must map Services to whole numbers"),
    ('{"web-primary": 100}', "must route to web-primary and web-canary"),
])
def test_backend_weights_that_cannot_be_read_are_an_error_naming_the_annotation(
    annotation: str | None, words: str
) -> None:
    annotations = {} if annotation is None else {"zalando.org/backend-weights": annotation}
    ingress = {"metadata": {"name": "web-ingress-canary", "namespace": "shop", "annotations": annotations}}
    with pytest.raises(PermanentError, match=f"Ingress shop/web-ingress-canary: annotation zalando.org/backend-"
                                             f"weights.* {words}"):
        skipper.ingress_weights(ingress, _canary())


def test_read_weights_reads_the_canary_ingress_and_is_none_before_there_is_one() -> None:
    objects = {("Ingress", "web-ingress-canary"): skipper.build(_canary(), MAIN, Weights(80, 20), owner={})}
    assert skipper.read_weights(lambda _v, kind, _ns, name: objects.get((kind, name)), _canary()) == Weights(80, 20)
    assert skipper.read_weights(lambda *_: None, _canary()) is None


def test_an_ingress_without_the_apex_backend_or_no_ingress_ref_is_an_error_naming_the_field() -> None:
    other = {**MAIN, "spec": {"rules": [{"http": {"paths": [{"backend": {"service": {"name": "api"}}}]}}]}}
    with pytest.raises(PermanentError, match=r"spec\.ingressRef: Ingress web-ingress has no path whose backend is"):
        skipper.build(_canary(), other, Weights(100, 0), owner={})
    with pytest.raises(PermanentError, match=r"spec\.ingressRef: the skipper router needs the Ingress"):
        skipper.canary_ingress_name(_canary(ingressRef=None))


def test_route_ids_are_skippers_with_every_non_word_character_made_an_underscore() -> None:
    body = skipper.build(_canary(), MAIN, Weights(90, 10), owner={})
    assert skipper.route_ids(body) == {
        "web-primary": "kube_shop__web_ingress_canary__web_example_com_____web_primary",
        "assets": "kube_shop__web_ingress_canary__web_example_com___static__assets",
        "web-canary": "kube_shop__web_ingress_canary__web_example_com_____web_canary",
    }


def test_served_routes_follow_the_canary_ingress_while_it_is_on_and_the_users_while_it_is_off() -> None:
    def getter(weights: Weights) -> Any:
        objects = {"web-ingress": MAIN, "web-ingress-canary": skipper.build(_canary(), MAIN, weights, owner={})}
        return lambda _v, _kind, _ns, name: objects.get(name)

    assert skipper.served_routes(getter(Weights(90, 10)), _canary()) == {
        "web-primary": "kube_shop__web_ingress_canary__web_example_com_____web_primary",
        "web-canary": "kube_shop__web_ingress_canary__web_example_com_____web_canary"}
    assert skipper.served_routes(getter(Weights(100, 0)), _canary()) == {
        "web-primary": "kube_shop__web_ingress__web_example_com_____web"}
    assert skipper.served_routes(lambda *_: None, _canary()) == {}


def test_flaggers_skipper_queries_select_the_canary_route_and_not_the_primarys() -> None:
    ctx = TemplateContext(name="web", namespace="shop", target="web", service="web", interval=timedelta(minutes=1),
                          ingress="web-ingress")
    query = render_promql(builtin_query("skipper", "request-duration"), ctx)
    pattern = re.search(r'route=~"([^"]+)"', query)
    assert pattern is not None
    routes = skipper.route_ids(skipper.build(_canary(), MAIN, Weights(90, 10), owner={}))
    assert re.fullmatch(pattern.group(1), routes["web-canary"])
    assert not re.fullmatch(pattern.group(1), routes["web-primary"])
