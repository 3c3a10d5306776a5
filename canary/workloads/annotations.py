"""Canaries from Deployment annotations: ``canary.dev/enabled: "true"`` and friends.

A Deployment annotated this way gets a Canary of the same name, owned by the Deployment and
labelled ``canary.dev/generated``, rebuilt from the annotations whenever they change:

| annotation | meaning | default |
|---|---|---|
| canary.dev/enabled | "true" to release this Deployment through a Canary | |
| canary.dev/strategy | canary, blue-green or ab | canary |
| canary.dev/provider | router (kubernetes, gatewayapi, ...) | the controller's --mesh-provider |
| canary.dev/port | Service port | the first container port, else 80 |
| canary.dev/interval | analysis interval | 1m |
| canary.dev/threshold | failed checks before rollback | 5 |
| canary.dev/step-weight | weight step (canary) | 10 |
| canary.dev/max-weight | last weight before promotion (canary) | 50 |
| canary.dev/step-weights | explicit steps, e.g. "5,10,25,50" (canary; replaces step-weight) | |
| canary.dev/iterations | analysis iterations (blue-green, ab) | 10 |
| canary.dev/match | A/B request match "header:value" (ab), exact | |
| canary.dev/metrics | e.g. "request-success-rate>=99,request-duration<=500" | none |
| canary.dev/alert | AlertProvider name for alerts | none |
| canary.dev/progress-deadline | seconds | 600 |
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from pydantic import ValidationError

from canary.defaults import SHARD_LABEL
from canary.errors import PermanentError
from canary.kube import Obj
from canary.models.base import API_VERSION
from canary.models.canary import Canary

PREFIX = "canary.dev/"
ENABLED = f"{PREFIX}enabled"
GENERATED_LABEL = f"{PREFIX}generated"
_METRIC = re.compile(r"^\s*([a-z0-9-]+)\s*(>=|<=)\s*([0-9]+(?:\.[0-9]+)?)\s*$")
# The field each annotation sets, so that the model's refusal of a field names the annotation.
_FIELDS = {
    "provider": ("spec", "provider"),
    "port": ("spec", "service", "port"),
    "progress-deadline": ("spec", "progressDeadlineSeconds"),
    "interval": ("spec", "analysis", "interval"),
    "threshold": ("spec", "analysis", "threshold"),
    "step-weight": ("spec", "analysis", "stepWeight"),
    "max-weight": ("spec", "analysis", "maxWeight"),
    "step-weights": ("spec", "analysis", "stepWeights"),
    "iterations": ("spec", "analysis", "iterations"),
    "match": ("spec", "analysis", "match"),
    "metrics": ("spec", "analysis", "metrics"),
    "alert": ("spec", "analysis", "alerts"),
}


# The annotations each strategy reads; one set for another strategy is refused, not ignored.
_BY_STRATEGY = {"canary": {"step-weight", "max-weight", "step-weights"}, "blue-green": {"iterations"},
                "ab": {"iterations", "match"}}
_COMMON = {"enabled", "strategy", "provider", "port", "interval", "threshold", "metrics", "alert", "progress-deadline"}
# canary.dev annotations with other readers: the Git sync (ignore, prune) and the controller's own marks.
_OTHERS = {"ignore", "prune", "applied", "revision", "scale-to-zero", "config-tracking"}


def _refuse_unread(annotations: Mapping[str, str], strategy: str, where: str) -> None:
    """Nothing silent: a canary.dev annotation this Deployment's Canary would not read is an error naming it."""
    keys = {k[len(PREFIX):] for k in annotations if k.startswith(PREFIX)} - _OTHERS - _COMMON
    read_by = {key: name for name, keys in _BY_STRATEGY.items() for key in keys}
    unknown = sorted(k for k in keys if not any(k in used for used in _BY_STRATEGY.values()))
    if unknown:
        known = ", ".join(sorted(_COMMON | set(read_by)))
        raise PermanentError(f"{where}: annotation {', '.join(PREFIX + k for k in unknown)}: not a canary.dev "
                             f"annotation (they are {known})")
    unused = sorted(k for k in keys if k not in _BY_STRATEGY.get(strategy, set()))
    if unused:
        users = {k: " or ".join(sorted(n for n, used in _BY_STRATEGY.items() if k in used)) for k in unused}
        raise PermanentError(f"{where}: " + "; ".join(f"annotation {PREFIX}{k} applies to strategy {users[k]}, "
                                                      f"not {strategy}" for k in unused))


def is_enabled(deployment: Obj) -> bool:
    """Whether the Deployment asks for a generated Canary."""
    return ((deployment.get("metadata") or {}).get("annotations") or {}).get(ENABLED) == "true"


