"""The controller's Git sync end to end: a real repository served by git daemon, a commit released
as a canary, by poll and by webhook, and ``canary sync`` as a one-shot (and dry-run) tool."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml

from canary.gitsync.webhook import signature
from canary.kube.client import Kube
from canary.local import stack
from canary.waiting import wait_until
from tests.e2e.canaries import canary_status, deployment, image_of, wait_phase
from tests.e2e.controllers import ControllerProcess
from tests.e2e.gitrepos import Upstream, sync_status

pytestmark = pytest.mark.usefixtures("canary_crds")
HOOK_SECRET = "hook-s3cret"  # noqa: S105 - a test secret


def _layout(namespace: str, image: str, *, metrics: str | None = None) -> dict[str, str]:
    """The seed layout of the issue: an annotated Deployment, a Service and a Namespace."""
    judged = {"canary.dev/metrics": metrics} if metrics else {}
    deploy = {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "podinfo", "namespace": namespace,
                     "annotations": {"canary.dev/enabled": "true", "canary.dev/provider": "kubernetes",
                                     "canary.dev/strategy": "blue-green", "canary.dev/iterations": "2",
                                     "canary.dev/interval": "1s", "canary.dev/threshold": "2", **judged}},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "podinfo"}},
                 "template": {"metadata": {"labels": {"app": "podinfo"}},
                              "spec": {"containers": [{"name": "podinfo", "image": image}]}}},
    }
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "podinfo-public", "namespace": namespace},
               "spec": {"selector": {"app": "podinfo-primary"}, "ports": [{"port": 80, "targetPort": 9898}]}}
    staging = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": f"{namespace}-staging"}}
    return {"k8s/app/deployment.yaml": yaml.safe_dump(deploy), "k8s/app/service.yaml": yaml.safe_dump(service),
            "k8s/namespaces/staging.yaml": yaml.safe_dump(staging), "k8s/app/README.md": "not a manifest\n"}


def _canary_sync(local_stack: stack.StackState, url: str, namespace: str, *extra: str
                 ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "canary", "sync", "--git-url", url, "--git-path", "k8s",
                           "--git-inventory-namespace", namespace, "--kubeconfig", local_stack.kubeconfig, *extra],
                          capture_output=True, text=True, check=False, timeout=120,
                          env={"CANARY_CACHE_DIR": str(Path(local_stack.state_dir) / "gitsync-cli"),
                               "PATH": "/usr/bin:/bin"})


def _promoted(kube: Kube, namespace: str, before: str | None) -> dict[str, object]:
    """Wait for a new revision to be promoted (phase Succeeded alone may be the previous release's)."""
    return wait_until(lambda: canary_status(kube, namespace, "podinfo"),
                      lambda s: s.get("phase") == "Succeeded" and s.get("lastPromotedSpec") != before,
                      what="the new revision to be promoted", timeout=60, interval=0.1)


def _post(port: int, body: bytes, headers: dict[str, str]) -> int:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/hooks/git/default", data=body, method="POST",
                                     headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 - our own controller
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def test_commits_are_synced_released_as_canaries_by_poll_and_by_webhook(
    kube: Kube, namespace: str, local_stack: stack.StackState, upstream: Upstream, daemon: int, tmp_path: Path
) -> None:
    url = f"git://127.0.0.1:{daemon}/app.git"
    upstream.commit(_layout(namespace, "podinfo:6.7.0"), "seed layout")
    controller = ControllerProcess(
        local_stack, namespace, tmp_path,
        extra=("--git-url", url, "--git-path", "k8s", "--git-inventory-namespace", namespace,
               "--git-poll-interval", "1"),
        env={"CANARY_GIT_WEBHOOK_SECRET": HOOK_SECRET, "CANARY_CACHE_DIR": str(tmp_path / "cache")})
    controller.start()
    try:
        seeded = wait_phase(kube, namespace, "podinfo", "Initialized", timeout=60)
        assert kube.get("v1", "Namespace", f"{namespace}-staging") is not None
        assert kube.get("v1", "Service", "podinfo-public", namespace=namespace) is not None

        again = _canary_sync(local_stack, url, namespace)
        assert again.returncode == 0, again.stderr
        assert ": created 0, changed 0," in again.stdout, again.stdout

        pushed = time.monotonic()
        upstream.commit(_layout(namespace, "podinfo:6.7.1"), "release 6.7.1")
        wait_until(lambda: image_of(deployment(kube, namespace, "podinfo")), lambda image: image == "podinfo:6.7.1",
                   what="the poll to apply the commit", timeout=30, interval=0.1)
        by_poll = time.monotonic() - pushed
        first = _promoted(kube, namespace, seeded.get("lastPromotedSpec"))
        assert image_of(deployment(kube, namespace, "podinfo-primary")) == "podinfo:6.7.1"
        assert deployment(kube, namespace, "podinfo")["spec"]["replicas"] == 0, "the sync left the target to the engine"

        assert _post(controller.port, b"{}", {"X-Hub-Signature-256": "sha256=forged"}) == 401
        body = b'{"ref": "refs/heads/main"}'
        upstream.commit(_layout(namespace, "podinfo:6.7.2"), "release 6.7.2")
        hooked = time.monotonic()
        assert _post(controller.port, body, {"X-Hub-Signature-256": signature(HOOK_SECRET, body)}) == 202
        wait_until(lambda: image_of(deployment(kube, namespace, "podinfo")), lambda image: image == "podinfo:6.7.2",
                   what="the webhook to apply the commit", timeout=10, interval=0.05)
        by_webhook = time.monotonic() - hooked
        print(f"push to applied: by poll {by_poll:.2f}s (1 s interval), by webhook {by_webhook:.2f}s")
        assert by_webhook < 2
        _promoted(kube, namespace, str(first["lastPromotedSpec"]))

        # A bound no release can meet: the release fails its checks and is rolled back.
        upstream.commit(_layout(namespace, "podinfo:6.7.3", metrics="request-duration<=0"), "release 6.7.3")
        wait_phase(kube, namespace, "podinfo", "Failed", timeout=60)
        status = sync_status(local_stack, namespace)
        assert "Git is ahead of the cluster: Canary" in status, status
        resynced = _canary_sync(local_stack, url, namespace)
        assert ": created 0, changed 0," in resynced.stdout, resynced.stdout
        assert image_of(deployment(kube, namespace, "podinfo-primary")) == "podinfo:6.7.2"
        with pytest.raises(TimeoutError):
            wait_phase(kube, namespace, "podinfo", "Progressing", timeout=3)
    finally:
        controller.stop()


def test_canary_sync_dry_run_shows_the_diff_and_writes_nothing(
    kube: Kube, namespace: str, local_stack: stack.StackState, upstream: Upstream
) -> None:
    url = upstream.bare.as_uri()
    upstream.commit(_layout(namespace, "podinfo:6.7.0"), "seed layout")
    upstream.commit({"k8s/namespaces/staging.yaml": None}, "no staging namespace")

    preview = _canary_sync(local_stack, url, namespace, "--dry-run")
    assert preview.returncode == 0, preview.stderr
    assert "would create 2" in preview.stdout, preview.stdout
    assert kube.get("apps/v1", "Deployment", "podinfo", namespace=namespace) is None

    applied = _canary_sync(local_stack, url, namespace)
    assert applied.returncode == 0, applied.stderr
    assert ": created 2," in applied.stdout
    status = sync_status(local_stack, namespace)
    assert f"commit:  {upstream.head()}" in status
    assert "objects: 2" in status


def test_on_a_cluster_without_its_namespace_the_controller_creates_it_and_prunes(
    kube: Kube, namespace: str, local_stack: stack.StackState, upstream: Upstream, tmp_path: Path
) -> None:
    """As a new user runs it: durations as flags, and no namespace made beforehand for the sync state."""
    state = f"{namespace}-state"
    assert kube.get("v1", "Namespace", state) is None
    configmap = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings", "namespace": namespace},
                 "data": {"mode": "a"}}
    leftover = {**configmap, "metadata": {"name": "leftover", "namespace": namespace}}
    upstream.commit({"config/settings.yaml": yaml.safe_dump(configmap),
                     "config/leftover.yaml": yaml.safe_dump(leftover)}, "two ConfigMaps")
    controller = ControllerProcess(
        local_stack, namespace, tmp_path,
        extra=("--git-url", upstream.bare.as_uri(), "--git-path", "config", "--git-inventory-namespace", state,
               "--git-poll-interval", "1s", "--git-sync-interval", "5m", "--git-timeout", "1m30s"),
        env={"CANARY_CACHE_DIR": str(tmp_path / "cache")})
    controller.start()
    try:
        wait_until(lambda: kube.get("v1", "ConfigMap", "canary-gitsync-default", namespace=state), bool,
                   what=f"the sync state in the new namespace {state}", timeout=30, interval=0.1)
        assert kube.get("v1", "ConfigMap", "leftover", namespace=namespace) is not None

        upstream.commit({"config/leftover.yaml": None}, "leftover leaves Git")
        wait_until(lambda: kube.get("v1", "ConfigMap", "leftover", namespace=namespace), lambda found: found is None,
                   what="the ConfigMap that left Git to be pruned", timeout=30, interval=0.1)
        assert kube.get("v1", "ConfigMap", "settings", namespace=namespace) is not None
        assert "not found" not in sync_status(local_stack, state)
        assert "namespace created" in controller.log.read_text()
    finally:
        controller.stop()
        kube.delete("v1", "Namespace", state)

