"""``canary local up|down|status`` from a shell: twice in a row, leaving nothing behind."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlparse

import pytest

from canary.local import procs
from canary.local.ports import is_listening
from canary.local.procs import ProcessRecord

pytestmark = pytest.mark.skipif(bool(os.environ.get("CANARY_TEST_KUBECONFIG")),
                                reason="tests the local control plane; CANARY_TEST_KUBECONFIG uses another cluster")


def _canary(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "canary", *args], capture_output=True, text=True, check=False,
                          timeout=180)


def _ports(records: list[ProcessRecord]) -> list[int]:
    return [int(urlparse(r.address).port or 0) for r in records if r.address]


def test_up_status_down_twice_leaves_no_process_or_port_behind(tmp_path: Path) -> None:
    state_dir = tmp_path / "stack"
    for _ in range(2):
        started = _canary("local", "up", "--state-dir", str(state_dir))
        assert started.returncode == 0, started.stderr
        lines = started.stdout.splitlines()
        assert lines[0] == f"export KUBECONFIG={state_dir / 'kubeconfig'}"
        assert lines[1].startswith("export PROMETHEUS_URL=http://127.0.0.1:")

        state = json.loads((state_dir / "state.json").read_text())
        records = [ProcessRecord.model_validate(p) for p in state["processes"]]
        assert [r.name for r in records] == ["etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler",
                                             "kwok", "prometheus", "simulator"]
        assert all(procs.is_alive(r) for r in records)
        ports = _ports(records)
        assert len(ports) == 4
        assert all(is_listening(port) for port in ports)

        status = _canary("local", "status", "--state-dir", str(state_dir))
        assert status.returncode == 0, status.stdout + status.stderr
        assert "kube-apiserver" in status.stdout
        assert "NO" not in status.stdout

        again = _canary("local", "up", "--state-dir", str(state_dir))
        assert again.returncode == 0
        assert "a stack already runs" in again.stderr
        assert again.stdout == started.stdout

        stopped = _canary("local", "down", "--state-dir", str(state_dir))
        assert stopped.returncode == 0, stopped.stderr
        assert not any(procs.is_alive(r) for r in records)
        assert not any(is_listening(port) for port in ports)
        assert sorted(p.name for p in state_dir.iterdir()) == [".lock", "logs"]

    gone = _canary("local", "status", "--state-dir", str(state_dir))
    assert gone.returncode == 1
    assert "no stack in" in gone.stderr
