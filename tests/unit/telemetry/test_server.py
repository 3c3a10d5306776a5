"""The controller's HTTP port against real sockets: what it listens on, and clients that stall."""

from __future__ import annotations

import socket
import time

import pytest
import requests

from canary.gitsync.webhook import receiver
from canary.telemetry.server import HttpServer, app


def test_a_client_that_never_sends_its_body_is_answered_408_and_others_are_served() -> None:
    hooks = receiver("s3cret", lambda: {"apps": "refs/heads/main"}, lambda name: None)
    server = HttpServer(0, app(ready=lambda: True, extra=hooks), host="127.0.0.1", read_timeout=0.5).start()
    try:
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as stalled:
            stalled.sendall(b"POST /hooks/git/apps HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n")
            assert requests.get(f"http://127.0.0.1:{server.port}/healthz", timeout=5).status_code == 200
            started = time.monotonic()
            assert stalled.recv(1024).startswith(b"HTTP/1.0 408 "), "the stalled request gave up its thread"
            assert time.monotonic() - started < 5
    finally:
        server.stop()


def _outside_address() -> str:
    """This machine's address on its default route (no packet is sent); loopback without one."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))
        except OSError:
            return "127.0.0.1"
        return str(probe.getsockname()[0])


def test_the_listen_address_chooses_the_interface() -> None:
    server = HttpServer(0, app(ready=lambda: True), host="127.0.0.1").start()
    try:
        outside = _outside_address()
        if outside.startswith("127."):
            pytest.skip("this machine has no address outside loopback")
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection((outside, server.port), timeout=2).close()
        assert requests.get(f"http://127.0.0.1:{server.port}/healthz", timeout=5).status_code == 200
    finally:
        server.stop()


def test_healthz_fails_with_the_reason_while_jobs_are_stalled_and_the_hook_port_serves_only_hooks() -> None:
    problem: list[str] = ["no job has started for 301s"]
    main = HttpServer(0, app(ready=lambda: True, stalled=lambda: problem[0] if problem else None),
                      host="127.0.0.1").start()
    hooks = HttpServer(0, app(ready=lambda: True, metrics=False,
                              extra=receiver("s3cret", lambda: {"apps": "refs/heads/main"}, lambda name: None)),
                       host="127.0.0.1").start()
    try:
        answer = requests.get(f"http://127.0.0.1:{main.port}/healthz", timeout=5)
        assert (answer.status_code, answer.text) == (503, "stalled: no job has started for 301s\n")
        problem.clear()
        assert requests.get(f"http://127.0.0.1:{main.port}/healthz", timeout=5).status_code == 200
        for path in ("/metrics", "/healthz", "/readyz"):
            assert requests.get(f"http://127.0.0.1:{hooks.port}{path}", timeout=5).status_code == 404, path
        unsigned = requests.post(f"http://127.0.0.1:{hooks.port}/hooks/git/apps", data=b"{}", timeout=5)
        assert unsigned.status_code == 401, "the Git webhook is served there"
    finally:
        main.stop()
        hooks.stop()
