"""Write an object only when the cluster's copy lacks what we want, so idle ticks write nothing.

"Lacks" is a subset test: the cluster adds defaults (clusterIP, strategy, ...) that we never set,
so the cached object may hold more than ours; any of our fields that differs means a write. A
subset test cannot see a field we stopped wanting (a mirror, a timeout removed from the Canary),
so every object also carries the digest of what we last applied (annotation
``canary.dev/applied``): another digest means a write, which server-side apply turns into the
removal of the fields we no longer send.
``test_an_idle_canary_costs_no_api_requests_per_tick`` holds this to account.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from canary.kube import Obj
from canary.kube.cache import Informer
from canary.kube.client import Kube


def contains(actual: Any, desired: Any) -> bool:  # noqa: ANN401 - any JSON value
    """True when every field of ``desired`` is present in ``actual`` with the same value."""
    if isinstance(desired, dict):
        # The API server drops empty maps and lists, so an empty value we want is as good as absent.
        return isinstance(actual, dict) and all(
            contains(actual[k], v) if k in actual else v in ({}, [], None) for k, v in desired.items())
    if isinstance(desired, list):
        return (isinstance(actual, list) and len(actual) == len(desired)
                and all(contains(a, d) for a, d in zip(actual, desired, strict=True)))
    return bool(actual == desired)


APPLIED = "canary.dev/applied"


def digest(body: Obj) -> str:
    """A short digest of ``body``, the same for the same fields whatever their order."""
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:16]


def apply_if_changed(kube: Kube, cache: Informer, body: Obj, *, field_manager: str) -> bool:
    """Server-side apply ``body`` unless the cached object already holds it, as last applied; True when written."""
    meta = body["metadata"]
    wanted = digest(body)
    current = cache.peek(meta.get("namespace"), meta["name"])
    if current is not None and (current["metadata"].get("annotations") or {}).get(APPLIED) == wanted \
            and contains(current, body):
        return False
    annotated = {**body, "metadata": {**meta, "annotations": {**(meta.get("annotations") or {}), APPLIED: wanted}}}
    cache.store(kube.apply(annotated, field_manager=field_manager))
    return True
