"""The Helm chart (charts/canary-delivery) against a real API server: its renders with the value sets its
users reach for apply server-side without error, and a controller holding only what a namespaced
install with the Git sync grants (its Roles, its sync state in a Secret) releases a canary from Git."""

from __future__ import annotations

import base64
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from canary.kube import Obj
from canary.kube.client import Kube
from canary.local import helm, stack
from canary.local.install import crd_folder, install_crds
from canary.waiting import wait_until
from tests.e2e import accounts
from tests.e2e.canaries import canary_status, deployment, image_of, wait_phase
from tests.e2e.controllers import ControllerProcess
from tests.e2e.gitrepos import SEED, Upstream, sync_status

pytestmark = pytest.mark.usefixtures("canary_crds")
CHART = Path(__file__).parents[2] / "charts" / "canary-delivery"
MANAGER = "test-chart"
VALUE_SETS: dict[str, tuple[str, ...]] = {
    "default": (),
    "namespaced": ("--set", "namespace={namespace}", "--set", "replicas=2"),
    "git sync with Flux's names": ("--set", "git.url=git@github.com:org/fleet", "--set", "git.path=k8s",
                                   "--set", "git.branch=main", "--set", "git.secretName=flux-git-deploy",
                                   "--set", "sync.state=secret"),
    "monitors on": ("--set", "podMonitor.enabled=true", "--set", "serviceMonitor.enabled=true"),
    "namespaced, dashboard with actions": ("--set", "namespace={namespace}", "--set", "dashboard.enabled=true",
                                           "--set", "dashboard.actions.enabled=true",
                                           "--set", "dashboard.actions.tokensSecret=dashboard-tokens"),
}


@pytest.fixture(scope="module")
def monitor_crds(kube: Kube) -> list[str]:
    """Prometheus Operator's PodMonitor and ServiceMonitor CRDs (vendored), Established."""
    return install_crds(kube, crd_folder("prometheus-operator"), timeout=60)


def render(release: str, namespace: str, *values: str) -> list[Obj]:
    done = subprocess.run([str(helm.ensure_built()), "template", release, str(CHART), "--namespace", namespace,
                           *(v.format(namespace=namespace) for v in values)],
                          capture_output=True, text=True, check=False, timeout=60)
    assert done.returncode == 0, done.stderr
    return [d for d in yaml.safe_load_all(done.stdout) if d]


def _cluster_scoped(obj: Obj) -> bool:
    return obj["kind"] in ("ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition")


@pytest.fixture
def installed(kube: Kube) -> Iterator[list[Obj]]:
    """Objects a test applied for real, cluster-scoped ones deleted after it (namespaced ones go with its namespace)."""
    applied: list[Obj] = []
    yield applied
    for obj in applied:
        if _cluster_scoped(obj):
            kube.delete(obj["apiVersion"], obj["kind"], obj["metadata"]["name"])


def apply(kube: Kube, objects: list[Obj], installed: list[Obj]) -> None:
    """Server-side apply; the CRDs as a server-side dry run only, since other tests' Canaries live on them."""
    for obj in objects:
        if obj["kind"] == "CustomResourceDefinition":
            kube.apply_dry_run(obj, field_manager=MANAGER)
            continue
        kube.apply(obj, field_manager=MANAGER)
        installed.append(obj)


