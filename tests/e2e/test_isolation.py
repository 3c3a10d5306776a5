"""Nothing one canary does can hold the others: canaries whose pre-rollout hooks hang (the receiver
answers nothing for a minute) keep none of the controller's workers, and a healthy canary's release
beside them runs at its own pace."""

from __future__ import annotations

import threading
import time
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest

from canary.kube.client import Kube
from canary.local import stack
from tests.builders import make_canary, make_deployment
from tests.e2e.canaries import canary_status, release, wait_phase
from tests.e2e.controllers import ControllerProcess

SLOW = 4
STOP_WITHIN = 8  # seconds: the controller allows itself 5 (canary.controller.STOP_SECONDS)


class _Silent(BaseHTTPRequestHandler):
    """Reads the request and answers nothing until released."""

    release = threading.Event()
    calls: ClassVar[list[str]] = []

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        type(self).calls.append(self.path)
        type(self).release.wait(120)
        self.send_response(200)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        """Quiet."""


@pytest.fixture
def silent() -> Iterator[str]:
    _Silent.release.clear()
    _Silent.calls.clear()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Silent)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    _Silent.release.set()
    httpd.shutdown()
    httpd.server_close()


def test_canaries_whose_hooks_hang_do_not_hold_a_healthy_canarys_release(
    kube: Kube, namespace: str, local_stack: stack.StackState, canary_crds: list[str], tmp_path: Path, silent: str
) -> None:
    election = ("--enable-leader-election", "--leader-election-namespace", namespace)
    controller = ControllerProcess(local_stack, namespace, tmp_path, extra=("--workers", "2", *election))
    controller.start()
    try:
        analysis = {"interval": "1s", "threshold": 2, "iterations": 2}
        for index in range(SLOW):
            name = f"slow-{index}"
            kube.create(make_deployment(name, namespace, replicas=1, image=f"{name}:1"))
            kube.create(make_canary(name, namespace, provider="kubernetes", analysis={**analysis, "webhooks": [
                {"name": "acceptance", "type": "pre-rollout", "url": f"{silent}/{name}", "timeout": "1m"}]}))
        kube.create(make_deployment("fast", namespace, replicas=1, image="fast:1"))
        kube.create(make_canary("fast", namespace, provider="kubernetes", analysis=analysis))
        for name in [*(f"slow-{i}" for i in range(SLOW)), "fast"]:
            wait_phase(kube, namespace, name, "Initialized", timeout=60)

        for index in range(SLOW):
            release(kube, namespace, f"slow-{index}:2", name=f"slow-{index}")
        for index in range(SLOW):
            wait_phase(kube, namespace, f"slow-{index}", "Progressing", timeout=30)
        release(kube, namespace, "fast:2", name="fast")
        wait_phase(kube, namespace, "fast", "Succeeded", timeout=30)

        assert sorted(_Silent.calls) == [f"/slow-{i}" for i in range(SLOW)], "each hanging hook was called once"
        assert {canary_status(kube, namespace, f"slow-{i}")["phase"] for i in range(SLOW)} == {"Progressing"}
        with urllib.request.urlopen(f"http://127.0.0.1:{controller.port}/healthz", timeout=5) as health:
            assert health.status == 200, "the hanging hooks hold no worker: jobs still make progress"

        # SIGTERM with the hooks still hanging: the controller lets go of the lease and exits at once.
        assert controller.process is not None
        stopping = time.monotonic()
        controller.process.terminate()
        assert controller.process.wait(timeout=15) == 0
        assert time.monotonic() - stopping < STOP_WITHIN, controller.log_tail()
        lease = kube.get("coordination.k8s.io/v1", "Lease", "canary-controller", namespace=namespace)
        assert lease is not None
        assert not lease["spec"].get("holderIdentity"), "the lease was released for the next replica"
    finally:
        controller.stop()
