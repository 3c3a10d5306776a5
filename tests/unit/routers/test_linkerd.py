"""What the linkerd router writes, after Flagger's pkg/router/smi.go (split.smi-spec.io/v1alpha1), and
what it reads back, including the quantity strings Flagger writes."""

from __future__ import annotations

from typing import Any

import pytest

from canary.errors import PermanentError
from canary.models.canary import Canary
from canary.routers import linkerd
from canary.routers.base import RouteTarget, Weights, unsupported_fields


def _canary(**service: Any) -> Canary:
    return Canary.model_validate({"metadata": {"name": "web", "namespace": "shop"}, "spec": {
        "provider": "linkerd", "targetRef": {"name": "web"}, "service": {"port": 80, **service},
        "analysis": {"interval": "1s", "stepWeight": 10}}})


def _route(canary: Canary) -> RouteTarget:
    return RouteTarget(canary=canary, owner={"name": "web"}, selector=("app", "web"))


def test_the_traffic_split_is_named_after_the_apex_and_weighs_canary_and_primary() -> None:
    body = linkerd.build(_route(_canary()), Weights(primary=70, canary=30))
    assert (body["apiVersion"], body["kind"]) == ("split.smi-spec.io/v1alpha1", "TrafficSplit")
    assert body["metadata"]["name"] == "web"
    assert body["metadata"]["ownerReferences"] == [{"name": "web"}]
    assert body["spec"] == {"service": "web", "backends": [{"service": "web-canary", "weight": 30},
                                                           {"service": "web-primary", "weight": 70}]}
    assert linkerd.split_weights(body, _canary()) == Weights(primary=70, canary=30)


def test_the_first_host_is_the_apex_service_and_the_apex_metadata_is_copied() -> None:
    canary = _canary(name="api", hosts=["api.shop.svc.cluster.local"],
                     apex={"labels": {"team": "a"}, "annotations": {"note": "x"}})
    body = linkerd.build(_route(canary), Weights(100, 0))
    assert body["metadata"]["name"] == "api"
    assert (body["metadata"]["labels"], body["metadata"]["annotations"]) == ({"team": "a"}, {"note": "x"})
    assert body["spec"]["service"] == "api.shop.svc.cluster.local"
    assert [b["service"] for b in body["spec"]["backends"]] == ["api-canary", "api-primary"]
    assert unsupported_fields(canary, linkerd.LinkerdRouter.supported) == []


def test_weights_written_as_quantity_strings_read_back_as_numbers() -> None:
    written = {"metadata": {"name": "web", "namespace": "shop"}, "spec": {"backends": [
        {"service": "web-canary", "weight": "25"}, {"service": "web-primary", "weight": "75"}]}}
    assert linkerd.split_weights(written, _canary()) == Weights(primary=75, canary=25)


@pytest.mark.parametrize(("backends", "words"), [
    ([{"service": "web-canary", "weight": "500m"}, {"service": "web-primary", "weight": 100}],
     r"spec.backends\[0\].weight must be a whole number, got '500m'"),
    ([{"service": "web-primary", "weight": 100}], "spec.backends must route to web-primary and web-canary"),
])
def test_backends_that_cannot_be_read_are_an_error_naming_the_field(backends: list[Any], words: str) -> None:
    with pytest.raises(PermanentError, match=f"TrafficSplit shop/web: {words}"):
        linkerd.split_weights({"metadata": {"name": "web", "namespace": "shop"}, "spec": {"backends": backends}},
                              _canary())


def test_read_weights_reads_the_split_and_is_none_before_there_is_one() -> None:
    body = linkerd.build(_route(_canary()), Weights(60, 40))
    assert linkerd.read_weights(lambda _v, kind, _ns, name: body if name == "web" else None, _canary()) \
        == Weights(60, 40)
    assert linkerd.read_weights(lambda *_: None, _canary()) is None
