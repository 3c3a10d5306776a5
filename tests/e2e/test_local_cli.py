"""``canary local up|down|status`` from a shell: twice in a row, leaving nothing behind."""

from __future__ import annotations

import json
import os
import signal
import ssl
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest

from canary.kube.client import Kube
from canary.local import pki, procs
from canary.local.ports import is_listening
from canary.local.procs import ProcessRecord
from canary.waiting import wait_until

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

        stopped = _canary("local", "down", "--purge", "--state-dir", str(state_dir))
        assert stopped.returncode == 0, stopped.stderr
        assert not any(procs.is_alive(r) for r in records)
        assert not any(is_listening(port) for port in ports)
        assert sorted(p.name for p in state_dir.iterdir()) == [".lock", "logs"]

    gone = _canary("local", "status", "--state-dir", str(state_dir))
    assert gone.returncode == 1
    assert "no stack in" in gone.stderr


def _records(state_dir: Path) -> list[ProcessRecord]:
    state = json.loads((state_dir / "state.json").read_text())
    return [ProcessRecord.model_validate(p) for p in state["processes"]]


def _kubectl_configmap(state_dir: Path) -> dict[str, str] | None:
    kube = Kube.from_kubeconfig(state_dir / "kubeconfig")
    try:
        found = kube.get("v1", "ConfigMap", "kept", namespace="default")
        return found.get("data") if found is not None else None
    finally:
        kube.close()


def test_up_restarts_what_died_or_was_stopped_and_keeps_the_data_ports_and_certificates(tmp_path: Path) -> None:
    state_dir = tmp_path / "stack"
    started = _canary("local", "up", "--state-dir", str(state_dir))
    assert started.returncode == 0, started.stderr
    kube = Kube.from_kubeconfig(state_dir / "kubeconfig")
    kube.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "kept", "namespace": "default"},
                 "data": {"answer": "42"}})
    kube.close()
    before = {r.name: r for r in _records(state_dir)}
    ca = (state_dir / "pki" / "ca.crt").read_bytes()

    for name in ("kube-scheduler", "simulator"):
        os.kill(before[name].pid, signal.SIGKILL)
    wait_until(lambda: [n for n in ("kube-scheduler", "simulator") if procs.is_alive(before[n])], lambda a: not a,
               what="the killed processes to be gone", timeout=10)
    again = _canary("local", "up", "--state-dir", str(state_dir))
    assert again.returncode == 0, again.stderr
    assert again.stdout == started.stdout, "the same kubeconfig and Prometheus address"
    after = {r.name: r for r in _records(state_dir)}
    assert {n for n in after if after[n].pid != before[n].pid} == {"kube-scheduler", "simulator"}
    assert all(procs.is_alive(r) for r in after.values())
    assert _kubectl_configmap(state_dir) == {"answer": "42"}

    stopped = _canary("local", "down", "--state-dir", str(state_dir))
    assert stopped.returncode == 0, stopped.stderr
    assert not any(procs.is_alive(r) for r in after.values())
    resumed = _canary("local", "up", "--state-dir", str(state_dir))
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stdout == started.stdout
    assert [r.argv for r in _records(state_dir)] == [r.argv for r in before.values()], "the same ports and files"
    assert (state_dir / "pki" / "ca.crt").read_bytes() == ca
    assert _kubectl_configmap(state_dir) == {"answer": "42"}, "etcd's data survived a full stop"
    assert _canary("local", "status", "--state-dir", str(state_dir)).returncode == 0

    purged = _canary("local", "down", "--purge", "--state-dir", str(state_dir))
    assert purged.returncode == 0, purged.stderr
    assert sorted(p.name for p in state_dir.iterdir()) == [".lock", "logs"]


def _list_configmaps_as(state_dir: Path, server: str, user_agent: str) -> None:
    certs = pki.existing(state_dir / "pki")
    context = ssl.create_default_context(cafile=str(certs.ca_cert))
    context.load_cert_chain(str(certs.admin_cert), str(certs.admin_key))
    request = urllib.request.Request(f"{server}/api/v1/namespaces/default/configmaps",  # noqa: S310 - the stack's
                                     headers={"User-Agent": user_agent})
    with urllib.request.urlopen(request, timeout=10, context=context) as response:  # noqa: S310 - its own server
        assert response.status == 200


def _audited(log: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def _requests_by(log: Path, user_agent: str) -> list[tuple[str, str, str]]:
    return [(e["verb"], e["objectRef"].get("resource", ""), e["stage"]) for e in _audited(log)
            if e["userAgent"] == user_agent]


def test_an_audit_log_names_each_clients_requests_and_the_stack_keeps_it_when_resumed(tmp_path: Path) -> None:
    state_dir, log = tmp_path / "stack", tmp_path / "audit" / "audit.log"
    started = _canary("local", "up", "--state-dir", str(state_dir), "--nodes", "3", "--audit-log", str(log),
                      "--apiserver-arg", "max-requests-inflight=500")
    assert started.returncode == 0, started.stderr
    try:
        server = next(r.address for r in _records(state_dir) if r.name == "kube-apiserver")
        _list_configmaps_as(state_dir, server, "audit-e2e/1")
        assert wait_until(lambda: _requests_by(log, "audit-e2e/1"), bool, what="the audited list", timeout=10) == [
            ("list", "configmaps", "ResponseComplete")], "one event per request: the received stage is left out"
        assert {e["level"] for e in _audited(log)} == {"Metadata"}
        kube = Kube.from_kubeconfig(state_dir / "kubeconfig")
        assert len(kube.list_objects("v1", "Node")) == 3
        kube.close()

        refused = _canary("local", "up", "--state-dir", str(state_dir), "--audit-log", str(tmp_path / "other.log"))
        assert refused.returncode == 1
        assert f"error: the stack in {state_dir} was started with --audit-log {log}" in refused.stderr

        assert _canary("local", "down", "--state-dir", str(state_dir)).returncode == 0
        before = [r.argv for r in _records(state_dir)]
        resumed = _canary("local", "up", "--state-dir", str(state_dir))
        assert resumed.returncode == 0, resumed.stderr
        assert [r.argv for r in _records(state_dir)] == before
        apiserver_argv = next(r.argv for r in _records(state_dir) if r.name == "kube-apiserver")
        assert f"--audit-log-path={log}" in apiserver_argv
        assert "--max-requests-inflight=500" in apiserver_argv
        _list_configmaps_as(state_dir, server, "audit-e2e/2")
        wait_until(lambda: _requests_by(log, "audit-e2e/2"), bool, what="the list after the resume, in the same log",
                   timeout=10)
        assert _requests_by(log, "audit-e2e/1") == [("list", "configmaps", "ResponseComplete")], "nothing rotated"
    finally:
        purged = _canary("local", "down", "--purge", "--state-dir", str(state_dir))
        assert purged.returncode == 0, purged.stderr
