"""Namespaces the controller keeps its own objects in (the leader Lease, the Git sync's state).

Called once at start-up: a namespace that is missing is created when the controller may create
namespaces, and otherwise the start fails with one line saying what to do, rather than every
later write failing with "not found".
"""

from __future__ import annotations

from canary.defaults import CONTROLLER_NAME
from canary.errors import Conflict, Forbidden, PermanentError
from canary.kube.client import Kube


def ensure_namespace(kube: Kube, name: str, *, flag: str) -> bool:
    """Make sure namespace ``name`` exists; returns whether it was created. ``flag`` sets it, for the error."""
    try:
        if kube.get("v1", "Namespace", name) is not None:
            return False
    except Forbidden:
        # Least-privilege RBAC need not grant reading namespaces: the install created it.
        return False
    try:
        kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {
            "name": name, "labels": {"app.kubernetes.io/managed-by": CONTROLLER_NAME}}})
    except Forbidden as exc:
        raise PermanentError(f"namespace {name} does not exist and the controller may not create it ({exc}): "
                             f"create it (kubectl create namespace {name}) or set {flag} to a namespace "
                             "that exists") from exc
    except Conflict:  # another replica created it meanwhile
        return False
    return True
