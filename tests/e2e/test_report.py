"""``canary report`` end to end: a controller runs a good and a bad release on the local stack, and
the report of each is drawn by the real command; its data is checked from the same status the
picture is drawn from (``report.series.run_of``), and its size from the file itself."""

from __future__ import annotations

import struct
import subprocess
import sys
from pathlib import Path

import pytest

from canary.kube.client import Kube
from canary.local import stack
from canary.models.base import API_VERSION
from canary.models.canary import Canary
from canary.report.draw import pixel_size
from canary.report.prometheus import with_prometheus
from canary.report.series import Mark, Run, run_of
from tests.builders import make_deployment
from tests.e2e.canaries import (
    follow_release,
    judged_canary,
    release,
    route_weights,
    wait_phase,
    wait_target_quiet,
)
from tests.e2e.controllers import ControllerProcess

pytestmark = pytest.mark.usefixtures("gateway_api_crds")


def _report(local_stack: stack.StackState, namespace: str, output: Path,
            *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "canary", "report", "web", "-n", namespace, "-o", str(output),
                           "--kubeconfig", local_stack.kubeconfig, *args],
                          capture_output=True, text=True, check=False, timeout=120)


def _png_size(path: Path) -> tuple[int, int]:
    """Width and height from the PNG's header (its IHDR chunk)."""
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    width, height = struct.unpack(">II", head[16:24])
    return width, height


def _drawn(kube: Kube, namespace: str) -> tuple[Canary, Run]:
    """The Canary and the run its report draws."""
    found = kube.get(API_VERSION, "Canary", "web", namespace=namespace)
    assert found is not None
    canary = Canary.from_object(found)
    return canary, run_of(canary)


def _steps(weights: list[int]) -> list[int]:
    return [w for i, w in enumerate(weights) if i == 0 or weights[i - 1] != w]


def test_the_report_of_a_good_and_a_bad_release_shows_their_weights_metrics_and_outcome(
    kube: Kube, namespace: str, controller: ControllerProcess, local_stack: stack.StackState, tmp_path: Path
) -> None:
    canary = judged_canary(namespace, "gatewayapi", stepWeight=25, maxWeight=50)
    for metric in canary["spec"]["analysis"]["metrics"]:
        metric["noData"] = "pause"  # the first scrapes of a new canary: hold, so that the metrics decide
    kube.create(make_deployment("web", namespace, replicas=2, image="web:1"))
    kube.create(canary)
    wait_phase(kube, namespace, "web", "Initialized")

    release(kube, namespace, "web:2")
    seen, phase = follow_release(kube, namespace, lambda: route_weights(kube, namespace, "web"))
    assert phase == "Succeeded"
    good_png = tmp_path / "good.png"
    made = _report(local_stack, namespace, good_png, "--metrics-server", local_stack.prometheus_url)
    assert made.returncode == 0, made.stderr
    judged, good = _drawn(kube, namespace)

    assert _png_size(good_png) == pixel_size(good) == (1000, 770)
    assert f"wrote {good_png} (1000x770): {good.title}" in made.stderr
    assert good.outcome == "promoted"
    assert _steps([w for _, w in good.weights]) == [canary for _, canary in seen] == [0, 25, 50, 0]
    assert [m.name for m in good.metrics] == ["request-success-rate", "request-duration"]
    assert all(not m.outside for m in good.metrics), good.metrics
    assert [m.kind for m in good.markers if m.label != "holding: no data"] == [Mark.PROMOTION]
    prometheus = with_prometheus(good, judged, url=local_stack.prometheus_url, mesh="gatewayapi",
                                 templates=lambda ns, name: None)
    rate = prometheus.metrics[0]
    assert rate.prometheus, f"no Prometheus series of the success rate: {rate.missing}"
    assert min(v for _, v in rate.prometheus) >= 99

    wait_target_quiet(local_stack.prometheus_url, namespace)
    release(kube, namespace, "web:3", annotations={"sim.canary.dev/error-rate": "30"})
    wait_phase(kube, namespace, "web", "Progressing")
    seen, phase = follow_release(kube, namespace, lambda: route_weights(kube, namespace, "web"))
    assert phase == "Failed"
    bad_svg = tmp_path / "bad.svg"
    made = _report(local_stack, namespace, bad_svg)
    assert made.returncode == 0, made.stderr
    assert bad_svg.read_text().startswith("<?xml"), "an SVG picture"
    _, bad = _drawn(kube, namespace)

    assert bad.revision != good.revision
    assert bad.outcome == "rolled back"
    steps = _steps([w for _, w in bad.weights])
    assert steps == _steps([canary for _, canary in seen]), "the picture's weights are the route's"
    # Rolled back at 25, or at 50 when a loaded machine's series showed the errors one step late.
    assert steps in ([0, 25, 0], [0, 25, 50, 0]), steps
    rate, duration = bad.metrics
    assert rate.name == "request-success-rate"
    assert len(rate.outside) == 2, "the failing metric, at each check"
    assert all(v < 99 for _, v in rate.outside)
    assert not duration.outside
    assert [m.label for m in bad.markers if m.kind is Mark.FAILED_CHECK] == ["failed check 1", "failed check 2"]
    assert bad.why.startswith("failed checks threshold reached 2 (request-success-rate: ")

    refused = _report(local_stack, namespace, tmp_path / "old.png", "--revision", good.revision)
    assert refused.returncode == 1
    assert f"Canary {namespace}/web: --revision {good.revision}: the recorded run (status.timeline) is of " \
           f"revision {bad.revision}" in refused.stderr
    assert not (tmp_path / "old.png").exists()
