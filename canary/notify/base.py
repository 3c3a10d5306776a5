"""The Notifier protocol: how the engine hands an alert over without waiting for its delivery.

The reconciler builds a ``Notice`` (with the canary's alert routes from ``spec.analysis.alerts``,
see ``routes``) and calls ``Notifier.notify``; the controller chooses the implementation.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import structlog

from canary.models.canary import CanaryAlert, Severity

log = structlog.get_logger(__name__)
SEVERITIES: tuple[str, ...] = tuple(s.value for s in Severity)
"""The severities from least to most urgent, as the wire spells them."""


@dataclass(frozen=True)
class AlertRoute:
    """One entry of ``spec.analysis.alerts``: which AlertProvider hears which severities."""

    name: str
    severity: str | None
    provider: str
    provider_namespace: str | None = None

    def __post_init__(self) -> None:
        if self.severity is not None and self.severity not in SEVERITIES:
            raise ValueError(f"alert {self.name}: severity must be one of {', '.join(SEVERITIES)} or unset, "
                             f"got {self.severity!r}")


def routes(alerts: Sequence[CanaryAlert] | None) -> tuple[AlertRoute, ...]:
    """The routes of a canary's ``spec.analysis.alerts`` (none when the field is unset)."""
    return tuple(AlertRoute(name=a.name, severity=a.severity, provider=a.provider_ref.name,
                            provider_namespace=a.provider_ref.namespace) for a in alerts or ())


@dataclass(frozen=True)
class Notice:
    """One alert about one canary, with where it may go and the facts behind it.

    ``details`` are (name, value) pairs shown under the message, for example
    ``("request-success-rate", "75.2 < 99")``.
    """

    canary: str
    namespace: str
    severity: str
    message: str
    phase: str
    revision: str
    alerts: tuple[AlertRoute, ...]
    details: tuple[tuple[str, str], ...] = ()
    cluster: str = ""

    def __post_init__(self) -> None:
        # Routing and colours depend on the severity: a typo must fail where it is made.
        if self.severity not in SEVERITIES:
            raise ValueError(f"Notice {self.namespace}/{self.canary}: severity must be one of "
                             f"{', '.join(SEVERITIES)}, got {self.severity!r}")


Settled = Callable[[bool], None]
"""Called once a notice's deliveries are over: True when each was delivered or can never be (a
receiver that refuses it, a provider that is missing), False when it may pass if sent again (the
queue was full, the notifier closed)."""


class Notifier(Protocol):
    """Accepts alerts; must return at once (delivery happens elsewhere)."""

    def notify(self, notice: Notice, settled: Settled | None = None) -> None:
        """Queue ``notice`` for delivery; ``settled`` hears how it ended."""
        ...

    def delivers(self, alerts: tuple[AlertRoute, ...]) -> bool:
        """Whether a notice routed by ``alerts`` goes anywhere but the log (worth delivering at least once)."""
        ...


class LogNotifier:
    """Writes alerts to the log: where a notice goes when it has no destination."""

    def notify(self, notice: Notice, settled: Settled | None = None) -> None:
        """Log the alert as one structured line."""
        log.info("alert", canary=notice.canary, namespace=notice.namespace, severity=notice.severity,
                 message=notice.message, phase=notice.phase, revision=notice.revision,
                 details=dict(notice.details))
        if settled is not None:
            settled(True)

    def delivers(self, alerts: tuple[AlertRoute, ...]) -> bool:
        """Never: it only logs."""
        return False