@pytest.mark.usefixtures("monitor_crds")
@pytest.mark.parametrize("values", VALUE_SETS.values(), ids=VALUE_SETS.keys())
def test_every_value_set_renders_objects_the_api_server_accepts(
    kube: Kube, namespace: str, installed: list[Obj], values: tuple[str, ...]
) -> None:
    objects = render(f"r{os.urandom(3).hex()}", namespace, *values)
    apply(kube, objects, installed)
    for obj in installed:
        meta = obj["metadata"]
        found = kube.get(obj["apiVersion"], obj["kind"], meta["name"], namespace=meta.get("namespace"))
        assert found is not None, f"{obj['kind']} {meta['name']}"
        assert found["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "Helm"


def _environment(container: Obj, kube: Kube, namespace: str, cache: Path) -> dict[str, str]:
    """The container's environment as the kubelet would give it (the cache folder moved to ``cache``)."""
    env = {}
    for entry in container.get("env") or []:
        source: dict[str, Any] = entry.get("valueFrom") or {}
        if "value" in entry:
            env[entry["name"]] = entry["value"]
        elif source.get("fieldRef", {}).get("fieldPath") == "metadata.namespace":
            env[entry["name"]] = namespace
        elif "secretKeyRef" in source:
            ref = source["secretKeyRef"]
            secret = kube.get("v1", "Secret", ref["name"], namespace=namespace)
            assert secret is not None, f"Secret {ref['name']}"
            env[entry["name"]] = base64.b64decode(secret["data"][ref["key"]]).decode()
    env["CANARY_CACHE_DIR"] = str(cache)
    return env


def _app(namespace: str, image: str, *, settings: bool = True) -> dict[str, str | None]:
    deploy = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": namespace},
              "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                       "template": {"metadata": {"labels": {"app": "web"}},
                                    "spec": {"containers": [{"name": "web", "image": image}]}}}}
    canary = {"apiVersion": "canary.dev/v1alpha1", "kind": "Canary",
              "metadata": {"name": "web", "namespace": namespace},
              "spec": {"provider": "kubernetes", "service": {"port": 9898},
                       "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                       "analysis": {"interval": "1s", "threshold": 2, "iterations": 2}}}
    config = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings", "namespace": namespace},
              "data": {"mode": "a"}}
    return {"k8s/web.yaml": yaml.safe_dump_all([deploy, canary]),
            "k8s/settings.yaml": yaml.safe_dump(config) if settings else None}


def test_a_namespaced_install_with_the_git_sync_releases_from_git_holding_only_the_charts_roles(
    kube: Kube, namespace: str, local_stack: stack.StackState, upstream: Upstream, daemon: int, tmp_path: Path,
    installed: list[Obj]
) -> None:
    """The release's namespace keeps the Lease and the sync state (a Secret); the controller watches and
    syncs another namespace. Its rights there come from the chart's Roles alone."""
    watched = f"{namespace}-apps"
    kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": watched}})
    try:
        upstream.commit({**_app(watched, "web:1"), **dict.fromkeys(SEED)}, "web 1 and its settings")
        objects = render("ops", namespace, "--set", f"namespace={watched}", "--set", "crds.create=false",
                         "--set", "replicas=2", "--set", f"git.url=git://127.0.0.1:{daemon}/app.git",
                         "--set", "git.path=k8s", "--set", "git.pollInterval=1s", "--set", "sync.state=secret",
                         "--set", "slack.url=http://127.0.0.1:9/slack", "--set", "clusterName=e2e")
        (pod,) = [o["spec"]["template"]["spec"] for o in objects if o["kind"] == "Deployment"]
        apply(kube, [o for o in objects if o["kind"] != "Deployment"], installed)
        (container,) = pod["containers"]
        args = [a for a in container["args"][1:] if not a.startswith(("--port=", "--metrics-server="))]
        controller = ControllerProcess(
            local_stack, watched, tmp_path, extra=tuple(args),
            kubeconfig=accounts.kubeconfig(local_stack.kubeconfig, namespace, pod["serviceAccountName"],
                                                   tmp_path),
            env={**_environment(container, kube, namespace, tmp_path / "cache"),
                 "CANARY_HELM": str(helm.ensure_built())})
        controller.start()
        try:
            wait_phase(kube, watched, "web", "Initialized", timeout=60)
            upstream.commit(_app(watched, "web:2", settings=False), "web 2, settings leave Git")
            wait_until(lambda: (canary_status(kube, watched, "web").get("phase"),
                                image_of(deployment(kube, watched, "web-primary"))),
                       lambda seen: seen == ("Succeeded", "web:2"), what="web:2 to be promoted", timeout=60,
                       interval=0.2)
            wait_until(lambda: kube.get("v1", "ConfigMap", "settings", namespace=watched), lambda cm: cm is None,
                       what="the ConfigMap that left Git to be pruned", timeout=30, interval=0.2)

            state = kube.get("v1", "Secret", "canary-gitsync-default", namespace=namespace)
            assert state is not None
            inventory = json.loads(base64.b64decode(state["data"]["inventory.json"]))
            assert inventory["revision"] == upstream.head()
            assert kube.get("v1", "ConfigMap", "canary-gitsync-default", namespace=namespace) is None
            status = sync_status(local_stack, namespace, "--git-sync-state", "secret")
            assert f"commit:  {upstream.head()}" in status, status
            synced = [e for e in kube.list_objects("v1", "Event", namespace=namespace)
                      if e["involvedObject"]["kind"] == "Secret" and e["reason"] == "Synced"]
            assert synced, "Events on the sync-state Secret"
            assert kube.get("coordination.k8s.io/v1", "Lease", "canary-controller", namespace=namespace) is not None
        finally:
            controller.stop()
        refused = [line for line in controller.log.read_text().splitlines()
                   if "forbidden" in line.lower() and "TrafficRoute" not in line]
        assert refused == [], "\n".join(refused[:5])
    finally:
        kube.delete("v1", "Namespace", watched)
