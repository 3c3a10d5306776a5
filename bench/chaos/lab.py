"""The chaos bench's laboratory: its own local stack, a namespace and a controller per scenario, one
alert receiver for every controller's ``--slack-url``, silent sockets, and the checks the scenarios
share (how a release ended, where the routes send, which alerts arrived).

The scenarios (``kills.py``, ``faults.py``) call these; the end-to-end tests' helpers (controller processes,
receivers, builders) are reused as they are.
"""

from __future__ import annotations

import collections
import contextlib
import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from canary.errors import CanaryError, LocalStackError, WaitTimeout
from canary.kube import Obj
from canary.kube.client import Kube
from canary.local import procs, stack
from canary.notify.format import COLOURS
from canary.waiting import wait_until
from tests.builders import make_canary, make_deployment
from tests.e2e.canaries import image_of, release, route_weights
from tests.e2e.controllers import ControllerProcess
from tests.e2e.receivers import Receiver

T = TypeVar("T")
AlertKey = tuple[str, str, str, str]
"""An alert as (namespace, canary, revision, kind)."""
Scope = Callable[[AlertKey], bool]
TERMINAL = ("Succeeded", "Failed")
PROMOTING = ("Promoting", "Finalising", "Succeeded")
ERROR_RATE = "sim.canary.dev/error-rate"
BAD_ERROR_RATE = "50"
METRIC_WINDOW = 5
"""Seconds of the success-rate metric's window. The built-in query counts every pod of the target, those
of the release before included, so a release waits until they are gone and out of the window (``settle``)."""

# The alerts of a release, told apart by message (and colour, for a rollback's several messages).
INITIALISED, STARTED, PROMOTED, ROLLED_BACK, OTHER = "initialised", "started", "promoted", "rolled back", "other"


def judged(name: str, namespace: str, router: str) -> Obj:
    """Canary ``name`` judged by Prometheus: success rate at least 99% over 5 s (holding while it has no
    data), a tick a second, two failed checks roll it back; canary steps 25 and 50 on a weighted router,
    three blue/green iterations on the kubernetes one."""
    steps: dict[str, object] = {"iterations": 3} if router == "kubernetes" else {"stepWeight": 25, "maxWeight": 50}
    return make_canary(name, namespace, provider=router, analysis={
        "interval": "1s", "threshold": 2, **steps, "metrics": [
            {"name": "request-success-rate", "interval": f"{METRIC_WINDOW}s", "thresholdRange": {"min": 99},
             "noData": "pause"}]})


def poll(probe: Callable[[], T]) -> T | None:
    """``probe()``, or None while the API server does not answer (it may be restarting)."""
    try:
        return probe()
    except CanaryError:
        return None


def status_of(kube: Kube, namespace: str, name: str) -> Obj:
    """The Canary's status; empty when it has none, or when the API server does not answer."""
    found = poll(lambda: kube.get("canary.dev/v1alpha1", "Canary", name, namespace=namespace))
    return dict((found or {}).get("status") or {})


def wait_for(probe: Callable[[], T], until: Callable[[T], bool], *, what: str, timeout: float,
             interval: float = 0.2) -> T:
    """``wait_until`` that also waits through the API server's errors."""
    return wait_until(lambda: _through(probe), until, what=what, timeout=timeout, interval=interval)


def _through(probe: Callable[[], T]) -> T:
    try:
        return probe()
    except CanaryError as exc:
        raise _NotYet(str(exc)) from exc


class _NotYet(Exception):
    """An error of the API server, which ``wait_until`` counts as "not yet" (it stops at a CanaryError)."""


@dataclass(frozen=True)
class Release:
    """One release of a Canary's target: what was released and what the Canary ran before it."""

    namespace: str
    name: str
    image: str
    bad: bool
    previous_revision: str
    previous_good_image: str
    started: float

    def ship(self, kube: Kube) -> None:
        """Change the target: a new image, and the simulator's error rate of a good or a bad release."""
        release(kube, self.namespace, self.image, name=self.name,
                annotations={ERROR_RATE: BAD_ERROR_RATE if self.bad else "0"})


