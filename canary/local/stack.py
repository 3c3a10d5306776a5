"""Bring a local stack up, take it down, and say what runs: the code behind ``canary local``.

Up starts, in order, etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok
(with fake nodes), plus Prometheus and the traffic simulator (``canary.local.simulator``, which
Prometheus scrapes as job ``simulator``), all on free loopback ports, and returns once the API
server is ready, every node is Ready, Prometheus answers and the simulator serves. Everything a
later ``down`` or ``status`` needs (pids, ports, paths) is written to ``state.json`` in the state
folder as it starts, so a failed or interrupted ``up`` can still be cleaned away. The pytest
harness calls the same code.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import ssl
import sys
import time
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel

from canary.errors import LocalStackError, PermanentError
from canary.kube.client import Kube
from canary.kube.conditions import is_true
from canary.local import apiserver, binaries, kwok, pki, procs, prometheus
from canary.local.ports import free_ports
from canary.local.procs import ProcessRecord
from canary.locks import exclusive
from canary.waiting import wait_until

Progress = Callable[[str], None]
T = TypeVar("T")
STATE_FILE = "state.json"
_START_TIMEOUT = 90.0


DEFAULT_NODES = 2


@dataclass(frozen=True)
class StackOptions:
    """How to bring a stack up.

    ``external_kubeconfig`` uses an existing cluster (kind, say) instead of starting a control
    plane; Prometheus still runs locally. ``nodes`` None means the stack's own count (``DEFAULT_NODES``
    for a new one); ``audit_log`` and ``apiserver_args`` are kept by the stack, so an ``up`` without
    them resumes a stack with them as it was.
    """

    state_dir: Path
    nodes: int | None = None
    external_kubeconfig: Path | None = None
    audit_log: Path | None = None
    """kube-apiserver writes an audit log (Metadata level, JSON lines) to this file."""
    apiserver_args: Mapping[str, str] = field(default_factory=dict)
    """Further kube-apiserver flags by name (see ``canary.local.apiserver.parse_extra_args``)."""
    simulator: bool = True
    """Run the traffic simulator; a benchmark whose metrics do not need its traffic leaves it out (at a
    thousand canaries it would take a core of its own)."""

    def __post_init__(self) -> None:
        if self.nodes is not None and self.nodes < 1:
            raise PermanentError(f"--nodes must be at least 1, got {self.nodes}")
        if self.external_kubeconfig is not None:
            given = [name for name, value in (("--nodes", self.nodes), ("--audit-log", self.audit_log),
                                              ("--apiserver-arg", self.apiserver_args)) if value]
            if given:
                raise PermanentError(f"{', '.join(given)} configure the stack's own control plane; with "
                                     f"--kubeconfig {self.external_kubeconfig} none is started")
        apiserver.check_extra(self.apiserver_args, audit=self.audit_log is not None)


class RecordedOptions(BaseModel):
    """The options a stack was started with, so that a later ``up`` keeps them or refuses to change them."""

    nodes: int | None = None
    """None for a stack started before options were recorded."""
    audit_log: str | None = None
    apiserver_args: dict[str, str] = {}
    simulator: bool = True


class StackState(BaseModel):
    """The contents of state.json: what runs, where, and which files belong to it."""

    state_dir: str
    kubeconfig: str
    external_cluster: bool
    prometheus_url: str
    prometheus_targets: str
    versions: dict[str, str]
    started_at: dt.datetime
    ready: bool = False
    processes: list[ProcessRecord] = []
    options: RecordedOptions = RecordedOptions()

    def process(self, name: str) -> ProcessRecord | None:
        """The record of the process called ``name``, if it was started."""
        return next((p for p in self.processes if p.name == name), None)

    def add_target(self, *, job: str, address: str, labels: dict[str, str] | None = None) -> Path:
        """Have this stack's Prometheus scrape ``address`` as job ``job``."""
        return prometheus.add_target(Path(self.prometheus_targets), job=job, address=address, labels=labels)

    def remove_target(self, *, job: str) -> None:
        """Stop scraping what ``add_target`` registered as ``job``."""
        prometheus.remove_target(Path(self.prometheus_targets), job=job)

    def exports(self) -> str:
        """Shell lines that point kubectl and the tools at this stack."""
        return f"export KUBECONFIG={self.kubeconfig}\nexport PROMETHEUS_URL={self.prometheus_url}"


def default_state_dir() -> Path:
    """``.cache/local`` of the project (or of ``CANARY_CACHE_DIR``)."""
    return binaries.cache_root() / "local"


