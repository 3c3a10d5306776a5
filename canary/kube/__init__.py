"""The only package that imports ``kubernetes``: client, watch caches, apply, events, leases.

Objects cross this boundary as plain dicts (``Obj``), never as the generated client classes;
our own resources are then read through their models (canary.models).
"""

from __future__ import annotations

from typing import Any

Obj = dict[str, Any]
"""A Kubernetes object as the API server sends it: used where an object is truly opaque."""
