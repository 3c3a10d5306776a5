from __future__ import annotations

from pathlib import Path
from typing import get_args

from analysis.providers.registry import KNOWN_TYPES
from canary.models import crds
from canary.models.resources import MetricProviderType

MANIFESTS = Path(__file__).parents[3] / "manifests" / "crds"


def test_committed_crds_match_the_models() -> None:
    for name, crd in crds.build().items():
        assert (MANIFESTS / name).read_text() == crds.render(crd), (
            f"manifests/crds/{name} is stale: run `python -m canary.models.crds manifests/crds`")


def _walk(node: object, path: str = "") -> list[str]:
    found = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("$ref", "$defs", "anyOf", "title", "default"):
                found.append(f"{path}.{key}")
            found += _walk(value, f"{path}.{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += _walk(value, f"{path}[{index}]")
    return found


def test_schemas_are_structural() -> None:
    for name, crd in crds.build().items():
        assert _walk(crd) == [], name


def test_canary_crd_has_the_columns_and_short_name_people_use() -> None:
    crd = crds.build()["canaries.yaml"]
    version = crd["spec"]["versions"][0]
    assert crd["spec"]["names"]["shortNames"] == ["cn"]
    assert [c["name"] for c in version["additionalPrinterColumns"]] == [
        "Status", "Weight", "FailedChecks", "LastTransitionTime"]
    assert version["subresources"] == {"status": {}}
    analysis = version["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["analysis"]
    assert analysis["properties"]["stepWeight"] == {"type": "integer", "minimum": 1, "maximum": 100}
    assert "exactly one of iterations" in analysis["x-kubernetes-validations"][0]["message"]


def test_int_or_string_and_open_blocks_are_expressed_the_kubernetes_way() -> None:
    spec = crds.build()["canaries.yaml"]["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    service = spec["properties"]["service"]["properties"]
    assert service["targetPort"] == {"x-kubernetes-int-or-string": True}
    assert service["trafficPolicy"]["x-kubernetes-preserve-unknown-fields"] is True
    assert service["port"] == {"type": "integer", "minimum": 1, "maximum": 65535}


def test_the_metric_template_schema_offers_exactly_the_providers_there_are() -> None:
    assert set(get_args(MetricProviderType)) == set(KNOWN_TYPES)
