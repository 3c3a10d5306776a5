"""Leader election on a coordination.k8s.io Lease, so that one controller replica acts at a time.

The holder renews the lease every ``renew_seconds``; another replica takes it over only after
``lease_seconds`` without a renewal. Every write is conditional on the lease's resourceVersion,
so two candidates can never both win. A holder that cannot renew for two thirds of
``lease_seconds`` stops acting, before anyone else may start; a holder that shuts down gives the
lease up at once.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable
from typing import Any

import structlog

from canary.errors import CanaryError
from canary.kube.client import Kube

log = structlog.get_logger(__name__)
API_VERSION = "coordination.k8s.io/v1"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _micro(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse(text: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None


class LeaseElector:
    """Campaigns for a Lease in a thread and calls back on gaining and losing it."""

    def __init__(self, kube: Kube, *, namespace: str, name: str, identity: str, on_started: Callable[[], None],
                 on_stopped: Callable[[], None], lease_seconds: int = 15, renew_seconds: float = 5.0,
                 clock: Callable[[], dt.datetime] = _now) -> None:
        self._kube = kube
        self._namespace, self._name, self.identity = namespace, name, identity
        self._on_started, self._on_stopped = on_started, on_stopped
        self._lease_seconds, self._renew_seconds = lease_seconds, renew_seconds
        # Stop acting well before the lease can expire for the others (client-go's renewDeadline).
        self._renew_deadline = dt.timedelta(seconds=lease_seconds * 2 / 3)
        self._clock = clock
        self._leading = False
        self._last_renewal: dt.datetime | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="leader-election", daemon=True)

    @property
    def leading(self) -> bool:
        """Whether this replica holds the lease now."""
        return self._leading

    def start(self) -> LeaseElector:
        """Begin campaigning."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop campaigning and give the lease up if held."""
        self._stop.set()
        self._thread.join(timeout=self._renew_seconds + 5)
        if self._leading:
            self._set_leading(False)
            self._release()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                held = self._try_acquire_or_renew()
            except CanaryError as exc:
                log.warning("lease not renewed", error=str(exc))
                held = False
            now = self._clock()
            if held:
                self._last_renewal = now
                self._set_leading(True)
            elif self._leading and (self._last_renewal is None or now - self._last_renewal > self._renew_deadline):
                self._set_leading(False)
            self._stop.wait(self._renew_seconds)

    def _set_leading(self, leading: bool) -> None:
        if leading == self._leading:
            return
        self._leading = leading
        log.info("leadership " + ("acquired" if leading else "lost"), identity=self.identity)
        (self._on_started if leading else self._on_stopped)()

    def _spec(self, now: dt.datetime, *, acquired: bool, transitions: int) -> dict[str, Any]:
        spec: dict[str, Any] = {"holderIdentity": self.identity, "leaseDurationSeconds": self._lease_seconds,
                                "renewTime": _micro(now), "leaseTransitions": transitions}
        if acquired:
            spec["acquireTime"] = _micro(now)
        return spec

    def _try_acquire_or_renew(self) -> bool:
        now = self._clock()
        lease = self._kube.get(API_VERSION, "Lease", self._name, namespace=self._namespace)
        if lease is None:
            self._kube.create({"apiVersion": API_VERSION, "kind": "Lease",
                               "metadata": {"name": self._name, "namespace": self._namespace},
                               "spec": self._spec(now, acquired=True, transitions=0)})
            return True
        spec = lease.get("spec") or {}
        holder = spec.get("holderIdentity") or ""
        transitions = int(spec.get("leaseTransitions") or 0)
        if holder == self.identity:
            new_spec = self._spec(now, acquired=False, transitions=transitions)
        else:
            renewed = _parse(spec.get("renewTime")) or dt.datetime.min.replace(tzinfo=dt.UTC)
            duration = int(spec.get("leaseDurationSeconds") or self._lease_seconds)
            if holder and now < renewed + dt.timedelta(seconds=duration):
                return False
            new_spec = self._spec(now, acquired=True, transitions=transitions + 1)
        self._kube.merge_patch(API_VERSION, "Lease", self._name, namespace=self._namespace,
                               patch={"metadata": {"resourceVersion": lease["metadata"]["resourceVersion"]},
                                      "spec": new_spec})
        return True

    def _release(self) -> None:
        try:
            lease = self._kube.get(API_VERSION, "Lease", self._name, namespace=self._namespace)
            if lease is not None and (lease.get("spec") or {}).get("holderIdentity") == self.identity:
                self._kube.merge_patch(API_VERSION, "Lease", self._name, namespace=self._namespace,
                                       patch={"metadata": {"resourceVersion": lease["metadata"]["resourceVersion"]},
                                              "spec": {"holderIdentity": None}})
        except CanaryError as exc:
            log.warning("lease not released", error=str(exc))
