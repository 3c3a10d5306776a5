"""The controller's Canaries, read through their model once per version.

Wraps the Canary informer for every reader in the engine (the scheduler, the reconciler, the
generated-canary job, the Git rollbacks): each object version is parsed once, keyed by its
resourceVersion, and handed out typed. An object that does not parse is an ``InvalidCanary``
carrying the validation message, so that a tick reports it as a condition instead of guessing
defaults; ``heads`` reads every Canary leniently, valid or not, for who targets what.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from pydantic import ValidationError

from canary.kube import Obj
from canary.kube.cache import Informer
from canary.models.canary import Canary, CanaryHead


@dataclass(frozen=True)
class InvalidCanary:
    """A Canary object that its model refuses; ``message`` names the fields."""

    obj: Obj
    message: str


Parsed = Canary | InvalidCanary


class Canaries:
    """Typed, cached reads of the Canary informer."""

    def __init__(self, informer: Informer) -> None:
        self.informer = informer
        self._parsed: dict[tuple[str, str], tuple[str, Parsed]] = {}
        self._lock = threading.Lock()

    def get(self, namespace: str, name: str) -> tuple[Obj, Parsed] | None:
        """The Canary as stored and as its model reads it; None when it does not exist."""
        obj = self.informer.get(namespace, name)
        return None if obj is None else (obj, self.parse(obj))

    def parse(self, obj: Obj) -> Parsed:
        """``obj`` through the model, parsed once per resourceVersion."""
        meta = obj["metadata"]
        key, version = (meta.get("namespace") or "", meta["name"]), str(meta.get("resourceVersion") or "")
        with self._lock:
            cached = self._parsed.get(key)
        if cached is not None and version and cached[0] == version:
            return cached[1]
        try:
            parsed: Parsed = Canary.from_object(obj)
        except ValidationError as exc:
            parsed = InvalidCanary(obj=obj, message=validation_message(exc))
        with self._lock:
            self._parsed[key] = (version, parsed)
        return parsed

    def forget(self, obj: Obj) -> None:
        """Drop a deleted Canary's parse."""
        meta = obj["metadata"]
        with self._lock:
            self._parsed.pop((meta.get("namespace") or "", meta["name"]), None)

    def valid(self) -> list[Canary]:
        """Every Canary that its model accepts."""
        return [c for c in map(self.parse, self.informer.list_objects()) if isinstance(c, Canary)]

    def heads(self, namespace: str | None = None) -> list[CanaryHead]:
        """Who each Canary (valid or not) is and what it targets."""
        return [CanaryHead.of(obj) for obj in self.informer.list_objects(namespace)]

    def targeting(self, namespace: str, target: str) -> list[CanaryHead]:
        """The Canaries of ``namespace`` whose spec.targetRef names ``target``."""
        return [head for head in self.heads(namespace) if head.target == target]


def validation_message(exc: ValidationError) -> str:
    """The first problems of a refused Canary, each with its field path."""
    parts = []
    for error in exc.errors()[:5]:
        location = ".".join(str(p) for p in error["loc"] if not str(p).startswith("function-"))
        parts.append(f"{location}: {error['msg']}")
    return "; ".join(parts)
