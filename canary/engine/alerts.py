"""Alerts at least once: a transition's alerts are written into the Canary's status as pending, in
the same write as the transition, and removed only after their delivery.

The reconciler turns a decision's ``Alert`` effects into ``PendingAlert`` entries (``split``) of
its status write; after each tick it sends the pending alerts this process has not sent yet and
removes the delivered ones (``Outbox``). A controller killed anywhere in between finds them in the
status when it starts and sends them again: nothing is lost, and the only duplicates come from a
kill between a delivery and the write that removes it.

A canary whose alerts have nowhere to go but the log (no ``spec.analysis.alerts``, no default
destination) skips all that: its alerts are logged once the transition's status is written
(``announce``), which saves two status writes per transition that would only record a log line.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass

from canary.engine.decide import Act
from canary.engine.effects import Alert
from canary.models.canary import Canary, MetricDetail, PendingAlert
from canary.notify.base import Notice, Notifier, routes

Key = tuple[str, str]
"""A canary, as (namespace, name)."""


def split(decision: Act, *, revision: str, phase: str) -> tuple[Act, tuple[PendingAlert, ...]]:
    """``decision`` without its ``Alert`` effects, and those effects as records."""
    alerts = [e for e in decision.effects if isinstance(e, Alert)]
    if not alerts:
        return decision, ()
    records = tuple(PendingAlert(id=secrets.token_hex(8), severity=a.severity, message=a.message,
                                 revision=revision, phase=phase,
                                 details=[MetricDetail(name=n, value=v) for n, v in a.details] or None)
                    for a in alerts)
    kept = Act(effects=tuple(e for e in decision.effects if not isinstance(e, Alert)), summary=decision.summary,
               hold=decision.hold)
    return kept, records


def notice(canary: Canary, alert: PendingAlert) -> Notice:
    """The notice of one of the canary's alerts, routed by its ``spec.analysis.alerts``."""
    return Notice(canary=canary.metadata.name, namespace=canary.metadata.namespace or "", severity=alert.severity,
                  message=alert.message, phase=alert.phase, revision=alert.revision,
                  alerts=routes(canary.spec.analysis.alerts),
                  details=tuple((d.name, d.value) for d in alert.details or ()))


def announce(notifier: Notifier, canary: Canary, alerts: tuple[PendingAlert, ...]) -> None:
    """Hand alerts that are not kept pending straight to the notifier (which logs them)."""
    for alert in alerts:
        notifier.notify(notice(canary, alert))


@dataclass
class _Sent:
    """The pending alerts of one canary this process has handed to the notifier, and those done with."""

    in_flight: set[str]
    done: set[str]


class Outbox:
    """Sends a canary's pending alerts once per process and tells which were delivered.

    ``on_done(namespace, name)`` is called (from the notifier's thread) when an alert of that canary
    is done with, so that the caller can remove it from the status soon rather than at the next tick.
    """

    def __init__(self, notifier: Notifier, on_done: Callable[[str, str], None]) -> None:
        self._notifier = notifier
        self._on_done = on_done
        self._sent: dict[Key, _Sent] = {}
        self._lock = threading.Lock()

    def send(self, canary: Canary) -> int:
        """Hand the canary's pending alerts that are neither in flight nor done to the notifier; returns how many."""
        key = (canary.metadata.namespace or "", canary.metadata.name)
        with self._lock:
            sent = self._sent.setdefault(key, _Sent(in_flight=set(), done=set()))
            new = [a for a in canary.status.pending_alerts or [] if a.id not in sent.in_flight | sent.done]
            sent.in_flight.update(a.id for a in new)
        if not new:
            return 0  # the usual case, after every tick
        for alert in new:
            self._notifier.notify(notice(canary, alert), self._settled(key, alert.id))
        return len(new)

    def done(self, namespace: str, name: str) -> frozenset[str]:
        """The canary's alerts that are delivered (or can never be) and still to be removed from its status."""
        with self._lock:
            sent = self._sent.get((namespace, name))
            return frozenset(sent.done) if sent is not None else frozenset()

    def removed(self, namespace: str, name: str, ids: frozenset[str]) -> None:
        """The status no longer holds ``ids``: forget them."""
        with self._lock:
            sent = self._sent.get((namespace, name))
            if sent is not None:
                sent.done -= ids

    def forget(self, namespace: str, name: str) -> None:
        """The Canary is gone."""
        with self._lock:
            self._sent.pop((namespace, name), None)

    def _settled(self, key: Key, alert_id: str) -> Callable[[bool], None]:
        def settled(final: bool) -> None:
            with self._lock:
                sent = self._sent.get(key)
                if sent is None:
                    return
                sent.in_flight.discard(alert_id)
                if final:
                    sent.done.add(alert_id)
            if final:
                self._on_done(*key)
        return settled
