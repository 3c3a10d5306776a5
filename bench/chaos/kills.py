"""Scenario 1: the controller killed (SIGKILL) at random points of good and bad releases.

One Canary per router (kubernetes: blue/green iterations; gatewayapi: weights), each with its own
controller, released again and again, the two routers side by side. First one good and one bad
release without a kill measure how long each takes; then every run releases (good and bad in turn),
kills the controller at a random moment within that duration (seeded), starts a new one and waits
for the end. A run passes when it ends as its kind says (Succeeded with the primary on the new image,
or Failed with the primary on the last good one), every request goes to the primary and the target
is at zero; the alerts of each release are counted at the end against its start and its end.
"""

from __future__ import annotations

import collections
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from bench.chaos.lab import Lab, Release, begin, in_namespaces, judged, problems, settle, status_of, wait_end
from bench.chaos.report import Row, spread
from canary.errors import CanaryError
from canary.kube.client import Kube
from tests.e2e.controllers import ControllerProcess

ROUTERS = ("kubernetes", "gatewayapi")
_print_lock = threading.Lock()


@dataclass
class Run:
    """One release and what happened to it."""

    number: int
    router: str
    bad: bool
    fraction: float
    """Where in the release's expected duration the kill falls (0 to 1), drawn from the seeded RNG."""
    delay: float = 0.0
    killed_in: str = ""
    restart: float = 0.0
    duration: float = 0.0
    problems: list[str] = field(default_factory=list)

    @property
    def kind(self) -> str:
        """good or bad."""
        return "bad" if self.bad else "good"

    def line(self) -> str:
        """One line for the log of the bench."""
        outcome = "ok" if not self.problems else "WRONG: " + "; ".join(self.problems)
        return (f"run {self.number:2d} {self.router:10s} {self.kind:4s} killed after {self.delay:4.1f}s "
                f"({self.killed_in}), new controller ready in {self.restart:.1f}s, ended after "
                f"{self.duration:.1f}s: {outcome}")


class Track:
    """One router's Canary and its controller, released again and again."""

    def __init__(self, lab: Lab, router: str) -> None:
        self.lab, self.router = lab, router
        self.kube = Kube.from_kubeconfig(Path(lab.state.kubeconfig))
        self.namespace = lab.namespace(f"chaos-kill-{router}")
        self.controllers = 0
        self.controller = self._start_controller()
        lab.canary(self.namespace, judged("web", self.namespace, router))
        self.version, self.good_image = 1, "web:1"

    def _start_controller(self) -> ControllerProcess:
        self.controllers += 1
        return self.lab.controller(self.namespace, f"kill-{self.router}-{self.controllers}")

    def release(self, run: Run, *, kill_after: float | None) -> Run:
        """Release (good or bad as ``run`` says), kill the controller ``kill_after`` seconds in, wait for the end."""
        settle(self.kube, self.namespace)
        self.version += 1
        shipped = begin(self.kube, self.namespace, f"web:{self.version}", bad=run.bad,
                        previous_good_image=self.good_image)
        try:
            if kill_after is not None:
                self._kill(shipped, run, kill_after)
            status = wait_end(self.kube, shipped)
        except CanaryError as exc:  # a wait that timed out: the run is wrong, the next one goes on
            run.problems.append(str(exc))
            return run
        run.duration = time.monotonic() - shipped.started
        run.problems += problems(self.kube, shipped, status, router=self.router)
        if status.get("phase") == "Succeeded":
            self.good_image = shipped.image
        self.lab.ledger.expect_release(shipped, status)
        return run

    def _kill(self, shipped: Release, run: Run, kill_after: float) -> None:
        time.sleep(max(0.0, kill_after - (time.monotonic() - shipped.started)))
        self.controller.kill()
        run.delay = time.monotonic() - shipped.started
        seen = status_of(self.kube, self.namespace, "web")
        progress = f"iteration {seen.get('iterations', 0)}" if self.router == "kubernetes" \
            else f"weight {seen.get('canaryWeight', 0)}"
        fresh = seen.get("lastAppliedSpec") != shipped.previous_revision
        run.killed_in = f"{seen.get('phase')}, {progress}" if fresh else "before the release was seen"
        began = time.monotonic()
        self.controller = self._start_controller()
        run.restart = time.monotonic() - began