def settle(kube: Kube, namespace: str, name: str = "web") -> None:
    """Wait until the target's pods of the last release are gone and their requests out of the metric's window."""
    wait_for(lambda: kube.list_objects("v1", "Pod", namespace=namespace, label_selector=f"app={name}"),
             lambda pods: not pods, what=f"the pods of {namespace}/{name} to go", timeout=60)
    time.sleep(METRIC_WINDOW)


def begin(kube: Kube, namespace: str, image: str, *, bad: bool, previous_good_image: str,
          name: str = "web") -> Release:
    """Release ``image`` now."""
    before = status_of(kube, namespace, name)
    shipped = Release(namespace=namespace, name=name, image=image, bad=bad,
                      previous_revision=str(before.get("lastAppliedSpec", "")),
                      previous_good_image=previous_good_image, started=time.monotonic())
    shipped.ship(kube)
    return shipped


def wait_end(kube: Kube, shipped: Release, *, timeout: float = 120) -> Obj:
    """The Canary's status once the release has ended (Succeeded or Failed on a new revision)."""
    return wait_for(lambda: status_of(kube, shipped.namespace, shipped.name),
                    lambda s: s.get("phase") in TERMINAL and s.get("lastAppliedSpec") not in
                    (None, "", shipped.previous_revision),
                    what=f"the release of {shipped.image} in {shipped.namespace} to end", timeout=timeout)


def primary_routed(kube: Kube, namespace: str, name: str, router: str) -> bool:
    """Whether every request goes to the primary: the HTTPRoute's weights, or the apex Service's selector."""
    if router == "kubernetes":
        apex = kube.get("v1", "Service", name, namespace=namespace) or {}
        return bool((apex.get("spec") or {}).get("selector") == {"app": f"{name}-primary"})
    return route_weights(kube, namespace, name) == (100, 0)


def problems(kube: Kube, shipped: Release, status: Obj, *, router: str, either: bool = False) -> list[str]:
    """What is wrong with how the release ended (empty when nothing): the phase (Succeeded for a good
    release, Failed for a bad one; with ``either``, whichever it reached), the primary's image (the new
    one after a promotion, the last good one after a rollback), the routes (all to the primary) and the
    target's replicas (0)."""
    found: list[str] = []
    want_phase = status.get("phase") if either else ("Failed" if shipped.bad else "Succeeded")
    if status.get("phase") != want_phase:
        found.append(f"phase {status.get('phase')} (expected {want_phase})")
    want_image = shipped.image if status.get("phase") == "Succeeded" else shipped.previous_good_image
    primary = kube.get("apps/v1", "Deployment", f"{shipped.name}-primary", namespace=shipped.namespace) or {}
    image = image_of(primary) if primary else None
    if image != want_image:
        found.append(f"primary on {image} (expected {want_image})")
    if not primary_routed(kube, shipped.namespace, shipped.name, router):
        found.append("routes do not send everything to the primary")
    target = kube.get("apps/v1", "Deployment", shipped.name, namespace=shipped.namespace) or {}
    replicas = (target.get("spec") or {}).get("replicas")
    if replicas != 0:
        found.append(f"target at {replicas} replicas (expected 0)")
    return found


