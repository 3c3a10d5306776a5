"""Running ``canary controller`` as a real process for end-to-end tests (several may run at once)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from canary.local import stack
from canary.local.ports import free_ports
from canary.waiting import wait_until


class ControllerProcess:
    """One controller, restricted to one namespace, with its own log file."""

    def __init__(self, local_stack: stack.StackState, namespace: str, folder: Path, *, extra: tuple[str, ...] = (),
                 name: str = "controller", env: dict[str, str] | None = None, kubeconfig: Path | None = None) -> None:
        self.stack, self.namespace, self.extra, self.env = local_stack, namespace, extra, env or {}
        self.kubeconfig = str(kubeconfig) if kubeconfig is not None else self.stack.kubeconfig
        folder.mkdir(parents=True, exist_ok=True)
        self.log = folder / f"{name}.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.port = 0

    def start(self) -> None:
        """Start it and wait until its caches are synced (/readyz)."""
        (self.port,) = free_ports(1)
        argv = [sys.executable, "-m", "canary", "controller", "--kubeconfig", self.kubeconfig,
                "--namespace", self.namespace, "--metrics-server", self.stack.prometheus_url, "--port", str(self.port),
                "--log-level", "debug", *self.extra]
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT,
                                            env={**os.environ, "CANARY_LOG_LEVEL": "debug", **self.env})
        try:
            wait_until(self._ready, bool, what=f"the controller to be ready (log {self.log})", timeout=60)
        except BaseException:
            self.stop()  # the test's cleanup only runs after a successful start
            raise

    def _ready(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"controller exited with {self.process.returncode}:\n{self.log_tail()}")
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/readyz", timeout=2) as response:
            return bool(response.status == 200)

    def kill(self) -> None:
        """SIGKILL, as a crash would."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

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

    def log_tail(self, lines: int = 60) -> str:
        """The end of the controller's log."""
        if not self.log.exists():
            return "(no log)"
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


def metric_total(controller: ControllerProcess, name: str, /, **labels: str) -> float:
    """The sum of a metric's samples (matching ``labels``) on the controller's /metrics."""
    with urllib.request.urlopen(f"http://127.0.0.1:{controller.port}/metrics", timeout=5) as response:
        text = response.read().decode()
    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                total += sample.value
    return total
