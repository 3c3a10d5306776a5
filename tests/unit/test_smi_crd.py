"""tools/smi_crd.py: SMI's v1beta1 TrafficSplit CRD turned into the v1 CRD vendored under manifests/vendor/smi."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tools import smi_crd

VENDORED = Path(__file__).parents[2] / "manifests" / "vendor" / "smi" / "trafficsplits.split.smi-spec.io.yaml"
UPSTREAM: dict[str, Any] = {
    "apiVersion": "apiextensions.k8s.io/v1beta1", "kind": "CustomResourceDefinition",
    "metadata": {"name": "trafficsplits.split.smi-spec.io"},
    "spec": {"group": "split.smi-spec.io", "scope": "Namespaced", "version": "v1alpha4",
             "names": {"kind": "TrafficSplit", "plural": "trafficsplits"},
             "versions": [{"name": "v1alpha4", "served": True, "storage": True},
                          {"name": "v1alpha1", "served": False, "storage": False}],
             "additionalPrinterColumns": [{"name": "Service", "type": "string", "JSONPath": ".spec.service"}],
             "validation": {"openAPIV3Schema": {"properties": {"spec": {"properties": {
                 "service": {"type": "string"},
                 "backends": {"items": {"properties": {"service": {"type": "string"},
                                                       "weight": {"type": "number", "description": "w"}}}}}}}}}}}


def _versions(crd: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {v["name"]: v for v in crd["spec"]["versions"]}


def _weight(version: dict[str, Any]) -> dict[str, Any]:
    spec = version["schema"]["openAPIV3Schema"]["properties"]["spec"]
    return dict(spec["properties"]["backends"]["items"]["properties"]["weight"])


def test_the_v1beta1_crd_becomes_a_v1_crd_with_a_structural_schema_per_version() -> None:
    crd = smi_crd.to_v1(UPSTREAM)
    assert crd["apiVersion"] == "apiextensions.k8s.io/v1"
    assert not {"version", "validation"} & set(crd["spec"])
    v4 = _versions(crd)["v1alpha4"]
    schema = v4["schema"]["openAPIV3Schema"]
    assert schema["type"] == "object"
    assert schema["properties"]["spec"]["type"] == "object"
    assert schema["properties"]["spec"]["properties"]["backends"]["type"] == "array"
    assert schema["properties"]["spec"]["properties"]["backends"]["items"]["type"] == "object"
    assert v4["additionalPrinterColumns"] == [{"name": "Service", "type": "string", "jsonPath": ".spec.service"}]
    assert [(v["served"], v["storage"]) for v in crd["spec"]["versions"]] == [(True, True), (False, False)]
    assert "type" not in UPSTREAM["spec"]["validation"]["openAPIV3Schema"], "the input is left as it was"


def test_the_traffic_split_serves_every_version_and_v1alpha1_weighs_with_a_quantity() -> None:
    versions = _versions(smi_crd.traffic_split(UPSTREAM))
    assert {name: (v["served"], v["storage"]) for name, v in versions.items()} == {
        "v1alpha4": (True, True), "v1alpha1": (True, False)}
    assert _weight(versions["v1alpha1"]) == {"description": "w", "x-kubernetes-int-or-string": True}
    assert _weight(versions["v1alpha4"]) == {"type": "number", "description": "w"}


@pytest.mark.parametrize(("change", "words"), [
    ({"apiVersion": "apiextensions.k8s.io/v1"}, "not an apiextensions.k8s.io/v1beta1 CustomResourceDefinition"),
    ({"metadata": {"name": "httproutegroups.specs.smi-spec.io"}}, "expected the CRD trafficsplits"),
])
def test_anything_but_the_v1beta1_traffic_split_is_refused(change: dict[str, Any], words: str) -> None:
    with pytest.raises(ValueError, match=words):
        smi_crd.traffic_split({**UPSTREAM, **change})


def test_the_vendored_crd_is_the_conversion_of_the_pinned_upstream_file() -> None:
    vendored = next(d for d in yaml.safe_load_all(VENDORED.read_text()) if d)
    assert vendored["apiVersion"] == "apiextensions.k8s.io/v1"
    assert _weight(_versions(vendored)["v1alpha1"])["x-kubernetes-int-or-string"] is True
    go = shutil.which("go")
    if go is None:
        pytest.skip("Go is not installed, so the pinned module cannot be found")
    cache = subprocess.run([go, "env", "GOMODCACHE"], check=True, capture_output=True, text=True).stdout.strip()
    upstream = Path(cache) / f"{smi_crd.MODULE}@{smi_crd.VERSION}" / smi_crd.UPSTREAM_FILE
    if not upstream.exists():
        pytest.skip(f"{smi_crd.MODULE}@{smi_crd.VERSION} is not in Go's module cache")
    (crd,) = [d for d in yaml.safe_load_all(upstream.read_text()) if d]
    assert vendored == smi_crd.traffic_split(crd)
