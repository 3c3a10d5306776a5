"""Flagger manifests to ours: ``flagger.app/v1beta1`` Canary, MetricTemplate and AlertProvider.

The specs are field for field the same, so conversion is mostly the apiVersion; the deprecated
``spec.canaryAnalysis`` becomes ``spec.analysis``, and the result is validated against our models
so that what ``kubectl apply`` would refuse is reported first, naming the document and field.
Other documents pass through unchanged.
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
FLAGGER_API_VERSION = "flagger.app/v1beta1"
_MODELS: dict[str, type[BaseModel]] = {"Canary": Canary, "MetricTemplate": MetricTemplate,
                                       "AlertProvider": AlertProvider}


def convert_document(document: Obj, *, where: str) -> Obj:
    """One document converted; ``where`` names it in errors (file and index)."""
    if document.get("apiVersion") != FLAGGER_API_VERSION or document.get("kind") not in _MODELS:
        return document
    converted = copy.deepcopy(document)
    converted["apiVersion"] = API_VERSION
    spec = converted.get("spec") or {}
    if "canaryAnalysis" in spec:
        spec["analysis"] = spec.pop("canaryAnalysis")
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


def convert(documents: list[Obj], *, source: str) -> list[Obj]:
    """Every document of a file converted, in order."""
    return [convert_document(d, where=f"{source} document {i}") for i, d in enumerate(documents) if d is not None]