def _int(annotations: dict[str, str], key: str, default: int, where: str) -> int:
    raw = annotations.get(PREFIX + key)
    if raw is None:
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise PermanentError(f"{where}: annotation {PREFIX}{key} must be a whole number, got {raw!r}") from exc


def _metrics(text: str, where: str) -> list[Obj]:
    metrics = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        match = _METRIC.match(part)
        if match is None:
            raise PermanentError(f"{where}: annotation {PREFIX}metrics: {part!r} is not NAME>=NUMBER or NAME<=NUMBER")
        name, operator, number = match.groups()
        bound = "min" if operator == ">=" else "max"
        metrics.append({"name": name, "interval": "1m", "thresholdRange": {bound: float(number)}})
    return metrics


def _default_port(deployment: Obj) -> int:
    for container in deployment["spec"]["template"]["spec"].get("containers") or []:
        for port in container.get("ports") or []:
            return int(port["containerPort"])
    return 80


def _analysis(annotations: dict[str, str], where: str) -> Obj:
    strategy = annotations.get(f"{PREFIX}strategy", "canary")
    if strategy in _BY_STRATEGY:
        _refuse_unread(annotations, strategy, where)
    analysis: Obj = {"interval": annotations.get(f"{PREFIX}interval", "1m"),
                     "threshold": _int(annotations, "threshold", 5, where)}
    if strategy == "canary":
        steps = annotations.get(f"{PREFIX}step-weights")
        if steps:
            try:
                analysis["stepWeights"] = [int(s) for s in steps.split(",")]
            except ValueError as exc:
                raise PermanentError(f"{where}: annotation {PREFIX}step-weights must be numbers separated by "
                                     f"commas, got {steps!r}") from exc
        else:
            analysis["stepWeight"] = _int(annotations, "step-weight", 10, where)
            analysis["maxWeight"] = _int(annotations, "max-weight", 50, where)
    elif strategy in ("blue-green", "ab"):
        analysis["iterations"] = _int(annotations, "iterations", 10, where)
        if strategy == "ab":
            header, _, value = annotations.get(f"{PREFIX}match", "").partition(":")
            if not header or not value:
                raise PermanentError(f"{where}: strategy ab needs annotation {PREFIX}match as header:value")
            analysis["match"] = [{"headers": {header.strip(): {"exact": value.strip()}}}]
    else:
        raise PermanentError(f"{where}: annotation {PREFIX}strategy must be canary, blue-green or ab, "
                             f"got {strategy!r}")
    metrics = annotations.get(f"{PREFIX}metrics")
    if metrics:
        analysis["metrics"] = _metrics(metrics, where)
    alert = annotations.get(f"{PREFIX}alert")
    if alert:
        analysis["alerts"] = [{"name": alert, "providerRef": {"name": alert}}]
    return analysis


def canary_for(deployment: Obj) -> Obj:
    """The Canary the Deployment's annotations describe, valid for its model (else PermanentError naming
    the annotation)."""
    meta = deployment["metadata"]
    annotations = meta.get("annotations") or {}
    where = f"Deployment {meta['namespace']}/{meta['name']}"
    spec: Obj = {
        "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": meta["name"]},
        "service": {"port": _int(annotations, "port", _default_port(deployment), where)},
        "analysis": _analysis(annotations, where),
        "progressDeadlineSeconds": _int(annotations, "progress-deadline", 600, where),
    }
    provider = annotations.get(f"{PREFIX}provider")
    if provider:
        spec["provider"] = provider
    body = {
        "apiVersion": API_VERSION,
        "kind": "Canary",
        "metadata": {
            "name": meta["name"], "namespace": meta["namespace"],
            "labels": {GENERATED_LABEL: "true", **({SHARD_LABEL: shard} if (shard := (meta.get("labels") or {})
                                                                              .get(SHARD_LABEL)) else {})},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": meta["name"],
                                 "uid": meta["uid"], "controller": True, "blockOwnerDeletion": True}],
        },
        "spec": spec,
    }
    try:
        Canary.model_validate(body)
    except ValidationError as exc:
        error = exc.errors()[0]
        location = [str(p) for p in error["loc"] if not str(p).startswith("function-")]
        keys = _annotations_of(location, annotations)
        named = f"annotation{'s' * (len(keys) > 1)} {', '.join(keys)}" if keys else "canary.dev annotations"
        raise PermanentError(f"{where}: {named}: the Canary is invalid at {'.'.join(location)}: "
                             f"{error['msg']}") from exc
    return body


def _annotations_of(location: Sequence[str], annotations: Mapping[str, str]) -> list[str]:
    """The annotations on the Deployment that set the field at ``location``, or a field under it (a
    rule across fields, such as the analysis' interval and steps, is refused at the object holding them)."""
    path = tuple(location)
    return [PREFIX + key for key, field in _FIELDS.items() if PREFIX + key in annotations
            and (field[:len(path)] == path or path[:len(field)] == field)]
