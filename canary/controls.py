"""The manual controls behind ``canary promote|abort|retry|pause|resume``, through the API only.

Promote, abort and retry write the annotation ``canary.dev/request: <action>/<id>``; the
controller acts on it once and records the id in status.handledRequest. Pause and resume set
spec.suspend, Flagger's field. So the controls work with the controller anywhere, in-cluster too.
"""

from __future__ import annotations

import time

from canary.engine.decide import REQUEST_ANNOTATION, Request
from canary.errors import PermanentError
from canary.kube import Obj
from canary.kube.client import Kube
from canary.models.base import API_VERSION
from canary.waiting import wait_until


def get_canary(kube: Kube, namespace: str, name: str) -> Obj:
    """The Canary, or an error that names it."""
    found = kube.get(API_VERSION, "Canary", name, namespace=namespace)
    if found is None:
        raise PermanentError(f"Canary {namespace}/{name} not found")
    return found


def list_canaries(kube: Kube, namespace: str | None) -> list[Obj]:
    """Canaries of one namespace, or of all, sorted by namespace and name."""
    found = kube.list_objects(API_VERSION, "Canary", namespace=namespace)
    return sorted(found, key=lambda c: (c["metadata"]["namespace"], c["metadata"]["name"]))


def request(kube: Kube, namespace: str, name: str, action: Request) -> str:
    """Ask the controller for ``action``; returns the request's value to wait for."""
    get_canary(kube, namespace, name)
    value = f"{action.value}/{time.time_ns()}"
    kube.merge_patch(API_VERSION, "Canary", name, {"metadata": {"annotations": {REQUEST_ANNOTATION: value}}},
                     namespace=namespace)
    return value


def wait_handled(kube: Kube, namespace: str, name: str, value: str, *, timeout: float) -> Obj:
    """Wait until the controller recorded the request; returns the Canary's status then."""
    return wait_until(lambda: dict(get_canary(kube, namespace, name).get("status") or {}),
                      lambda status: status.get("handledRequest") == value,
                      what=f"the controller to handle the request on Canary {namespace}/{name} (is it running?)",
                      timeout=timeout, interval=0.2)


def set_suspended(kube: Kube, namespace: str, name: str, *, suspended: bool) -> None:
    """Pause (suspend) or resume the canary."""
    get_canary(kube, namespace, name)
    kube.merge_patch(API_VERSION, "Canary", name, {"spec": {"suspend": suspended}}, namespace=namespace)
