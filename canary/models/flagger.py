"""Flagger manifests to ours: ``flagger.app/v1beta1`` Canary, MetricTemplate and AlertProvider.

The specs are field for field the same, so conversion is mostly the apiVersion; the deprecated
``spec.canaryAnalysis`` becomes ``spec.analysis``, and the result is validated against our models
so that what ``kubectl apply`` would refuse is reported first, naming the document and field.
Flagger's older versions (v1alpha1 to v1alpha3) convert the same way; any other flagger.app
version is refused. A Canary without ``spec.provider`` gets the provider Flagger would have used
(its ``-mesh-provider``, istio by default) written out, so a converted manifest never changes
router silently. Documents that are not Flagger's pass through unchanged, and are listed.
"""

from __future__ import annotations

import copy
from typing import Any

from pydantic import BaseModel, ValidationError

from canary.errors import PermanentError
from canary.models.base import API_VERSION
from canary.models.canary import Canary
from canary.models.resources import AlertProvider, MetricTemplate

Obj = dict[str, Any]
FLAGGER_GROUP = "flagger.app"
FLAGGER_VERSIONS = ("v1beta1", "v1alpha3", "v1alpha2", "v1alpha1")
FLAGGER_API_VERSION = f"{FLAGGER_GROUP}/{FLAGGER_VERSIONS[0]}"
FLAGGER_MESH_PROVIDER = "istio"
_MODELS: dict[str, type[BaseModel]] = {"Canary": Canary, "MetricTemplate": MetricTemplate,
                                       "AlertProvider": AlertProvider}


def is_flagger(document: Obj) -> bool:
    """A document in Flagger's API group (any version)."""
    return str(document.get("apiVersion", "")).partition("/")[0] == FLAGGER_GROUP


def convert_document(document: Obj, *, where: str, mesh_provider: str = FLAGGER_MESH_PROVIDER) -> Obj:
    """One document converted; ``where`` names it in errors (file and index)."""
    if not isinstance(document, dict):
        raise PermanentError(f"{where}: not a Kubernetes object (a YAML mapping): {str(document)[:60]!r}")
    if not is_flagger(document):
        return document
    version = str(document.get("apiVersion")).partition("/")[2]
    name = (document.get("metadata") or {}).get("name", "?")
    if version not in FLAGGER_VERSIONS or document.get("kind") not in _MODELS:
        raise PermanentError(f"{where}: {document.get('kind')} {name}: apiVersion {document.get('apiVersion')}: "
                             f"only the kinds {', '.join(_MODELS)} of {FLAGGER_GROUP}/"
                             f"{', '.join(FLAGGER_VERSIONS)} convert")
    converted = copy.deepcopy(document)
    converted["apiVersion"] = API_VERSION
    spec = converted.get("spec") or {}
    if "canaryAnalysis" in spec:
        spec["analysis"] = spec.pop("canaryAnalysis")
    if converted["kind"] == "Canary" and not spec.get("provider"):
        spec["provider"] = mesh_provider
    converted.get("metadata", {}).pop("resourceVersion", None)
    converted.pop("status", None)
    try:
        _MODELS[converted["kind"]].model_validate(converted)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"])
        name = (converted.get("metadata") or {}).get("name", "?")
        raise PermanentError(f"{where}: {converted['kind']} {name}: {field}: {first['msg']}") from exc
    return converted


def convert(documents: list[Obj], *, source: str, mesh_provider: str = FLAGGER_MESH_PROVIDER) -> list[Obj]:
    """Every document of a file converted, in order; a file with no document is an error."""
    found = [(i, d) for i, d in enumerate(documents) if d is not None]
    if not found:
        raise PermanentError(f"{source}: no YAML document to convert")
    return [convert_document(d, where=f"{source} document {i}", mesh_provider=mesh_provider) for i, d in found]
