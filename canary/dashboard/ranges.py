"""Each metric's Prometheus series over a canary's current or last run, for the canary page's charts, when a
metrics server is set (``canary dashboard --metrics-server``, or the controller's own --metrics-server).

``app`` asks ``Ranges.of`` when a canary page (or one of its charts) is read; the series come from
``canary.report.prometheus.with_prometheus``, the same queries ``canary report --metrics-server`` draws,
asked on the server with a short timeout. A Prometheus that does not answer never fails the page: the
answer says so, naming the server, and the charts keep the values of status.timeline/status.analysis.
One answer is kept per version of a Canary (a failure for a few seconds only, so that a page retries).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Protocol

from canary.errors import CanaryError
from canary.kube import Obj
from canary.models.canary import Canary, Phase
from canary.report.prometheus import with_prometheus
from canary.report.series import Run, Sample, run_of

TIMEOUT_SECONDS = 3.0
"""How long one range query may take: a page is waiting."""
FAILURE_KEPT_SECONDS = 10.0
KEPT = 64
_FINISHED = (Phase.SUCCEEDED, Phase.FAILED, Phase.INITIALIZED)


@dataclass(frozen=True)
class RangeSeries:
    """What Prometheus has of each metric over the run: ``series`` by metric, ``missing`` says why a metric
    has none, ``problem`` why none could be read at all (the server did not answer)."""

    server: str | None = None
    series: dict[str, tuple[Sample, ...]] = field(default_factory=dict)
    missing: dict[str, str] = field(default_factory=dict)
    problem: str | None = None

    def as_json(self) -> dict[str, object]:
        """What the page is told: where the series come from, and what is missing."""
        return {"server": self.server, "problem": self.problem, "missing": self.missing,
                "metrics": sorted(self.series)}


NONE = RangeSeries()
"""No metrics server set: nothing asked, nothing said."""


class Ranges(Protocol):
    """Where the charts' Prometheus series come from."""

    def of(self, obj: Obj, canary: Canary) -> RangeSeries:
        """The Prometheus series of ``canary``'s run (``obj`` is the object it was parsed from)."""


class NoRanges:
    """No metrics server: the charts draw the analysis history alone."""

    def of(self, obj: Obj, canary: Canary) -> RangeSeries:
        """Nothing asked, nothing said."""
        return NONE


class PrometheusRanges:
    """The series from the Prometheus at ``server``; ``mesh_provider`` is the router whose built-in queries
    apply to a Canary without spec.provider; ``templates`` reads a MetricTemplate (namespace, name)."""

    def __init__(self, server: str, *, mesh_provider: str, templates: Callable[[str | None, str], Obj | None],
                 timeout: float = TIMEOUT_SECONDS, clock: Callable[[], float] = time.monotonic,
                 now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.server = server
        self._mesh, self._templates, self._timeout = mesh_provider, templates, timeout
        self._clock, self._now = clock, now
        self._kept: OrderedDict[tuple[str, str, str], tuple[float, RangeSeries]] = OrderedDict()
        self._lock = threading.Lock()
        self._asking: dict[tuple[str, str, str], threading.Lock] = {}

    def of(self, obj: Obj, canary: Canary) -> RangeSeries:
        meta = obj["metadata"]
        key = (meta.get("namespace") or "", meta["name"], str(meta.get("resourceVersion") or ""))
        with self._lock:
            asking = self._asking.setdefault(key, threading.Lock())
        with asking:  # the page and its charts ask at once: one of them queries, the others wait for it
            with self._lock:
                kept = self._kept.get(key)
                if kept is not None and (kept[0] == 0 or self._clock() < kept[0]):
                    self._kept.move_to_end(key)
                    return kept[1]
            found = self._ask(canary)
            with self._lock:
                expires = 0.0 if found.problem is None else self._clock() + FAILURE_KEPT_SECONDS
                self._kept[key] = (expires, found)
                while len(self._kept) > KEPT:
                    self._kept.popitem(last=False)
                self._asking.pop(key, None)
            return found

    def _ask(self, canary: Canary) -> RangeSeries:
        try:
            run = run_of(canary)
        except CanaryError:
            return RangeSeries(self.server, problem=None, missing={
                m.name: "no run recorded yet (status.timeline)" for m in canary.spec.analysis.metrics or []})
        try:
            drawn = with_prometheus(self._until_now(run), canary, url=self.server,
                                    mesh=canary.spec.provider or self._mesh, templates=self._templates,
                                    timeout=self._timeout)
        except CanaryError as exc:
            return RangeSeries(self.server, problem=f"the Prometheus range series could not be read from "
                                                    f"{self.server}: {exc}")
        return RangeSeries(self.server, series={m.name: m.prometheus for m in drawn.metrics if m.prometheus},
                           missing={m.name: m.missing for m in drawn.metrics if m.missing})

    def _until_now(self, run: Run) -> Run:
        """A run still going is asked up to now, not to its last recorded step."""
        return run if run.phase in _FINISHED else replace(run, ended=max(run.ended, self._now()))
