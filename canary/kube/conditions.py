"""Reading ``status.conditions`` of any object, as plain dicts."""

from __future__ import annotations

from typing import Any


def condition(obj: dict[str, Any] | None, kind: str) -> dict[str, Any] | None:
    """The condition of type ``kind``, or None (also when the object or its status is missing)."""
    conditions = ((obj or {}).get("status") or {}).get("conditions") or []
    return next((c for c in conditions if c.get("type") == kind), None)


def is_true(obj: dict[str, Any] | None, kind: str) -> bool:
    """True when the object has condition ``kind`` with status "True"."""
    found = condition(obj, kind)
    return found is not None and found.get("status") == "True"