def load_state(state_dir: Path) -> StackState | None:
    """The recorded state of the stack in ``state_dir``, or None when none was started there."""
    path = state_dir / STATE_FILE
    if not path.is_file():
        return None
    return StackState.model_validate_json(path.read_text())


def _save(state: StackState) -> None:
    path = Path(state.state_dir) / STATE_FILE
    partial = path.with_suffix(".tmp")
    partial.write_text(state.model_dump_json(indent=2))
    partial.rename(path)


def up(options: StackOptions, *, progress: Progress = lambda _: None) -> StackState:
    """Start a stack in ``options.state_dir``, or return the one already running there.

    A stack that was complete once keeps its data, ports and certificates: whatever of it is not
    running (stopped by ``down``, or dead) is started again as it was. Only a start that never
    completed is cleaned up and begun afresh.
    """
    state_dir = options.state_dir.resolve()
    with exclusive(state_dir / ".lock"):
        existing = load_state(state_dir)
        if existing is not None:
            if existing.ready:
                _refuse_other_options(existing, options)
            if existing.ready and all(procs.is_alive(p) for p in existing.processes):
                progress(f"a stack already runs in {state_dir}")
                _widen_service_range(existing, progress=progress)
                return existing
            if existing.ready:
                resumed = _resume(existing, progress=progress)
                _widen_service_range(resumed, progress=progress)
                return resumed
            progress(f"cleaning up an earlier stack in {state_dir} that is not complete")
            _teardown(existing, progress=progress)
        bin_dir = None if options.external_kubeconfig else binaries.ensure_built()
        return _Starter(options, state_dir, bin_dir, progress).start()


def _refuse_other_options(state: StackState, options: StackOptions) -> None:
    """Raise when ``options`` ask for something the recorded stack was not started with: the stack
    is resumed as it was, so a different option would be silently ignored."""
    recorded = state.options
    wanted_audit = str(options.audit_log.resolve()) if options.audit_log is not None else None
    differences = []
    if options.nodes is not None and recorded.nodes is not None and options.nodes != recorded.nodes:
        differences.append(f"--nodes {recorded.nodes}")
    if wanted_audit is not None and wanted_audit != recorded.audit_log:
        differences.append(f"--audit-log {recorded.audit_log}" if recorded.audit_log else "no --audit-log")
    if options.apiserver_args and dict(options.apiserver_args) != recorded.apiserver_args:
        given = " ".join(f"--apiserver-arg {n}={v}" for n, v in recorded.apiserver_args.items())
        differences.append(given or "no --apiserver-arg")
    if not options.simulator and recorded.simulator:
        differences.append("the traffic simulator")
    if differences:
        raise PermanentError(
            f"the stack in {state.state_dir} was started with {', '.join(differences)}, and `up` resumes it as "
            f"it was; run `canary local down --purge --state-dir {state.state_dir}` first to start it anew with "
            "other options, or use another --state-dir")


def _widen_service_range(state: StackState, *, progress: Progress) -> None:
    """A stack started before the Service range became ``apiserver.SERVICE_CIDR`` gets it (its data stays)."""
    record = state.process("kube-apiserver")
    started_with = apiserver.service_cidr_of(record.argv) if record is not None else None
    if started_with is None:
        return
    kube = Kube.from_kubeconfig(Path(state.kubeconfig))
    try:
        if apiserver.widen_service_range(kube, started_with=started_with):
            progress(f"the Service range of this stack ({started_with}) now spans {apiserver.SERVICE_CIDR} "
                     f"(ServiceCIDR {apiserver.SERVICE_CIDR_OBJECT})")
    finally:
        kube.close()


def down(state_dir: Path, *, purge: bool = False, progress: Progress = lambda _: None) -> StackState | None:
    """Stop what the stack in ``state_dir`` started; with ``purge``, also remove its files (logs are kept),
    else the next ``up`` starts it again with its data."""
    state_dir = state_dir.resolve()
    with exclusive(state_dir / ".lock"):
        state = load_state(state_dir)
        if state is None:
            progress(f"no stack in {state_dir}")
            return None
        if purge:
            _teardown(state, progress=progress)
        else:
            _stop_all(state, progress=progress)
        return state


def _stop_all(state: StackState, *, progress: Progress) -> None:
    for record in reversed(state.processes):
        if procs.is_alive(record):
            procs.stop(record)
            progress(f"stopped {record.name} (pid {record.pid})")