def _say(line: str) -> None:
    with _print_lock:
        print(line, flush=True)


def _baseline(track: Track) -> dict[bool, float]:
    """How long a good and a bad release take on this router without a kill."""
    durations = {}
    for bad in (False, True):
        run = track.release(Run(number=0, router=track.router, bad=bad, fraction=0.0), kill_after=None)
        _say(f"baseline {track.router:10s} {run.kind:4s} without a kill: ended after {run.duration:.1f}s"
             + (f": WRONG: {'; '.join(run.problems)}" if run.problems else ""))
        durations[bad] = run.duration
    return durations


def _runs(track: Track, runs: list[Run]) -> tuple[dict[bool, float], list[Run]]:
    durations = _baseline(track)
    for run in runs:
        track.release(run, kill_after=run.fraction * durations[run.bad])
        _say(run.line())
    return durations, runs


def kill_runs(lab: Lab, *, seed: int, runs: int) -> list[Row]:
    """``runs`` kills, alternating good and bad releases on each router, both routers at once."""
    rng = random.Random(seed)  # noqa: S311 - reproducible kill points, not secrets
    planned = [Run(number=n + 1, router=ROUTERS[n % len(ROUTERS)], bad=(n // len(ROUTERS)) % 2 == 1,
                   fraction=rng.random()) for n in range(runs)]
    tracks = [Track(lab, router) for router in ROUTERS]
    with ThreadPoolExecutor(len(tracks)) as pool:
        results = list(pool.map(lambda t: _runs(t, [r for r in planned if r.router == t.router]), tracks))
    done = [run for _, track_runs in results for run in track_runs]
    done.sort(key=lambda run: run.number)
    passed = sum(1 for run in done if not run.problems)
    scope = in_namespaces(*(t.namespace for t in tracks))
    lost, duplicates, unexpected = lab.ledger.settle(scope, timeout=30)
    for track in tracks:  # after the last alerts are delivered: a controller stopped earlier leaves them pending
        track.controller.stop()
    for key in lab.ledger.missing(scope):
        lab.figure(f"kill -9: LOST {key}")
    for router, (durations, _) in zip(ROUTERS, results, strict=True):
        lab.figure(f"kill -9, {router}: a release without a kill takes {durations[False]:.1f}s (good) and "
                   f"{durations[True]:.1f}s (bad)")
    lab.figure(f"kill -9: a new controller is ready in {spread([r.restart for r in done])}; releases with a kill "
               f"end in {spread([r.duration for r in done])}")
    places = collections.Counter(run.killed_in.split(",")[0] for run in done)
    notes = [f"seed {seed}", ", ".join(f"{sum(r.router == x for r in done)} on {x}" for x in ROUTERS),
             "killed in " + ", ".join(f"{phase} {count}" for phase, count in places.most_common()),
             f"kills {min(r.delay for r in done):.1f}-{max(r.delay for r in done):.1f}s into the release"]
    expected, received = lab.ledger.counts(scope)
    notes.append(f"{expected} alerts expected, {received} received")
    if unexpected:
        notes.append(f"{unexpected} other alerts")
    return [Row(scenario="kill -9 the controller mid-release, start a new one", runs=len(done),
                expected="good: Succeeded, primary on the new image; bad: Failed, primary on the old one; "
                         "all traffic on the primary, target at 0",
                got=f"{passed}/{len(done)} same outcome", passed=passed == len(done) and lost == 0,
                lost=lost, duplicates=duplicates, notes=notes)]
