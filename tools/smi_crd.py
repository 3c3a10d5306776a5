"""Convert SMI's TrafficSplit CRD (apiextensions.k8s.io/v1beta1) into the apiextensions.k8s.io/v1 CRD
vendored at manifests/vendor/smi, which today's API servers accept (they stopped serving v1beta1 CRDs
in Kubernetes 1.22).

Run from the repository's root; with no file it asks Go's module cache for the pinned module:

    python -m tools.smi_crd > manifests/vendor/smi/trafficsplits.split.smi-spec.io.yaml
    python -m tools.smi_crd path/to/crds/split.yaml   # another copy of the upstream file

``to_v1`` is the general conversion, field for field: the top-level ``validation`` schema,
``additionalPrinterColumns`` (``JSONPath`` becomes ``jsonPath``) and ``subresources`` go to each
version, and the schema is made structural by giving every node that has properties or items its
``type``. ``traffic_split`` adds what SMI needs beyond that: every version served (upstream serves
only v1alpha4, but Flagger's linkerd provider writes v1alpha1 and its smi providers v1alpha2 and
v1alpha3; with no conversion webhook the API server just relabels the stored object, storage stays
v1alpha4), and v1alpha1's weight an int-or-string, because there it is a Kubernetes quantity
(``resource.Quantity`` in smi-sdk-go's v1alpha1 types), which Flagger sends as a string.
"""

from __future__ import annotations

import argparse
import copy
import json
import subprocess
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import yaml

MODULE = "github.com/servicemeshinterface/smi-sdk-go"
VERSION = "v0.5.0"
UPSTREAM_FILE = "crds/split.yaml"
CRD_NAME = "trafficsplits.split.smi-spec.io"
QUANTITY_VERSIONS = ("v1alpha1",)
"""The TrafficSplit versions whose backend weight is a resource.Quantity."""

Obj = dict[str, Any]


def structural(schema: Obj) -> Obj:
    """A copy of ``schema`` in which every node with properties is an object and every node with items an array."""
    node = copy.deepcopy(schema)
    if "properties" in node:
        node.setdefault("type", "object")
        node["properties"] = {name: structural(child) for name, child in node["properties"].items()}
    if "items" in node:
        node.setdefault("type", "array")
        node["items"] = structural(node["items"])
    return node


def to_v1(crd: Obj, *, served: Iterable[str] | None = None) -> Obj:
    """The apiextensions.k8s.io/v1 form of the v1beta1 ``crd``; ``served`` overrides which versions are served."""
    if crd.get("apiVersion") != "apiextensions.k8s.io/v1beta1" or crd.get("kind") != "CustomResourceDefinition":
        raise ValueError(f"not an apiextensions.k8s.io/v1beta1 CustomResourceDefinition: "
                         f"{crd.get('apiVersion')} {crd.get('kind')}")
    spec = crd["spec"]
    names = [v["name"] for v in spec.get("versions") or [{"name": spec["version"]}]]
    serving = set(served) if served is not None else None
    if serving is not None and not serving <= set(names):
        raise ValueError(f"cannot serve {sorted(serving - set(names))}: the CRD has versions {names}")
    schema = (spec.get("validation") or {}).get("openAPIV3Schema")
    versions = []
    for version in spec.get("versions") or [{"name": spec["version"], "served": True, "storage": True}]:
        converted: Obj = {"name": version["name"],
                          "served": version["name"] in serving if serving is not None else version["served"],
                          "storage": version["storage"]}
        version_schema = (version.get("schema") or {}).get("openAPIV3Schema") or schema
        converted["schema"] = {"openAPIV3Schema": structural({"type": "object", **(version_schema or {})})}
        columns = version.get("additionalPrinterColumns") or spec.get("additionalPrinterColumns")
        if columns:
            converted["additionalPrinterColumns"] = [{("jsonPath" if k == "JSONPath" else k): v for k, v in c.items()}
                                                     for c in columns]
        if version.get("subresources") or spec.get("subresources"):
            converted["subresources"] = version.get("subresources") or spec["subresources"]
        versions.append(converted)
    v1_spec = {key: spec[key] for key in ("group", "names", "scope") if key in spec}
    if "conversion" in spec:
        v1_spec["conversion"] = spec["conversion"]
    return {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": crd["metadata"]["name"]}, "spec": {**v1_spec, "versions": versions}}


def traffic_split(upstream: Obj) -> Obj:
    """SMI's TrafficSplit CRD in apiextensions v1: every version served, v1alpha1's weight a quantity."""
    if upstream.get("metadata", {}).get("name") != CRD_NAME:
        raise ValueError(f"expected the CRD {CRD_NAME}, got {upstream.get('metadata', {}).get('name')}")
    every = [v["name"] for v in upstream["spec"]["versions"]]
    crd = to_v1(upstream, served=every)
    for version in crd["spec"]["versions"]:
        if version["name"] in QUANTITY_VERSIONS:
            backend = version["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["backends"]["items"]
            weight = backend["properties"]["weight"]
            backend["properties"]["weight"] = {"description": weight.get("description", ""),
                                               "x-kubernetes-int-or-string": True}
    return crd


def upstream_file() -> Path:
    """The pinned module's CRD file, from Go's module cache (downloaded there first if missing)."""
    found = subprocess.run(["go", "mod", "download", "-json", f"{MODULE}@{VERSION}"], check=True,
                           capture_output=True, text=True)
    return Path(json.loads(found.stdout)["Dir"]) / UPSTREAM_FILE


def render(crd: Obj, *, source: str) -> str:
    """The CRD as the vendored YAML file, headed by where it came from."""
    header = (f"# Generated by tools/smi_crd.py from {source}\n"
              "# (apiextensions.k8s.io/v1beta1, Apache-2.0); do not edit by hand.\n")
    return header + "---\n" + yaml.safe_dump(crd, sort_keys=False)


def main(argv: Sequence[str] | None = None) -> None:
    """Print the converted CRD."""
    parser = argparse.ArgumentParser(prog="python -m tools.smi_crd", description=__doc__.splitlines()[0])
    parser.add_argument("file", nargs="?", type=Path,
                        help=f"the upstream {UPSTREAM_FILE} (default: {MODULE}@{VERSION})")
    args = parser.parse_args(argv)
    path = args.file or upstream_file()
    documents = [d for d in yaml.safe_load_all(path.read_text()) if d]
    (crd,) = [d for d in documents if d.get("metadata", {}).get("name") == CRD_NAME]
    source = f"{MODULE}@{VERSION}, file {UPSTREAM_FILE}" if args.file is None else str(path)
    sys.stdout.write(render(traffic_split(crd), source=source))


if __name__ == "__main__":
    main()
