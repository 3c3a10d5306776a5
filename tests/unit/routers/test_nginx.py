"""What the nginx router writes, after Flagger's pkg/router/ingress.go, and what it reads back."""

from __future__ import annotations

from typing import Any

import pytest

from canary.errors import PermanentError
from canary.models.canary import Canary
from canary.routers import nginx
from canary.routers.base import Weights

MAIN: dict[str, Any] = {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
        "metadata": {"name": "web", "namespace": "shop", "labels": {"team": "a"},
                     "annotations": {"nginx.ingress.kubernetes.io/rewrite-target": "/",
                                     "kubectl.kubernetes.io/last-applied-configuration": "{}"}},
        "spec": {"ingressClassName": "nginx", "rules": [{"host": "web.example.com", "http": {"paths": [
            {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "web", "port": {"number": 80}}}}]}}]}}


def _canary(**analysis: Any) -> Canary:
    return Canary.model_validate({"metadata": {"name": "web", "namespace": "shop"}, "spec": {
        "provider": "nginx", "targetRef": {"name": "web"}, "ingressRef": {"name": "web"},
        "service": {"port": 80}, "analysis": {"interval": "1s", **(analysis or {"stepWeight": 10})}}})


def test_the_canary_ingress_copies_the_main_one_to_the_canary_service_with_a_weight() -> None:
    body = nginx.build(_canary(), MAIN, Weights(primary=70, canary=30), owner={"name": "web"})
    assert body["metadata"]["name"] == "web-canary"
    assert body["metadata"]["labels"] == {"team": "a"}
    assert body["metadata"]["annotations"] == {"nginx.ingress.kubernetes.io/rewrite-target": "/",
                                               "nginx.ingress.kubernetes.io/canary": "true",
                                               "nginx.ingress.kubernetes.io/canary-weight": "30"}
    backend = body["spec"]["rules"][0]["http"]["paths"][0]["backend"]
    assert backend == {"service": {"name": "web-canary", "port": {"number": 80}}}
    assert MAIN["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["name"] == "web", "main untouched"
    assert nginx.ingress_weights(body) == Weights(primary=70, canary=30)


def test_ab_testing_routes_by_header_or_cookie_while_the_canary_has_traffic() -> None:
    canary = _canary(iterations=2, match=[{"headers": {"x-canary": {"regex": "^always$"}}},
                                          {"headers": {"cookie": {"exact": "canary"}}}])
    on = nginx.build(canary, MAIN, Weights(primary=0, canary=100), owner={})
    assert {k: v for k, v in on["metadata"]["annotations"].items() if "canary" in k} == {
        "nginx.ingress.kubernetes.io/canary": "true", "nginx.ingress.kubernetes.io/canary-by-header": "x-canary",
        "nginx.ingress.kubernetes.io/canary-by-header-pattern": "^always$",
        "nginx.ingress.kubernetes.io/canary-by-cookie": "canary"}
    assert nginx.ingress_weights(on) == Weights(primary=0, canary=100)
    main = {**MAIN, "metadata": {**MAIN["metadata"], "annotations": on["metadata"]["annotations"]}}
    off = nginx.build(canary, main, Weights(100, 0), owner={})
    assert "nginx.ingress.kubernetes.io/canary-by-header" not in off["metadata"]["annotations"]
    assert nginx.ingress_weights(off) == Weights(primary=100, canary=0)


@pytest.mark.parametrize(("match", "words"), [
    ({"uri": {"prefix": "/beta"}}, r"spec.analysis.match\[0\]: the nginx router matches headers and cookies only"),
    ({"headers": {"x-canary": {"prefix": "a"}}}, r"spec.analysis.match\[0\].headers.x-canary: .* exact or regex"),
])
def test_a_match_ingress_nginx_cannot_express_is_refused_by_name(match: dict[str, Any], words: str) -> None:
    with pytest.raises(PermanentError, match=words):
        nginx.build(_canary(iterations=2, match=[match]), MAIN, Weights(0, 100), owner={})


def test_an_ingress_without_the_apex_backend_or_no_ingress_ref_is_an_error_naming_the_field() -> None:
    other = {**MAIN, "spec": {"rules": [{"http": {"paths": [{"backend": {"service": {"name": "api"}}}]}}]}}
    with pytest.raises(PermanentError, match=r"spec\.ingressRef: Ingress web has no path whose backend is the apex"):
        nginx.build(_canary(), other, Weights(100, 0), owner={})
    without = Canary.model_validate({"metadata": {"name": "web", "namespace": "shop"}, "spec": {
        "provider": "nginx", "targetRef": {"name": "web"}, "service": {"port": 80},
        "analysis": {"stepWeight": 10}}})
    with pytest.raises(PermanentError, match=r"spec\.ingressRef: the nginx router needs the Ingress"):
        nginx.canary_ingress_name(without)
