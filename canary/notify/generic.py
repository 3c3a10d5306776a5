"""Our own JSON, for any HTTP receiver (``type: generic``): the notice's fields, flat.

``registry.py`` maps ``type: generic`` here. The format, documented in README.md ("Alerts")::

    {"canary": "web", "namespace": "shop", "cluster": "prod-eu", "phase": "Progressing",
     "severity": "error", "message": "...", "revision": "abc123",
     "details": {"request-success-rate": "75.2 < 99"}}

``details`` is an object in the notice's order; ``cluster`` is "" when none is named. Channel and
username mean nothing here and are ignored.
"""

from __future__ import annotations

from typing import Any

from canary.notify.base import Notice


def generic_payload(notice: Notice, *, channel: str | None = None, username: str | None = None) -> dict[str, Any]:
    """The documented JSON of a notice."""
    return {
        "canary": notice.canary,
        "namespace": notice.namespace,
        "cluster": notice.cluster,
        "phase": notice.phase,
        "severity": notice.severity,
        "message": notice.message,
        "revision": notice.revision,
        "details": dict(notice.details),
    }
