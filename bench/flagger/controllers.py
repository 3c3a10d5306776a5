"""The two controllers under test, as processes: Flagger's binary and ``canary controller``, one namespace each.

``run.py`` starts both before the fleets exist (so both see every canary created) and stops them at
the end of a size. Each keeps its log in the run's folder. Both run with their own defaults but for
what the comparison needs alike: one namespace, the kubernetes router, the stack's Prometheus, info logs.
"""

from __future__ import annotations

import subprocess
import urllib.request
from pathlib import Path

from canary.local import stack
from canary.local.ports import free_ports
from canary.waiting import wait_until
from tests.e2e.controllers import ControllerProcess

QPS = 2000
"""Flagger's client limit (its default, 100 requests/s, would hold it back from 12 canaries per second
upwards, so that its ticks fell behind and its CPU per tick looked lower for work not done)."""


class FlaggerProcess:
    """Flagger watching one namespace, its /metrics and /healthz on a free port."""

    def __init__(self, binary: Path, local_stack: stack.StackState, namespace: str, folder: Path) -> None:
        self.binary, self.stack, self.namespace = binary, local_stack, namespace
        folder.mkdir(parents=True, exist_ok=True)
        self.log = folder / "flagger.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.port = 0

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def argv(self) -> list[str]:
        return [str(self.binary), f"-kubeconfig={self.stack.kubeconfig}", "-mesh-provider=kubernetes",
                f"-metrics-server={self.stack.prometheus_url}", f"-namespace={self.namespace}",
                "-log-level=info", f"-port={self.port}", f"-kubeconfig-qps={QPS}", f"-kubeconfig-burst={2 * QPS}"]

    def start(self) -> None:
        """Start it and wait until it serves /healthz (its informers have synced by then)."""
        (self.port,) = free_ports(1)
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(self.argv(), stdout=out, stderr=subprocess.STDOUT)
        try:
            wait_until(self._healthy, bool, what=f"Flagger to serve /healthz (log {self.log})", timeout=60)
        except BaseException:
            self.stop()
            raise

    def _healthy(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"flagger exited with {self.process.returncode}; see {self.log}")
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=2) as response:
            return bool(response.status == 200)

    def stop(self) -> None:
        """SIGTERM and wait."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)


class OurProcess(ControllerProcess):
    """``canary controller`` watching one namespace, at info level (the end-to-end tests log at debug); with
    ``shard``, the leader of that shard's canaries, with a Lease of its own in the namespace."""

    def __init__(self, local_stack: stack.StackState, namespace: str, folder: Path, *,
                 shard: str | None = None) -> None:
        sharding = ("--shard", shard, "--enable-leader-election", "--leader-election-namespace", namespace)
        super().__init__(local_stack, namespace, folder, extra=("--log-level", "info", *(sharding if shard else ())),
                         name=f"controller-{shard}" if shard else "controller", env={"CANARY_LOG_LEVEL": "info"})

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def metrics(self) -> str:
        """Its /metrics page."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=5) as response:
            return str(response.read().decode())
