"""Generate the CustomResourceDefinitions from the pydantic models.

Pydantic's JSON Schema is turned into a Kubernetes *structural* schema: references are
inlined, optional values lose their ``null`` branch, ``int | str`` becomes int-or-string, open
models preserve unknown fields, and titles and defaults are dropped (defaults are applied when
the controller reads a spec, as Flagger does, so stored objects show what the user wrote).

``python -m canary.models.crds manifests/crds`` rewrites the files; a unit test fails when
they differ from what the models say.
"""

from __future__ import annotations

import copy
import sys
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from canary.models.base import GROUP, VERSION
from canary.models.canary import CanarySpec, CanaryStatus
from canary.models.resources import AlertProviderSpec, MetricTemplateSpec

Schema = dict[str, Any]
_DROPPED = ("title", "default")


def structural_schema(model: type[BaseModel]) -> Schema:
    """The structural OpenAPI v3 schema of ``model`` (camelCase field names)."""
    raw = model.model_json_schema(by_alias=True, mode="validation")
    definitions = raw.pop("$defs", {})
    return _convert(raw, definitions)


def _convert(node: Schema, definitions: dict[str, Schema]) -> Schema:
    if "$ref" in node:
        # A copy: a definition used twice would otherwise come out as a YAML anchor and alias.
        target = copy.deepcopy(definitions[node["$ref"].rsplit("/", 1)[1]])
        extra = {k: v for k, v in node.items() if k != "$ref"}
        return _convert({**target, **extra}, definitions)
    if "anyOf" in node:
        branches = [b for b in node["anyOf"] if b.get("type") != "null"]
        rest = {k: v for k, v in node.items() if k != "anyOf"}
        if len(branches) == 1:
            return _convert({**branches[0], **rest}, definitions)
        if sorted(b.get("type", "") for b in branches) == ["integer", "string"]:
            return _clean({**rest, "x-kubernetes-int-or-string": True})
        raise ValueError(f"cannot express anyOf {branches} in a structural schema")
    out = _clean(node)
    if "const" in out:
        out["enum"] = [out.pop("const")]
        out.setdefault("type", "string")
    if "properties" in out:
        out["properties"] = {k: _convert(v, definitions) for k, v in out["properties"].items()}
        if not out["properties"]:
            # The API server drops an empty ``properties``: a CRD applied with one would differ from the
            # stored one, and a second field manager's server-side apply would conflict on it.
            del out["properties"]
    if "items" in out:
        out["items"] = _convert(out["items"], definitions)
    additional = out.pop("additionalProperties", None)
    if isinstance(additional, dict):
        out["additionalProperties"] = _convert(additional, definitions)
    elif additional is True or (additional is None and out.get("type") == "object" and "properties" not in out):
        out["x-kubernetes-preserve-unknown-fields"] = True
    return out


def _clean(node: Schema) -> Schema:
    return {k: v for k, v in node.items() if k not in _DROPPED}


def _crd(
    *, kind: str, plural: str, spec: type[BaseModel], status: type[BaseModel] | None, short_names: list[str],
    columns: list[Schema], description: str,
) -> Schema:
    properties: Schema = {
        "apiVersion": {"type": "string"},
        "kind": {"type": "string"},
        "metadata": {"type": "object"},
        "spec": structural_schema(spec),
    }
    version: Schema = {"name": VERSION, "served": True, "storage": True}
    if status is not None:
        properties["status"] = structural_schema(status)
        version["subresources"] = {"status": {}}
    if columns:
        version["additionalPrinterColumns"] = columns
    version["schema"] = {"openAPIV3Schema": {"type": "object", "description": description, "required": ["spec"],
                                             "properties": properties}}
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{GROUP}"},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {"kind": kind, "listKind": f"{kind}List", "plural": plural, "singular": kind.lower(),
                      "shortNames": short_names, "categories": ["all", "canary-delivery"]},
            "versions": [version],
        },
    }


def _column(name: str, path: str, kind: str = "string") -> Schema:
    return {"name": name, "type": kind, "jsonPath": path}


def build() -> dict[str, Schema]:
    """Every CRD of the API group, by file name."""
    return {
        "canaries.yaml": _crd(
            kind="Canary", plural="canaries", spec=CanarySpec, status=CanaryStatus, short_names=["cn"],
            description="A progressive release of one workload, gated by metric analysis.",
            columns=[
                _column("Status", ".status.phase"),
                _column("Weight", ".status.canaryWeight", "integer"),
                _column("FailedChecks", ".status.failedChecks", "integer"),
                _column("LastTransitionTime", ".status.lastTransitionTime", "date"),
            ],
        ),
        "metrictemplates.yaml": _crd(
            kind="MetricTemplate", plural="metrictemplates", spec=MetricTemplateSpec, status=None,
            short_names=["mt"], description="A reusable metric query for canary analysis.",
            columns=[_column("Provider", ".spec.provider.type")],
        ),
        "alertproviders.yaml": _crd(
            kind="AlertProvider", plural="alertproviders", spec=AlertProviderSpec, status=None,
            short_names=["ap"], description="A destination for canary alerts.",
            columns=[_column("Type", ".spec.type")],
        ),
    }


def render(crd: Schema) -> str:
    """The YAML text of one CRD, as committed under manifests/crds/."""
    header = "# Generated from canary/models by `python -m canary.models.crds manifests/crds`; do not edit.\n"
    return header + yaml.safe_dump(crd, sort_keys=False, width=120, allow_unicode=True)


def write(directory: Path) -> list[Path]:
    """Write every CRD into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, crd in build().items():
        path = directory / name
        path.write_text(render(crd))
        written.append(path)
    return written


if __name__ == "__main__":
    for written_path in write(Path(sys.argv[1] if len(sys.argv) > 1 else "manifests/crds")):
        print(written_path)