@dataclass
class Ledger:
    """The alerts each release should send (derived from how it ended) against those the receiver got.

    Keys are (namespace, canary, revision, kind). Lost: an expected alert never received. Duplicate: an
    expected alert received more than once (allowed: delivery is at least once)."""

    receiver: Receiver
    expected: list[AlertKey] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def expect(self, namespace: str, name: str, revision: str, *kinds: str) -> None:
        """Alerts of ``kinds`` for this revision of this Canary must arrive."""
        with self.lock:
            self.expected += [(namespace, name, revision, kind) for kind in kinds]

    def expect_release(self, shipped: Release, status: Obj) -> None:
        """A release's alerts: its start, then its promotion or rollback (as its final phase says)."""
        end = PROMOTED if status.get("phase") == "Succeeded" else ROLLED_BACK
        self.expect(shipped.namespace, shipped.name, str(status.get("lastAppliedSpec", "")), STARTED, end)

    def received(self) -> collections.Counter[AlertKey]:
        """The alerts the receiver got, counted by key."""
        with self.receiver.lock:
            bodies = [body for _, body in self.receiver.calls]
        return collections.Counter(_key(body) for body in bodies)

    def tally(self, scope: Scope) -> tuple[int, int, int]:
        """(lost, duplicates, unexpected) among the alerts in ``scope``."""
        got = self.received()
        with self.lock:
            wanted = [key for key in self.expected if scope(key)]
        lost = sum(1 for key in wanted if got[key] == 0)
        duplicates = sum(max(0, got[key] - 1) for key in wanted)
        unexpected = sum(count for key, count in got.items() if scope(key) and key not in wanted)
        return lost, duplicates, unexpected

    def counts(self, scope: Scope) -> tuple[int, int]:
        """(expected, received) alerts in ``scope``."""
        got = self.received()
        with self.lock:
            expected = sum(1 for key in self.expected if scope(key))
        return expected, sum(count for key, count in got.items() if scope(key))

    def missing(self, scope: Scope) -> list[AlertKey]:
        """The expected alerts in ``scope`` not received."""
        got = self.received()
        with self.lock:
            return [key for key in self.expected if scope(key) and got[key] == 0]

    def settle(self, scope: Scope, *, timeout: float) -> tuple[int, int, int]:
        """Wait (at most ``timeout``) for every expected alert in ``scope`` to arrive; then ``tally``."""
        with contextlib.suppress(WaitTimeout):
            wait_until(lambda: self.tally(scope)[0], lambda lost: lost == 0,
                       what="the expected alerts", timeout=timeout, interval=0.5)
        return self.tally(scope)


def in_namespaces(*namespaces: str) -> Scope:
    """The alerts of these namespaces."""
    return lambda key: key[0] in namespaces


def of_release(shipped: Release, status: Obj) -> Scope:
    """The alerts of one release (its Canary at its revision)."""
    revision = str(status.get("lastAppliedSpec", ""))
    return lambda key: key[:3] == (shipped.namespace, shipped.name, revision)


def _key(body: dict[str, Any]) -> AlertKey:
    """(namespace, canary, revision, kind) of a Slack payload."""
    where, _, message = str(body.get("text", "")).partition(": ")
    namespace, _, name = where.split(" in ", 1)[0].partition("/")
    attachment = (body.get("attachments") or [{}])[0]
    fields = {f.get("title"): f.get("value") for f in attachment.get("fields") or []}
    if message.startswith("New Deployment detected"):
        kind = INITIALISED
    elif message.startswith("New revision detected"):
        kind = STARTED
    elif message.startswith("Canary analysis completed successfully"):
        kind = PROMOTED
    elif attachment.get("color") == COLOURS["error"]:
        kind = ROLLED_BACK
    else:
        kind = OTHER
    return namespace, name, str(fields.get("Revision", "")), kind


