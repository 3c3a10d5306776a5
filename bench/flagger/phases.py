"""When each canary reached each phase, seen through a watch: the benchmark's reaction and release times.

``run.py`` keeps one ``PhaseLog`` per fleet (an informer on its namespace's Canaries, Flagger's kind or
ours) for the whole run. A watch event arrives within milliseconds of the status write, so the times
are the controllers' own, not a poll's. ``since`` picks a release's first entry into a phase from
the transitions a canary went through.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence

from canary.kube import Obj
from canary.kube.cache import Informer
from canary.kube.client import Kube

Transition = tuple[float, str]
"""(time.monotonic() when seen, the phase it changed to)."""


def since(transitions: Sequence[Transition], phases: frozenset[str], moment: float) -> float | None:
    """Seconds from ``moment`` until the first transition after it into one of ``phases``; None if none yet."""
    return next((at - moment for at, phase in transitions if at >= moment and phase in phases), None)


def delays(released: Mapping[str, float], transitions: Mapping[str, Sequence[Transition]],
           phases: frozenset[str]) -> dict[str, float | None]:
    """``since`` for every released canary: how long after its release each one reached ``phases``."""
    return {name: since(transitions.get(name, ()), phases, moment) for name, moment in released.items()}


class PhaseLog:
    """The phase transitions of every Canary (``api_version``'s kind) in one namespace."""

    def __init__(self, kube: Kube, api_version: str, namespace: str,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._transitions: dict[str, list[Transition]] = {}
        self._informer = Informer(kube, api_version, "Canary", namespace=namespace)
        self._informer.subscribe(self.observe)

    def start(self, timeout: float = 60) -> PhaseLog:
        """Start watching, once the first list is in."""
        self._informer.start()
        self._informer.wait_synced(timeout)
        return self

    def stop(self) -> None:
        self._informer.stop()

    def observe(self, event: str, obj: Obj) -> None:
        """Note the canary's phase when it differs from the last one noted (the informer's handler)."""
        if event == "DELETED":
            return
        name = str(obj["metadata"]["name"])
        phase = str((obj.get("status") or {}).get("phase") or "")
        with self._lock:
            seen = self._transitions.setdefault(name, [])
            if phase and (not seen or seen[-1][1] != phase):
                seen.append((self._clock(), phase))

    def phases(self) -> dict[str, str]:
        """Each canary's phase now ("" before its controller gave it one)."""
        with self._lock:
            return {name: seen[-1][1] if seen else "" for name, seen in self._transitions.items()}

    def transitions(self) -> dict[str, list[Transition]]:
        """A copy of every canary's transitions so far."""
        with self._lock:
            return {name: list(seen) for name, seen in self._transitions.items()}
