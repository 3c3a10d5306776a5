"""Helm charts kept in Git, synced by the controller as Flux's Helm controller syncs a chart from a
GitRepository: a values change in a commit is released as a canary and promoted, and a chart that
fails to render applies nothing, prunes nothing and says which file is wrong."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from canary.gitsync.inventory import Inventory, KubeInventoryStore, SyncState
from canary.kube.client import Kube
from canary.local import helm, stack
from canary.waiting import wait_until
from tests.e2e.canaries import canary_status, deployment, image_of, wait_phase
from tests.e2e.controllers import ControllerProcess
from tests.e2e.gitrepos import Upstream, sync_status

pytestmark = pytest.mark.usefixtures("canary_crds")
SOURCE = "apps"
CHART = {"apiVersion": "v2", "name": "podinfo", "version": "1.0.0"}
VALUES = {"replicas": 1, "image": {"repository": "podinfo", "tag": "6.7.0"}, "greeting": "hello"}
DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Release.Name }}
  labels: {app: {{ .Release.Name }}}
spec:
  replicas: {{ .Values.replicas }}
  selector: {matchLabels: {app: {{ .Release.Name }}}}
  template:
    metadata: {labels: {app: {{ .Release.Name }}}}
    spec:
      containers:
        - name: podinfo
          image: "{{ .Values.image.repository }}:{{ .Values.image.tag }}"
"""
CANARY = """\
apiVersion: canary.dev/v1alpha1
kind: Canary
metadata:
  name: {{ .Release.Name }}
spec:
  provider: kubernetes
  targetRef: {apiVersion: apps/v1, kind: Deployment, name: {{ .Release.Name }}}
  service: {port: 9898}
  analysis: {interval: 1s, threshold: 2, iterations: 2}
"""
GREETING = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-greeting
data:
  greeting: {{ .Values.greeting | quote }}
"""


def _chart(tag: str, *, deployment_template: str = DEPLOYMENT) -> dict[str, str | None]:
    return {"charts/podinfo/Chart.yaml": yaml.safe_dump(CHART),
            "charts/podinfo/values.yaml": yaml.safe_dump(VALUES),
            "charts/podinfo/templates/deployment.yaml": deployment_template,
            "charts/podinfo/templates/canary.yaml": CANARY,
            "charts/podinfo/templates/greeting.yaml": GREETING,
            "envs/prod/podinfo.yaml": yaml.safe_dump({"image": {"tag": tag}})}


def _inventory(kube: Kube, namespace: str) -> Inventory | None:
    return KubeInventoryStore(SyncState(kube, namespace)).load(SOURCE)


def _promoted(kube: Kube, namespace: str, image: str) -> None:
    wait_until(lambda: (canary_status(kube, namespace, "podinfo").get("phase"),
                        image_of(deployment(kube, namespace, "podinfo-primary"))),
               lambda seen: seen == ("Succeeded", image),
               what=f"the chart's release of {image} to be promoted", timeout=60, interval=0.1)


def test_a_values_change_in_a_chart_from_git_is_released_as_a_canary_and_a_broken_chart_changes_nothing(
    kube: Kube, namespace: str, local_stack: stack.StackState, upstream: Upstream, daemon: int, tmp_path: Path
) -> None:
    sources = tmp_path / "sources.yaml"
    sources.write_text(yaml.safe_dump({"sources": [{
        "name": SOURCE, "url": f"git://127.0.0.1:{daemon}/app.git", "paths": ["charts"],
        "charts": [{"path": "charts/podinfo", "releaseName": "podinfo", "namespace": namespace,
                    "valuesFiles": ["envs/prod/podinfo.yaml"], "values": {"replicas": 2}}]}]}))
    upstream.commit(_chart("6.7.0"), "podinfo chart, 6.7.0")
    controller = ControllerProcess(
        local_stack, namespace, tmp_path,
        extra=("--git-config", str(sources), "--git-inventory-namespace", namespace, "--git-poll-interval", "1"),
        env={"CANARY_CACHE_DIR": str(tmp_path / "cache"), "CANARY_HELM": str(helm.ensure_built())})
    controller.start()
    try:
        wait_phase(kube, namespace, "podinfo", "Initialized", timeout=60)
        assert image_of(deployment(kube, namespace, "podinfo-primary")) == "podinfo:6.7.0", "the values file's tag"
        assert deployment(kube, namespace, "podinfo-primary")["spec"]["replicas"] == 2, "inline values win"
        greeting = kube.get("v1", "ConfigMap", "podinfo-greeting", namespace=namespace)
        assert greeting is not None
        assert greeting["data"] == {"greeting": "hello"}, "the chart's own values.yaml"

        upstream.commit({"envs/prod/podinfo.yaml": yaml.safe_dump({"image": {"tag": "6.7.1"}})}, "podinfo 6.7.1")
        _promoted(kube, namespace, "podinfo:6.7.1")
        assert deployment(kube, namespace, "podinfo")["spec"]["replicas"] == 0, "the sync left the target to the engine"
        synced = _inventory(kube, namespace)
        assert synced is not None
        assert synced.last_error is None

        # A template that asks for a value no one sets, beside a values change and a template that leaves:
        # nothing of the commit is applied and nothing pruned.
        broken = DEPLOYMENT.replace(".Values.image.tag", '(required "image.digest is required" .Values.image.digest)')
        upstream.commit({**_chart("6.7.2", deployment_template=broken),
                         "charts/podinfo/templates/greeting.yaml": None}, "podinfo 6.7.2, by digest")
        failed = wait_until(lambda: _inventory(kube, namespace),
                            lambda inv: inv is not None and bool(inv.last_error),
                            what="the sync to record the broken chart", timeout=30, interval=0.1)
        assert failed is not None
        assert failed.revision == synced.revision, "the state still names the last good commit"
        assert "charts/podinfo/templates/deployment.yaml" in str(failed.last_error), failed.last_error
        assert "image.digest is required" in str(failed.last_error)
        assert image_of(deployment(kube, namespace, "podinfo")) == "podinfo:6.7.1", "nothing applied"
        assert kube.get("v1", "ConfigMap", "podinfo-greeting", namespace=namespace) is not None, "nothing pruned"
        status = sync_status(local_stack, namespace, "--source", SOURCE)
        assert "charts/podinfo/templates/deployment.yaml" in status, status
    finally:
        controller.stop()
