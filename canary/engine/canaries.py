"""The controller's Canaries, read through their model once per version.

Wraps the Canary informer for every reader in the engine (the scheduler, the reconciler, the
generated-canary job, the Git rollbacks): each object version is parsed once, keyed by its
resourceVersion, and handed out typed. An object that does not parse is an ``InvalidCanary``
carrying the validation message, so that a tick reports it as a condition instead of guessing
defaults. Who targets what is an index of ``CanaryHead`` values (every Canary, valid or not),
kept from the informer's events, so that finding a target's Canaries copies and parses nothing.
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

    message: str


Parsed = Canary | InvalidCanary


class Canaries:
    """Typed, cached reads of the Canary informer."""

    def __init__(self, informer: Informer) -> None:
        self.informer = informer
        self._parsed: dict[tuple[str, str], tuple[str, Parsed]] = {}
        self._heads: dict[tuple[str, str], CanaryHead] = {}
        self._by_target: dict[tuple[str, str | None], set[tuple[str, str]]] = {}
        self._lock = threading.Lock()
        for obj in informer.peek_all():
            self._index("ADDED", obj)
        informer.subscribe(self._index)

    def get(self, namespace: str, name: str) -> tuple[Obj, Parsed] | None:
        """The Canary as cached (read-only: writers build new dicts) and as its model reads it; None when
        it does not exist."""
        obj = self.informer.peek(namespace, name)
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
            parsed = InvalidCanary(message=validation_message(exc))
        with self._lock:
            self._parsed[key] = (version, parsed)
        return parsed

    def targeting(self, namespace: str, target: str) -> list[CanaryHead]:
        """The Canaries of ``namespace`` whose spec.targetRef names ``target``."""
        with self._lock:
            return [self._heads[key] for key in sorted(self._by_target.get((namespace, target), ()))]

    def _index(self, event: str, obj: Obj) -> None:
        """Informer handler: keep the target index (and drop a deleted Canary's parse)."""
        meta = obj["metadata"]
        key = (meta.get("namespace") or "", meta["name"])
        head = None if event == "DELETED" else CanaryHead.of(obj)
        with self._lock:
            old = self._heads.pop(key, None)
            if old is not None:
                self._by_target.get((key[0], old.target), set()).discard(key)
            if head is None:
                self._parsed.pop(key, None)
                return
            self._heads[key] = head
            self._by_target.setdefault((key[0], head.target), set()).add(key)


def validation_message(exc: ValidationError) -> str:
    """The first problems of a refused Canary (or MetricTemplate), each with its field path."""
    parts = []
    for error in exc.errors()[:5]:
        location = ".".join(str(p) for p in error["loc"] if not str(p).startswith("function-"))
        parts.append(f"{location}: {error['msg']}")
    return "; ".join(parts)


def cross_namespace_refs(canary: Canary) -> list[str]:
    """The references of ``canary`` to objects in other namespaces (Flagger's -no-cross-namespace-refs
    refuses them), by field path."""
    namespace = canary.metadata.namespace
    found = []
    for index, metric in enumerate(canary.spec.analysis.metrics or []):
        ref = metric.template_ref
        if ref is not None and ref.namespace and ref.namespace != namespace:
            found.append(f"spec.analysis.metrics[{index}].templateRef.namespace {ref.namespace}")
    for index, alert in enumerate(canary.spec.analysis.alerts or []):
        ref = alert.provider_ref
        if ref.namespace and ref.namespace != namespace:
            found.append(f"spec.analysis.alerts[{index}].providerRef.namespace {ref.namespace}")
    return found
