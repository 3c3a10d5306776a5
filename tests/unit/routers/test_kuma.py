"""What the kuma router writes, after Flagger's pkg/router/kuma.go: a cluster-scoped TrafficRoute
``<svc>`` in the Canary's mesh splitting the apex's Kuma service between the primary's and the
canary's; and that it never takes over another Canary's TrafficRoute of the same name."""

from __future__ import annotations

import re
from typing import Any

import pytest

from canary.errors import PermanentError
from canary.models.canary import Canary
from canary.routers import kuma
from canary.routers.base import Weights


def _canary(namespace: str = "shop", **metadata: Any) -> Canary:
    return Canary.model_validate({"metadata": {"name": "web", "namespace": namespace, **metadata}, "spec": {
        "provider": "kuma", "targetRef": {"name": "web"}, "service": {"port": 9898},
        "analysis": {"interval": "1s", "stepWeight": 10}}})


def test_the_traffic_route_splits_the_apex_kuma_service_between_primary_and_canary() -> None:
    body = kuma.build(_canary(), Weights(primary=70, canary=30))
    assert (body["apiVersion"], body["kind"]) == ("kuma.io/v1alpha1", "TrafficRoute")
    assert body["metadata"]["name"] == "web"
    assert "namespace" not in body["metadata"], "cluster-scoped"
    assert "ownerReferences" not in body["metadata"], "cluster-scoped: no owner reference could hold it"
    assert body["metadata"]["annotations"] == {"canary.dev/canary": "shop/web"}
    assert body["mesh"] == "default"
    assert body["spec"] == {
        "sources": [{"match": {"kuma.io/service": "*"}}],
        "destinations": [{"match": {"kuma.io/service": "web_shop_svc_9898"}}],
        "conf": {"split": [{"weight": 70, "destination": {"kuma.io/service": "web-primary_shop_svc_9898"}},
                           {"weight": 30, "destination": {"kuma.io/service": "web-canary_shop_svc_9898"}}]}}
    assert kuma.route_weights(body, _canary()) == Weights(primary=70, canary=30)


def test_the_mesh_is_the_canarys_kuma_mesh_annotation() -> None:
    assert kuma.build(_canary(annotations={"kuma.io/mesh": "payments"}), Weights(100, 0))["mesh"] == "payments"


def test_a_split_without_the_primary_or_the_canary_is_an_error_naming_the_field() -> None:
    body = kuma.build(_canary(), Weights(100, 0))
    body["spec"]["conf"]["split"].pop()
    with pytest.raises(PermanentError, match=re.escape("TrafficRoute web: spec.conf.split must route to "
                                                       "web-primary_shop_svc_9898 and web-canary_shop_svc_9898")):
        kuma.route_weights(body, _canary())


def test_read_weights_ignores_another_namespaces_canary_of_the_same_name() -> None:
    ours = kuma.build(_canary(), Weights(60, 40))
    assert kuma.read_weights(lambda _v, _k, namespace, name: ours if (namespace, name) == ("", "web") else None,
                             _canary()) == Weights(60, 40)
    assert kuma.read_weights(lambda *_: ours, _canary("other")) is None
    assert kuma.read_weights(lambda *_: None, _canary()) is None


def test_the_router_holds_the_canarys_deletion_to_remove_the_traffic_route() -> None:
    assert kuma.KumaRouter.holds_deletion
    assert not kuma.KumaRouter.has_match
