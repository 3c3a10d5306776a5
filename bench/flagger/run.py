"""One size of the side-by-side benchmark, start to end, on a local stack of its own.

``__main__`` calls ``measure`` for each N. It brings a stack up with an audit log (``canary local up
--audit-log``) and enough kwok nodes, installs Flagger's CRDs and ours, starts both controllers, creates
N canaries for each, waits until every one is Initialized and the bootstrap writes are over, measures
an idle window, then releases every target at once and measures until every canary has ended,
each controller's window closing when its last canary ends. The stack is taken down afterwards.
"""

from __future__ import annotations

import datetime as dt
import math
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from bench.flagger import audit, binary, lag, phases, procstat
from bench.flagger.controllers import FlaggerProcess, OurProcess
from bench.flagger.fleet import INTERVAL_SECONDS, Fleet, flagger_fleet, our_fleet
from bench.flagger.report import Measured, SizeResult
from canary.defaults import SHARD_LABEL
from canary.errors import LocalStackError, WaitTimeout
from canary.kube.client import Kube, controller_agent
from canary.local import stack
from canary.local.install import CANARY_CRDS, install_crds
from canary.local.kwok import node
from canary.waiting import wait_until
from tests.e2e.canaries import release
from tests.e2e.controllers import metric_total

PODS_PER_NODE = int(node("x")["status"]["allocatable"]["pods"])
ENDED = frozenset({"Succeeded", "Failed"})
NEW_IMAGE = "ghcr.io/stefanprodan/podinfo:6.7.1"
SHARDED_IMAGE = "ghcr.io/stefanprodan/podinfo:6.7.2"
"""The sharded run's release: a revision the canaries have not seen."""


@dataclass(frozen=True)
class Settings:
    """How long each stage lasts, and where the run keeps its files."""

    folder: Path
    idle_seconds: float = 60
    settle_seconds: float = 2 * INTERVAL_SECONDS
    shards: int = 0
    """After the side-by-side release, run ours again as this many shards (0 or 1: not at all)."""


def nodes_for(size: int) -> int:
    """kwok nodes for ``size`` canaries per controller: at most 4 pods each at once (primary and target
    of two controllers during a release), with a quarter to spare."""
    return max(2, math.ceil(4 * size * 1.25 / PODS_PER_NODE))


