"""Write an object only when the cluster's copy lacks what we want, so idle ticks write nothing.

"Lacks" is a subset test: the cluster adds defaults (clusterIP, strategy, ...) that we never set,
so the cached object may hold more than ours; any of our fields that differs means a write.
``test_an_idle_canary_costs_no_api_requests_per_tick`` holds this to account.
"""

from __future__ import annotations

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


def apply_if_changed(kube: Kube, cache: Informer, body: Obj, *, field_manager: str) -> bool:
    """Server-side apply ``body`` unless the cached object already holds it; True when written."""
    meta = body["metadata"]
    current = cache.get(meta.get("namespace"), meta["name"])
    if current is not None and contains(current, body):
        return False
    cache.store(kube.apply(body, field_manager=field_manager))
    return True