def _resume(state: StackState, *, progress: Progress) -> StackState:
    """Start again, in their order and with the same arguments, the processes of ``state`` that are not running."""
    began = time.monotonic()
    restarted = []
    for index, record in enumerate(state.processes):
        if procs.is_alive(record):
            continue
        fresh = procs.spawn(record.name, record.argv, log=Path(record.log), address=record.address)
        state.processes[index] = fresh
        _save(state)
        restarted.append(fresh.name)
        elapsed = time.monotonic() - began
        progress(f"[{elapsed:5.1f}s] restarted {fresh.name} (pid {fresh.pid}) {fresh.address}".rstrip())
        _wait_healthy(state, fresh)
    if "kwok" in restarted or "kube-apiserver" in restarted:
        _wait_nodes(state)
    progress(f"[{time.monotonic() - began:5.1f}s] the stack in {state.state_dir} runs again with its data")
    return state


def _wait_healthy(state: StackState, record: ProcessRecord) -> None:
    """Wait until the restarted ``record`` serves (processes without an endpoint: until they are up)."""
    def alive_then(probe: Callable[[], T]) -> T:
        if not procs.is_alive(record):
            raise LocalStackError(f"{record.name} exited when restarted; the end of {record.log}:\n"
                                  f"{procs.log_tail(record)}")
        return probe()

    what = f"the restarted {record.name} to serve"
    if record.name == "etcd":
        wait_until(lambda: alive_then(lambda: _http_json(f"{record.address}/health")),
                   lambda body: body.get("health") == "true", what=what, timeout=_START_TIMEOUT)
    elif record.name == "kube-apiserver":
        context = _tls_context(pki.existing(Path(state.state_dir) / "pki"))
        wait_until(lambda: alive_then(lambda: _http_status(f"{record.address}/readyz", context)),
                   lambda code: code == 200, what=what, timeout=_START_TIMEOUT)
    elif record.name == "prometheus":
        wait_until(lambda: alive_then(lambda: _http_status(f"{record.address}/-/ready")),
                   lambda code: code == 200, what=what, timeout=_START_TIMEOUT)
    elif record.name == "simulator":
        wait_until(lambda: alive_then(lambda: _http_status(f"{record.address}/healthz")),
                   lambda code: code == 200, what=what, timeout=_START_TIMEOUT)
    else:
        alive_then(lambda: None)


def _wait_nodes(state: StackState) -> None:
    kube = Kube.from_kubeconfig(Path(state.kubeconfig))
    try:
        wait_until(lambda: [n for n in kube.list_objects("v1", "Node") if is_true(n, "Ready")], bool,
                   what="the kwok nodes to be Ready again", timeout=_START_TIMEOUT)
    finally:
        kube.close()


def _teardown(state: StackState, *, progress: Progress) -> None:
    _stop_all(state, progress=progress)
    state_dir = Path(state.state_dir)
    for entry in state_dir.iterdir():
        if entry.name in ("logs", ".lock"):
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()