def _canary(*args: str) -> None:
    done = subprocess.run([sys.executable, "-m", "canary", *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise LocalStackError(f"`canary {' '.join(args)}` failed:\n{done.stderr[-3000:]}")


def _stack_up(folder: Path, *, nodes: int, audit_log: Path) -> stack.StackState:
    state_dir = folder / "stack"
    # No traffic simulator: the canaries' metric reads Prometheus's own counters, and at N=1000 the simulator
    # following 1000 canaries would take a core the controllers and the API server need.
    _canary("local", "up", "--state-dir", str(state_dir), "--nodes", str(nodes), "--audit-log", str(audit_log),
            "--no-simulator")
    state = stack.load_state(state_dir)
    if state is None:
        raise LocalStackError(f"`canary local up` left no state in {state_dir}")
    return state


def _install_flagger_crds(kube: Kube, folder: Path) -> None:
    crds = folder / "flagger-crds"
    crds.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(binary.crds_file(), crds / "crd.yaml")
    install_crds(kube, crds, timeout=60)


class _Clock:
    """Samples of a process, our /metrics and the audit log's size at a moment."""

    def __init__(self, pid: int, metrics: Callable[[], str] | None = None) -> None:
        self.pid, self.metrics = pid, metrics

    def read(self) -> tuple[procstat.Sample, lag.Buckets]:
        buckets = lag.buckets(self.metrics(), lag.TICK_LAG) if self.metrics is not None else {}
        return procstat.sample(self.pid), buckets


def _populate(kube: Kube, fleets: list[Fleet]) -> None:
    """Every fleet's Deployments and Canaries, interleaved so neither controller gets its canaries first."""
    for fleet in fleets:
        fleet.prepare(kube)
    pairs = [(fleet, name) for index in range(fleets[0].size) for fleet in fleets
             for name in [fleet.names[index]]]
    with ThreadPoolExecutor(max_workers=8, thread_name_prefix="create") as pool:
        list(pool.map(lambda pair: pair[0].add(kube, pair[1]), pairs))


def _wait_all(logs: Mapping[str, phases.PhaseLog], size: int, wanted: frozenset[str], *, what: str,
              timeout: float) -> None:
    def reached() -> dict[str, int]:
        return {name: sum(1 for phase in log.phases().values() if phase in wanted) for name, log in logs.items()}

    wait_until(reached, lambda counts: all(count >= size for count in counts.values()),
               what=f"{size} canaries of each controller to be {what}", timeout=timeout, interval=1)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def measure(size: int, settings: Settings, *, commit: str = "", progress: Callable[[str], None] = print) -> SizeResult:
    """Run both controllers with ``size`` canaries each and return their figures."""
    began, started = time.monotonic(), _now()
    folder = settings.folder / f"n{size}"
    folder.mkdir(parents=True, exist_ok=True)
    audit_log = folder / "audit.log"
    nodes = nodes_for(size)
    flagger_bin = binary.ensure_built()
    state = _stack_up(folder, nodes=nodes, audit_log=audit_log)
    progress(f"[N={size}] stack up with {nodes} nodes in {time.monotonic() - began:.0f} s ({folder})")
    kube = Kube.from_kubeconfig(Path(state.kubeconfig))
    flagger = FlaggerProcess(flagger_bin, state, "bench-flagger", folder)
    ours = OurProcess(state, "bench-ours", folder)
    fleets = {"flagger": flagger_fleet(size, state.prometheus_url), "ours": our_fleet(size, state.prometheus_url)}
    logs = {name: phases.PhaseLog(kube, fleet.api_version, fleet.namespace) for name, fleet in fleets.items()}
    try:
        install_crds(kube, CANARY_CRDS, timeout=60)
        _install_flagger_crds(kube, folder)
        for log in logs.values():
            log.start()
        for fleet in fleets.values():
            fleet.prepare(kube)
        flagger.start()
        ours.start()
        clocks = {"flagger": _Clock(flagger.pid), "ours": _Clock(ours.pid, ours.metrics)}
        _populate(kube, list(fleets.values()))
        progress(f"[N={size}] {size} canaries each created in {time.monotonic() - began:.0f} s")
        _wait_all(logs, size, frozenset({"Initialized"}), what="Initialized", timeout=300 + 2 * size)
        progress(f"[N={size}] all Initialized at {time.monotonic() - began:.0f} s; settling "
                 f"{settings.settle_seconds:.0f} s")
        time.sleep(settings.settle_seconds)  # a measuring pause, not a wait on a condition: bootstrap writes end

        idle = _window(audit_log, clocks, lambda: time.sleep(settings.idle_seconds))
        progress(f"[N={size}] idle window of {settings.idle_seconds:.0f} s measured")
        released, ends = _release_all(kube, fleets, logs, clocks, audit_log=audit_log, timeout=300 + 2 * size)
        progress(f"[N={size}] released and ended at {time.monotonic() - began:.0f} s")
        time.sleep(2)  # the audit events of requests still in flight at a window's end
        whole = audit.count(audit.read_from(audit_log, 0), audit.Window(started, _now()))
        unseen = [name for name in fleets if whole.total(name) == 0]
        if unseen:
            progress(f"[N={size}] no request of {', '.join(unseen)} in the audit log by User-Agent "
                     f"({', '.join(audit.CLIENTS[n] + '...' for n in unseen)}): not counted")
        measured = {name: _figures(name, fleet, logs[name], audit_log=audit_log, idle=idle, released=released,
                                   end=ends[name], identified=name not in unseen) for name, fleet in fleets.items()}
        other = audit.count(audit.read_from(audit_log, idle.offset), idle.window).other
        shards = {}
        if settings.shards > 1:
            ours.stop()
            shards = _sharded(kube, state, fleets["ours"], logs["ours"], count=settings.shards, folder=folder,
                              audit_log=audit_log, settings=settings)
            progress(f"[N={size}] {settings.shards} shards measured at {time.monotonic() - began:.0f} s")
        return SizeResult(size=size, nodes=nodes, measured=measured, minutes=(time.monotonic() - began) / 60,
                          other_clients=dict(other.most_common(6)), commit=commit, shards=shards)
    finally:
        for log in logs.values():
            log.stop()
        ours.stop()
        flagger.stop()
        kube.close()
        stack.down(folder / "stack", purge=True)


def _figures(name: str, fleet: Fleet, log: phases.PhaseLog, *, audit_log: Path, idle: _Idle,
             released: _Released, end: _Ended, identified: bool,
             clients: Mapping[str, str] = audit.CLIENTS) -> Measured:
    """One controller's figures from the windows' samples, the audit log and the phases its canaries went
    through; without requests ``identified`` by its User-Agent (``clients``) in the log, none are counted."""
    counted_idle = audit.count(audit.read_from(audit_log, idle.offset), idle.window, clients)
    counted = audit.count(audit.read_from(audit_log, released.offset), audit.Window(released.wall, end.wall),
                          clients)
    transitions = log.transitions()
    reactions = phases.delays(released.moments[name], transitions, frozenset({"Progressing"}))
    endings = phases.delays(released.moments[name], transitions, ENDED)
    final = log.phases()
    idle_lag = lag.difference(idle.after[name][1], idle.before[name][1])
    release_lag = lag.difference(end.buckets, released.before[name][1])
    return Measured(
        size=fleet.size, interval_seconds=INTERVAL_SECONDS,
        idle_seconds=idle.window.seconds, idle_requests=counted_idle.total(name) if identified else None,
        idle_cpu_seconds=idle.after[name][0].cpu_seconds - idle.before[name][0].cpu_seconds,
        release_seconds=end.monotonic - released.monotonic,
        release_requests=counted.total(name) if identified else None,
        release_cpu_seconds=end.sample.cpu_seconds - released.before[name][0].cpu_seconds,
        rss_idle_bytes=idle.after[name][0].rss_bytes, rss_peak_bytes=end.sample.peak_rss_bytes,
        reactions=[d for d in reactions.values() if d is not None],
        release_times=[d for d in endings.values() if d is not None],
        failed=sum(1 for n in fleet.names if final.get(n) == "Failed"),
        unfinished=sum(1 for d in endings.values() if d is None),
        lag_p50=lag.quantile(0.5, idle_lag), lag_p99=lag.quantile(0.99, idle_lag),
        release_lag_p50=lag.quantile(0.5, release_lag), release_lag_p99=lag.quantile(0.99, release_lag),
        idle_kinds=counted_idle.kinds(name), release_kinds=counted.kinds(name))


@dataclass(frozen=True)
class _Opened:
    """A window's start: the log's size, both clocks' samples, and the moment."""

    offset: int
    wall: dt.datetime
    monotonic: float
    before: Mapping[str, tuple[procstat.Sample, lag.Buckets]]


@dataclass(frozen=True)
class _Idle:
    offset: int
    window: audit.Window
    before: Mapping[str, tuple[procstat.Sample, lag.Buckets]]
    after: Mapping[str, tuple[procstat.Sample, lag.Buckets]]


def _open(audit_log: Path, clocks: Mapping[str, _Clock]) -> _Opened:
    return _Opened(offset=audit.size(audit_log), wall=_now(), monotonic=time.monotonic(),
                   before={name: clock.read() for name, clock in clocks.items()})


def _window(audit_log: Path, clocks: Mapping[str, _Clock], during: Callable[[], None]) -> _Idle:
    opened = _open(audit_log, clocks)
    during()
    end = _now()
    after = {name: clock.read() for name, clock in clocks.items()}
    return _Idle(offset=opened.offset, window=audit.Window(opened.wall, end), before=opened.before, after=after)


@dataclass(frozen=True)
class _Released(_Opened):
    moments: Mapping[str, Mapping[str, float]]
    """Controller -> canary -> time.monotonic() when its target was changed."""


@dataclass(frozen=True)
class _Ended:
    wall: dt.datetime
    monotonic: float
    sample: procstat.Sample
    buckets: lag.Buckets


def _release_all(kube: Kube, fleets: Mapping[str, Fleet], logs: Mapping[str, phases.PhaseLog],
                 clocks: Mapping[str, _Clock], *, audit_log: Path, timeout: float,
                 image: str = NEW_IMAGE) -> tuple[_Released, dict[str, _Ended]]:
    """Change every target at once (interleaved), then wait until each controller's canaries have all ended;
    a controller's window closes, and its process is sampled, when its last canary ends."""
    opened = _open(audit_log, clocks)
    moments: dict[str, dict[str, float]] = {name: {} for name in fleets}
    longest = max(fleet.size for fleet in fleets.values())
    pairs = [(name, fleet, fleet.names[index]) for index in range(longest)
             for name, fleet in fleets.items() if index < fleet.size]

    def one(pair: tuple[str, Fleet, str]) -> None:
        name, fleet, canary = pair
        moments[name][canary] = time.monotonic()
        release(kube, fleet.namespace, image, name=canary)

    with ThreadPoolExecutor(max_workers=8, thread_name_prefix="release") as pool:
        list(pool.map(one, pairs))
    released = _Released(offset=opened.offset, wall=opened.wall, monotonic=opened.monotonic, before=opened.before,
                         moments=moments)
    ends: dict[str, _Ended] = {}

    def check() -> dict[str, _Ended]:
        for name, log in logs.items():
            if name in ends:
                continue
            endings = phases.delays(moments[name], log.transitions(), ENDED)
            if all(delay is not None for delay in endings.values()):
                ends[name] = _Ended(_now(), time.monotonic(), *clocks[name].read())
        return ends

    try:
        wait_until(check, lambda done: len(done) == len(fleets), what="every release to end", timeout=timeout,
                   interval=0.5)
    except WaitTimeout:
        for name in fleets:  # the figures of a release that did not end say so (unfinished), not nothing
            ends.setdefault(name, _Ended(_now(), time.monotonic(), *clocks[name].read()))
    return released, ends


def _sharded(kube: Kube, local_stack: stack.StackState, fleet: Fleet, log: phases.PhaseLog, *, count: int,
             folder: Path, audit_log: Path, settings: Settings) -> dict[str, Measured]:
    """Our fleet again, split across ``count`` controllers (``--shard s0``, ``s1``...): label every ``count``-th
    canary for each shard, start the shards (the single controller is stopped), wait until each holds its
    share, then measure an idle window and a release as for one process, each shard on its own."""
    names = [f"s{index}" for index in range(count)]
    shares = {name: fleet.share(index, count) for index, name in enumerate(names)}
    labelled = [(name, canary) for name, share in shares.items() for canary in share.names]

    def label(pair: tuple[str, str]) -> None:
        shard, canary = pair
        kube.merge_patch(fleet.api_version, "Canary", canary, {"metadata": {"labels": {SHARD_LABEL: shard}}},
                         namespace=fleet.namespace)

    with ThreadPoolExecutor(max_workers=8, thread_name_prefix="label") as pool:
        list(pool.map(label, labelled))
    processes = {name: OurProcess(local_stack, fleet.namespace, folder, shard=name) for name in names}
    try:
        for process in processes.values():
            process.start()
        wait_until(lambda: {name: metric_total(process, "canary_total", namespace=fleet.namespace)
                            for name, process in processes.items()},
                   lambda held: all(held[name] == shares[name].size for name in names),
                   what=f"each of {count} shards to hold its canaries", timeout=120, interval=1)
        time.sleep(settings.settle_seconds)  # a measuring pause, not a wait on a condition: first ticks end
        clocks = {name: _Clock(process.pid, process.metrics) for name, process in processes.items()}
        idle = _window(audit_log, clocks, lambda: time.sleep(settings.idle_seconds))
        released, ends = _release_all(kube, shares, dict.fromkeys(names, log), clocks, audit_log=audit_log,
                                      timeout=300 + 2 * fleet.size, image=SHARDED_IMAGE)
        time.sleep(2)  # the audit events of requests still in flight at a window's end
        clients = {name: controller_agent(name) for name in names}
        return {name: _figures(name, shares[name], log, audit_log=audit_log, idle=idle, released=released,
                               end=ends[name], identified=True, clients=clients) for name in names}
    finally:
        for process in processes.values():
            process.stop()
