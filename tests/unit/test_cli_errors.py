"""What a person at a terminal sees when something is wrong: one line naming what and where, exit 1."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import yaml


def _canary(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "canary", *args], capture_output=True, text=True, timeout=60,
                          check=False)


def _refused_port() -> int:
    with socket.socket() as probe:  # bound, not listening: connections to it are refused
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_an_unreachable_api_server_is_one_line_naming_it_not_a_traceback(tmp_path: Path) -> None:
    server = f"https://127.0.0.1:{_refused_port()}"
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "x",
        "clusters": [{"name": "x", "cluster": {"server": server, "insecure-skip-tls-verify": True}}],
        "users": [{"name": "x", "user": {"token": "t"}}],
        "contexts": [{"name": "x", "context": {"cluster": "x", "user": "x"}}]}))
    for args in (("status",), ("promote", "web"), ("pause", "web")):
        result = _canary(*args, "--kubeconfig", str(kubeconfig))
        assert result.returncode == 1, args
        assert "Traceback" not in result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, result.stderr
        assert lines[0].startswith(f"error: cannot reach the API server at {server}: "), lines[0]


def test_version_is_printed_by_the_command_and_the_flag() -> None:
    assert _canary("version").stdout.startswith("canary-delivery ")
    assert _canary("--version").stdout == _canary("version").stdout