class _Starter:
    """The steps of one ``up``; state.json is rewritten after every process it starts."""

    def __init__(self, options: StackOptions, state_dir: Path, bin_dir: Path | None, progress: Progress) -> None:
        self.options = options
        self.dir = state_dir
        self.bin = bin_dir
        self.progress = progress
        self.logs = state_dir / "logs"
        self.began = time.monotonic()
        etcd_port, peer_port, api_port, prom_port, simulator_port = free_ports(5)
        self.etcd_url = f"http://127.0.0.1:{etcd_port}"
        self.peer_url = f"http://127.0.0.1:{peer_port}"
        self.api_url = f"https://127.0.0.1:{api_port}"
        self.prom_address = f"127.0.0.1:{prom_port}"
        self.simulator_address = f"127.0.0.1:{simulator_port}"
        external = options.external_kubeconfig
        self.state = StackState(
            state_dir=str(state_dir),
            kubeconfig=str(external.resolve() if external else state_dir / "kubeconfig"),
            external_cluster=external is not None,
            prometheus_url=f"http://{self.prom_address}",
            prometheus_targets=str(state_dir / "prometheus" / "targets"),
            versions={} if external else binaries.pins(),
            started_at=dt.datetime.now(dt.UTC),
            options=RecordedOptions(
                nodes=None if external else options.nodes or DEFAULT_NODES,
                audit_log=str(options.audit_log.resolve()) if options.audit_log is not None else None,
                apiserver_args=dict(options.apiserver_args), simulator=options.simulator),
        )

    def _note(self, message: str) -> None:
        self.progress(f"[{time.monotonic() - self.began:5.1f}s] {message}")

    def _spawn(self, name: str, argv: list[str], *, address: str = "") -> ProcessRecord:
        record = procs.spawn(name, argv, log=self.logs / f"{name}.log", address=address)
        self.state.processes.append(record)
        _save(self.state)
        self._note(f"started {name} (pid {record.pid}) {address}".rstrip())
        return record

    def _bin(self, name: str) -> str:
        assert self.bin is not None  # noqa: S101 - only the control-plane steps call this
        return str(self.bin / name)

    def start(self) -> StackState:
        try:
            return self._start()
        except BaseException:
            self.progress("start failed; stopping what was started")
            _teardown(self.state, progress=self.progress)
            raise

    def _start(self) -> StackState:
        prometheus_binary = prometheus.executable()
        _save(self.state)
        if not self.state.external_cluster:
            self._control_plane()
        prom = self._prometheus(prometheus_binary)
        simulator = self._simulator() if self.options.simulator else None
        if not self.state.external_cluster:
            self._wait_nodes_ready()
        wait_until(lambda: self._alive_then(prom, lambda: _http_status(f"{self.state.prometheus_url}/-/ready")),
                   lambda code: code == 200, what="Prometheus to be ready", timeout=_START_TIMEOUT)
        self._note("Prometheus is ready")
        if simulator is not None:
            wait_until(lambda: self._alive_then(simulator, lambda: _http_status(f"{simulator.address}/healthz")),
                       lambda code: code == 200, what="the traffic simulator to serve", timeout=_START_TIMEOUT)
            self.state.add_target(job="simulator", address=self.simulator_address)
            self._note("the traffic simulator serves; Prometheus scrapes it")
        else:
            self._note("no traffic simulator (--no-simulator)")
        self.state.ready = True
        _save(self.state)
        return self.state

    def _control_plane(self) -> None:
        certs = pki.generate(self.dir / "pki")
        kubeconfig = Path(self.state.kubeconfig)
        pki.write_kubeconfig(kubeconfig, pki=certs, server=self.api_url)

        etcd = self._spawn("etcd", [
            self._bin("etcd"), "--name=local", f"--data-dir={self.dir / 'etcd'}",
            f"--listen-client-urls={self.etcd_url}", f"--advertise-client-urls={self.etcd_url}",
            f"--listen-peer-urls={self.peer_url}", f"--initial-advertise-peer-urls={self.peer_url}",
            f"--initial-cluster=local={self.peer_url}", "--unsafe-no-fsync=true", "--log-level=warn",
        ], address=self.etcd_url)
        wait_until(lambda: self._alive_then(etcd, lambda: _http_json(f"{self.etcd_url}/health")),
                   lambda body: body.get("health") == "true", what="etcd to be healthy", timeout=_START_TIMEOUT)
        self._note("etcd is healthy")

        server = self._spawn("kube-apiserver", self._apiserver_argv(certs), address=self.api_url)
        context = _tls_context(certs)
        wait_until(lambda: self._alive_then(server, lambda: _http_status(f"{self.api_url}/readyz", context)),
                   lambda code: code == 200, what="kube-apiserver to be ready", timeout=_START_TIMEOUT)
        self._note("kube-apiserver is ready")

        # Without their client rate limits (20 and 50 requests/s), as kwokctl runs them: a thousand canaries
        # make two thousand Deployments, which would otherwise take most of an hour to roll out.
        unlimited = ["--kube-api-qps=5000", "--kube-api-burst=10000"]
        self._spawn("kube-controller-manager", [
            self._bin("kube-controller-manager"), f"--kubeconfig={kubeconfig}",
            f"--root-ca-file={certs.ca_cert}", f"--service-account-private-key-file={certs.sa_key}",
            "--leader-elect=false", "--secure-port=0", "--profiling=false", *unlimited,
            "--concurrent-deployment-syncs=20", "--concurrent-replicaset-syncs=20",
        ])
        self._spawn("kube-scheduler", [
            self._bin("kube-scheduler"), f"--kubeconfig={kubeconfig}", "--leader-elect=false",
            "--secure-port=0", "--profiling=false", *unlimited,
        ])
        self._create_nodes()
        config = self.dir / "kwok.yaml"
        kwok.write_config(config)
        self._spawn("kwok", kwok.argv(binary=self._bin("kwok"), kubeconfig=kubeconfig, config=config))

    def _apiserver_argv(self, certs: pki.Pki) -> list[str]:
        audit_log = self.options.audit_log.resolve() if self.options.audit_log is not None else None
        policy = None
        if audit_log is not None:
            audit_log.parent.mkdir(parents=True, exist_ok=True)
            policy = apiserver.write_audit_policy(self.dir / "audit-policy.yaml")
        paths = apiserver.ApiServerPaths(
            binary=self._bin("kube-apiserver"), etcd_url=self.etcd_url, port=int(self.api_url.rsplit(":", 1)[1]),
            server_cert=certs.server_cert, server_key=certs.server_key, ca_cert=certs.ca_cert, sa_pub=certs.sa_pub,
            sa_key=certs.sa_key, cert_dir=self.dir / "pki")
        return apiserver.argv(paths, apiserver.ApiServerFlags(audit_log=audit_log, audit_policy=policy,
                                                              extra=self.options.apiserver_args))

    def _prometheus(self, binary: str) -> ProcessRecord:
        folder = self.dir / "prometheus"
        config = folder / "prometheus.yml"
        folder.mkdir(parents=True, exist_ok=True)
        prometheus.write_config(config, targets_dir=Path(self.state.prometheus_targets),
                                self_address=self.prom_address)
        return self._spawn("prometheus", prometheus.argv(binary=binary, config=config, data_dir=folder / "data",
                                                         address=self.prom_address),
                           address=self.state.prometheus_url)

    def _simulator(self) -> ProcessRecord:
        return self._spawn("simulator", [
            sys.executable, "-m", "canary.local.simulator", "--kubeconfig", self.state.kubeconfig,
            "--port", self.simulator_address.rsplit(":", 1)[1],
        ], address=f"http://{self.simulator_address}")

    @property
    def _nodes(self) -> int:
        return self.options.nodes or DEFAULT_NODES

    def _kube(self) -> Kube:
        return Kube.from_kubeconfig(Path(self.state.kubeconfig))

    def _create_nodes(self) -> None:
        kube = self._kube()
        try:
            for index in range(self._nodes):
                kube.apply(kwok.node(f"kwok-node-{index}"), field_manager="canary-local")
        finally:
            kube.close()

    def _wait_nodes_ready(self) -> None:
        kube = self._kube()
        watched = [p for p in self.state.processes if p.name != "prometheus"]
        try:
            def ready_nodes() -> list[str]:
                self._check_alive(watched)
                return [n["metadata"]["name"] for n in kube.list_objects("v1", "Node") if is_true(n, "Ready")]

            wait_until(ready_nodes, lambda names: len(names) >= self._nodes,
                       what=f"{self._nodes} nodes to be Ready", timeout=_START_TIMEOUT)
            self._note(f"{self._nodes} kwok nodes are Ready")

            def default_service_account() -> bool:
                self._check_alive(watched)
                return kube.get("v1", "ServiceAccount", "default", namespace="default") is not None

            wait_until(default_service_account, bool, what="kube-controller-manager to create the default "
                       "ServiceAccount", timeout=_START_TIMEOUT)
            self._note("kube-controller-manager is working")
        finally:
            kube.close()

    def _check_alive(self, records: list[ProcessRecord]) -> None:
        for record in records:
            if not procs.is_alive(record):
                raise LocalStackError(f"{record.name} exited during start; the end of {record.log}:\n"
                                      f"{procs.log_tail(record)}")

    def _alive_then(self, record: ProcessRecord, probe: Callable[[], T]) -> T:
        self._check_alive([record])
        return probe()


def _tls_context(certs: pki.Pki) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(certs.ca_cert))
    context.load_cert_chain(str(certs.admin_cert), str(certs.admin_key))
    return context


def _http_status(url: str, context: ssl.SSLContext | None = None) -> int:
    try:
        with urllib.request.urlopen(url, timeout=2, context=context) as response:  # noqa: S310 - our own URLs
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def _http_json(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - our own URL
        body: dict[str, Any] = json.loads(response.read())
        return body


def is_running(state: StackState) -> dict[str, bool]:
    """Whether each recorded process still runs, by name."""
    return {record.name: procs.is_alive(record) for record in state.processes}


def uptime(state: StackState) -> dt.timedelta:
    """How long ago the stack was started."""
    return dt.datetime.now(dt.UTC) - state.started_at


def environ_with(state: StackState) -> dict[str, str]:
    """The current environment plus KUBECONFIG and PROMETHEUS_URL of ``state``."""
    return {**os.environ, "KUBECONFIG": state.kubeconfig, "PROMETHEUS_URL": state.prometheus_url}
