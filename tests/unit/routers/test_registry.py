"""The router registry: each router declared once, its kinds watched and granted, unknown and retired
providers refused with the field named."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from canary.errors import PermanentError
from canary.routers import registry


def test_every_router_is_declared_once_and_watches_its_kinds() -> None:
    names = [p.name for p in registry.PLUGINS]
    assert names == sorted(set(names), key=names.index)
    kinds = {(w.api_version, w.kind): w.optional for w in registry.watches()}
    assert kinds[("v1", "Service")] is False
    assert kinds[("networking.istio.io/v1", "VirtualService")] is True
    assert kinds[("gateway.networking.k8s.io/v1", "HTTPRoute")] is True


def test_the_controllers_cluster_role_grants_what_every_router_watches_and_writes() -> None:
    documents = yaml.safe_load_all((Path(__file__).parents[3] / "manifests" / "rbac" / "rbac.yaml").read_text())
    (role,) = [d for d in documents if d and d["kind"] == "ClusterRole"]
    granted = {(group, resource): set(rule["verbs"]) for rule in role["rules"]
               for group in rule["apiGroups"] for resource in rule["resources"]}
    for watch in registry.watches():
        group = watch.api_version.rpartition("/")[0]
        kind = watch.kind.lower()
        plural = kind[:-1] + "ies" if kind.endswith("y") else kind + ("es" if kind.endswith("s") else "s")
        assert {"get", "list", "watch", "create", "patch"} <= granted.get((group, plural), set()), (group, plural)


@pytest.mark.parametrize(("provider", "words"), [
    ("appmesh:v1beta2", "spec.provider 'appmesh:v1beta2': AWS App Mesh is retired upstream"),
    ("osm", "spec.provider 'osm': Open Service Mesh is retired upstream"),
    ("kong", "spec.provider 'kong' is not supported; supported: apisix, contour, gatewayapi, gloo, istio"),
])
def test_a_provider_without_a_router_is_refused_naming_the_field(provider: str, words: str) -> None:
    with pytest.raises(PermanentError, match=re.escape(f"Canary shop/web: {words}")):
        registry.plugin_for(provider, default="kubernetes", where="Canary shop/web")
