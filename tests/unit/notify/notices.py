"""A notice to build alerts from, for the notify tests."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from canary.notify.base import AlertRoute, Notice

NOTICE = Notice(canary="web", namespace="shop", severity="error", message="Canary analysis failed, rolling back",
                phase="Progressing", revision="abc123", alerts=(), cluster="prod-eu",
                details=(("request-success-rate", "75.2 < 99"), ("request-duration", "812 > 500")))


def notice(**changes: Any) -> Notice:
    """NOTICE with ``changes``."""
    return replace(NOTICE, **changes)


def route(provider: str, severity: str | None = None, *, namespace: str | None = None) -> AlertRoute:
    """An alert named after its provider."""
    return AlertRoute(name=f"to-{provider}", severity=severity, provider=provider, provider_namespace=namespace)
