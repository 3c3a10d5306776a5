"""Flagger's load tester (flagger-loadtester, built from its Go module) as a real process for end-to-end tests.

It listens on every interface (it has a port flag, no address flag); the tests call it on
127.0.0.1. ``hey`` is on its PATH, as in Flagger's image. Its log (zap, JSON lines) goes to a file.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path
from typing import Any

import requests

from canary.local import loadtester
from canary.local.ports import free_ports
from canary.waiting import wait_until


class LoadTester:
    """One flagger-loadtester on a free port; its commands run in its own process group."""

    def __init__(self, folder: Path) -> None:
        self.bin_dir = loadtester.ensure_built()
        folder.mkdir(parents=True, exist_ok=True)
        self.log = folder / "loadtester.log"
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start it and wait until /healthz answers."""
        (self.port,) = free_ports(1)
        argv = [str(self.bin_dir / "loadtester"), "-port", str(self.port), "-log-level", "info", "-timeout", "1m"]
        env = {**os.environ, "PATH": f"{self.bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env,
                                            start_new_session=True)
        wait_until(self._healthy, bool, what=f"the load tester to serve (log {self.log})", timeout=30, interval=0.05)

    def _healthy(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"the load tester exited with {self.process.returncode}:\n{self.log_text()}")
        return requests.get(self.url("/healthz"), timeout=2).status_code == 200

    def url(self, path: str) -> str:
        """The address of ``path`` on the load tester, as a Canary's webhook names it."""
        return f"http://127.0.0.1:{self.port}{path}"

    def post(self, path: str, *, name: str, namespace: str) -> int:
        """What a person runs to work a gate (``curl -d '{"name": ..., "namespace": ...}' .../gate/open``):
        the answer's status code."""
        return requests.post(self.url(path), json={"name": name, "namespace": namespace}, timeout=10).status_code

    def entries(self) -> list[dict[str, Any]]:
        """Its log, one JSON object a line."""
        found = []
        for line in self.log_text().splitlines():
            try:
                found.append(json.loads(line))
            except ValueError:
                continue  # a command's own output, when it is logged raw
        return found

    def messages(self) -> list[str]:
        """The ``msg`` of every log entry, in order."""
        return [str(entry.get("msg", "")) for entry in self.entries()]

    def log_text(self) -> str:
        """Its log as it stands."""
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def stop(self) -> None:
        """SIGTERM to its process group (it and any command still running), then wait."""
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
