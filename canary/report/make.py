"""A report from the cluster: read the Canary, take its run, add Prometheus series when asked, draw.

Called by ``canary report`` (the CLI) and ``canary demo``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from canary.engine.canaries import validation_message
from canary.errors import PermanentError
from canary.kube.client import Kube
from canary.models.base import API_VERSION
from canary.models.canary import Canary
from canary.report import draw
from canary.report.prometheus import with_prometheus
from canary.report.series import Run, run_of


@dataclass(frozen=True)
class Prometheus:
    """Where to read each metric's series (``url``), and the router whose built-in queries apply to a
    Canary without spec.provider (the controller's --mesh-provider)."""

    url: str
    mesh_provider: str


def report(kube: Kube, namespace: str, name: str, output: Path, *, revision: str | None = None,
           prometheus: Prometheus | None = None) -> Run:
    """Draw the recorded run of Canary ``namespace/name`` into ``output``; returns what was drawn."""
    draw.check_path(output)
    found = kube.get(API_VERSION, "Canary", name, namespace=namespace)
    if found is None:
        raise PermanentError(f"Canary {namespace}/{name} not found")
    try:
        canary = Canary.from_object(found)
    except ValidationError as exc:
        raise PermanentError(f"Canary {namespace}/{name}: {validation_message(exc)}") from exc
    run = run_of(canary, revision=revision)
    if prometheus is not None:
        run = with_prometheus(run, canary, url=prometheus.url,
                              mesh=canary.spec.provider or prometheus.mesh_provider,
                              templates=lambda ns, n: kube.get(API_VERSION, "MetricTemplate", n, namespace=ns))
    draw.render(run, output)
    return run
