"""The Notifier protocol: how the engine hands an alert over without waiting for its delivery."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import structlog

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Notice:
    """One alert about one canary."""

    canary: str
    namespace: str
    severity: str
    message: str
    phase: str
    revision: str


class Notifier(Protocol):
    """Accepts alerts; must return at once (delivery happens elsewhere)."""

    def notify(self, notice: Notice) -> None:
        """Queue ``notice`` for delivery."""
        ...


class LogNotifier:
    """Writes alerts to the log: the notifier when no alert provider is configured."""

    def notify(self, notice: Notice) -> None:
        """Log the alert as one structured line."""
        log.info("alert", canary=notice.canary, namespace=notice.namespace, severity=notice.severity,
                 message=notice.message, phase=notice.phase, revision=notice.revision)