@dataclass
class Lab:
    """A running stack of its own with the bench's CRDs, and what the scenarios share."""

    options: stack.StackOptions
    kube: Kube
    logs: Path
    ledger: Ledger
    controllers: list[ControllerProcess] = field(default_factory=list)
    figures: list[str] = field(default_factory=list)

    @property
    def state(self) -> stack.StackState:
        """The stack's state as last saved (pids change when a process is restarted)."""
        found = stack.load_state(self.options.state_dir)
        assert found is not None, f"no stack in {self.options.state_dir}"
        return found

    def figure(self, line: str) -> None:
        """Print a figure now and keep it for the summary."""
        print(line, flush=True)
        self.figures.append(line)

    def namespace(self, base: str) -> str:
        """Create a namespace ``<base>-<random>`` and wait for its default ServiceAccount (pods need it)."""
        name = f"{base}-{os.urandom(2).hex()}"
        self.kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
        wait_until(lambda: self.kube.get("v1", "ServiceAccount", "default", namespace=name),
                   lambda sa: sa is not None, what=f"the default ServiceAccount of {name}", timeout=30)
        return name

    def controller(self, namespace: str, name: str, *extra: str) -> ControllerProcess:
        """Start a controller of ``namespace`` whose alerts go to the receiver (``extra`` flags last, so
        they win)."""
        process = ControllerProcess(self.state, namespace, self.logs, name=name,
                                    extra=("--slack-url", self.ledger.receiver.url(f"/{namespace}"), *extra))
        self.controllers.append(process)
        process.start()
        return process

    def canary(self, namespace: str, canary: Obj, *, image: str = "web:1") -> str:
        """Create the target and its Canary, wait until initialised; returns the initial revision."""
        name = canary["metadata"]["name"]
        self.kube.create(make_deployment(name, namespace, replicas=1, image=image, annotations={ERROR_RATE: "0"}))
        self.kube.create(canary)
        done = wait_for(lambda: status_of(self.kube, namespace, name), lambda s: s.get("phase") == "Initialized",
                        what=f"Canary {namespace}/{name} to initialise", timeout=60)
        revision = str(done.get("lastAppliedSpec", ""))
        self.ledger.expect(namespace, name, revision, INITIALISED)
        return revision

    def signal(self, component: str, sig: signal.Signals) -> procs.ProcessRecord:
        """Send ``sig`` to a process of the stack (its whole group); returns its record."""
        record = self.state.process(component)
        if record is None or not procs.is_alive(record):
            raise LocalStackError(f"{component} does not run")
        os.killpg(record.pid, sig)
        return record

    def crash(self, component: str) -> None:
        """SIGKILL a process of the stack and wait until it is gone (our child: reaped)."""
        record = self.signal(component, signal.SIGKILL)
        wait_until(lambda: procs.is_alive(record), lambda alive: not alive, what=f"{component} to die", timeout=10,
                   interval=0.05)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(record.pid, os.WNOHANG)

    def resume(self) -> list[str]:
        """Start what of the stack is not running, as ``canary local up`` does; returns what was restarted."""
        before = {p.name: p.pid for p in self.state.processes}
        after = stack.up(self.options)
        return [p.name for p in after.processes if before.get(p.name) != p.pid]

    def stop_controllers(self) -> None:
        """SIGTERM every controller still running."""
        for process in self.controllers:
            process.stop()


class Silent:
    """A socket that takes connections and never answers: a hung Prometheus, webhook or chat service."""

    def __init__(self) -> None:
        self._server = socket.create_server(("127.0.0.1", 0))
        self._server.settimeout(0.2)
        self._held: list[socket.socket] = []
        self._paths: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, name="silent", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        """Its address as a URL."""
        return f"http://127.0.0.1:{self._server.getsockname()[1]}"

    @property
    def paths(self) -> list[str]:
        """The path of each request received so far, in order."""
        return list(self._paths)

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                connection, _ = self._server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self._held.append(connection)
            connection.settimeout(1)
            with contextlib.suppress(OSError):  # the request line comes at once, or never
                line = connection.recv(4096).split(b"\r\n", 1)[0].split()
                self._paths.append(line[1].decode(errors="replace") if len(line) > 1 else "")

    def close(self) -> None:
        """Drop every connection and stop listening."""
        self._stop.set()
        self._thread.join()
        for connection in self._held:
            connection.close()
        self._server.close()


@contextlib.contextmanager
def silent() -> Iterator[Silent]:
    """A ``Silent`` socket for the duration of the block."""
    hung = Silent()
    try:
        yield hung
    finally:
        hung.close()
