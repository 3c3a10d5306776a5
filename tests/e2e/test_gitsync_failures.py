"""The controller's Git sync when a pass fails: a commit with broken YAML, a remote that stops
answering and an unsigned commit each leave the cluster as it was, and say why (``canary sync
status``, the log, the failures metric); the sync resumes once the cause is gone.

Each test drives a real ``canary controller`` process polling a real repository through git daemon.
"""

from __future__ import annotations

import base64
import itertools
import json
from datetime import datetime
from pathlib import Path

import pytest
import yaml

from canary.gitsync.config import DEFAULT_SOURCE
from canary.gitsync.inventory import Inventory, KubeInventoryStore, SyncState
from canary.kube.client import Kube
from canary.local import stack
from canary.local.ports import free_ports
from canary.waiting import wait_until
from tests.e2e.controllers import ControllerProcess, metric_total
from tests.e2e.gitrepos import GitDaemon, Upstream, have_ssh_signing, signed_by, ssh_key, sync_status

pytestmark = pytest.mark.usefixtures("canary_crds")
FAILURES = "canary_gitsync_failures_total"


def _layout(namespace: str, *, release: str) -> dict[str, str | None]:
    """A Deployment, a Service and two ConfigMaps; ``release`` shows in the image and in ``settings``."""
    deploy = {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": namespace},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}},
                              "spec": {"containers": [{"name": "web", "image": f"podinfo:{release}"}]}}},
    }
    settings = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings", "namespace": namespace},
                "data": {"release": release}}
    extra = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "extra", "namespace": namespace},
             "data": {"kept": "until it leaves Git"}}
    return {"k8s/app/deployment.yaml": yaml.safe_dump(deploy), "k8s/app/service.yaml": _service(namespace),
            "k8s/app/settings.yaml": yaml.safe_dump(settings), "k8s/app/extra.yaml": yaml.safe_dump(extra)}


def _service(namespace: str) -> str:
    return yaml.safe_dump({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": namespace},
                           "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 9898}]}},
                          sort_keys=False)


def _broken_service(namespace: str) -> str:
    """The Service with ``namespace`` (line 5) indented one space too far."""
    broken = _service(namespace).replace(f"  namespace: {namespace}", f"   namespace: {namespace}")
    assert broken.splitlines()[4] == f"   namespace: {namespace}"
    return broken


def _fingerprint(kube: Kube, namespace: str) -> dict[str, str | None]:
    """What changes when the sync writes an object: its resourceVersion, or for the Deployment (whose
    status the cluster keeps writing) its generation and image. None for an object that is gone."""
    found: dict[str, str | None] = {}
    for kind, name in (("ConfigMap", "settings"), ("ConfigMap", "extra"), ("Service", "web")):
        obj = kube.get("v1", kind, name, namespace=namespace)
        found[f"{kind}/{name}"] = obj["metadata"]["resourceVersion"] if obj else None
    deploy = kube.get("apps/v1", "Deployment", "web", namespace=namespace)
    found["Deployment/web"] = (None if deploy is None else f"generation {deploy['metadata']['generation']}, image "
                               f"{deploy['spec']['template']['spec']['containers'][0]['image']}")
    return found


def _release(kube: Kube, namespace: str) -> str | None:
    """The ``release`` in the ``settings`` ConfigMap."""
    found = kube.get("v1", "ConfigMap", "settings", namespace=namespace)
    return None if found is None else str(found["data"]["release"])


def _inventory(kube: Kube, namespace: str) -> Inventory | None:
    return KubeInventoryStore(SyncState(kube, namespace)).load(DEFAULT_SOURCE)


def _wait_synced(kube: Kube, namespace: str, commit: str, *, timeout: float = 30) -> Inventory:
    """Wait until the inventory records a clean sync of ``commit``."""
    found = wait_until(lambda: _inventory(kube, namespace),
                       lambda inv: inv is not None and inv.revision == commit and inv.last_error is None,
                       what=f"the controller to sync commit {commit}", timeout=timeout, interval=0.1)
    assert found is not None
    return found


def _controller(local_stack: stack.StackState, namespace: str, folder: Path, url: str,
                *extra: str) -> ControllerProcess:
    return ControllerProcess(
        local_stack, namespace, folder,
        extra=("--git-url", url, "--git-path", "k8s", "--git-inventory-namespace", namespace,
               "--git-poll-interval", "1", *extra),
        env={"CANARY_CACHE_DIR": str(folder / "cache")})


def _log_events(controller: ControllerProcess, event: str) -> list[dict[str, object]]:
    """The controller's JSON log lines whose event starts with ``event``, in order."""
    found = []
    for line in controller.log.read_text(errors="replace").splitlines():
        if not line.startswith("{"):
            continue
        entry = json.loads(line)
        if str(entry.get("event")).startswith(event):
            found.append(entry)
    return found


def test_a_commit_with_broken_yaml_applies_and_prunes_nothing_until_a_fix_is_committed(
    kube: Kube, namespace: str, local_stack: stack.StackState, upstream: Upstream, daemon: int, tmp_path: Path
) -> None:
    seed = upstream.commit(_layout(namespace, release="1.0.0"), "seed layout")
    controller = _controller(local_stack, namespace, tmp_path / "controller", f"git://127.0.0.1:{daemon}/app.git")
    controller.start()
    try:
        _wait_synced(kube, namespace, seed)
        before = _fingerprint(kube, namespace)

        # The Deployment and a ConfigMap change, a ConfigMap leaves Git, and the Service is broken.
        changes = {**_layout(namespace, release="2.0.0"), "k8s/app/service.yaml": _broken_service(namespace),
                   "k8s/app/extra.yaml": None}
        upstream.commit(changes, "release 2.0.0 with a broken Service")
        failed = wait_until(lambda: _inventory(kube, namespace), lambda inv: inv is not None and bool(inv.last_error),
                            what="the broken commit to be recorded as failed", timeout=30, interval=0.1)
        assert failed is not None
        assert failed.revision == seed
        assert _fingerprint(kube, namespace) == before, "a broken commit applied or pruned something"

        status = sync_status(local_stack, namespace)
        assert f"commit:  {seed}" in status, status
        assert ("error:   k8s/app/service.yaml, document 1: YAML error at line 5: mapping values are not allowed "
                "here") in status, status

        fixed = upstream.commit({"k8s/app/service.yaml": _service(namespace)}, "fix the Service's indentation")
        _wait_synced(kube, namespace, fixed)
        assert _release(kube, namespace) == "2.0.0"
        assert kube.get("v1", "ConfigMap", "extra", namespace=namespace) is None, "the fix prunes what left Git"
        status = sync_status(local_stack, namespace)
        assert f"commit:  {fixed}" in status, status
        assert "error:   -" in status, status
    finally:
        controller.stop()


def test_an_unreachable_remote_leaves_the_cluster_alone_and_is_retried_with_backoff_until_it_returns(
    kube: Kube, namespace: str, local_stack: stack.StackState, upstream: Upstream, tmp_path: Path
) -> None:
    (port,) = free_ports(1)
    daemon = GitDaemon(served=upstream.bare.parent, port=port, log=tmp_path / "git-daemon.log")
    daemon.start()
    seed = upstream.commit(_layout(namespace, release="1.0.0"), "seed layout")
    controller = _controller(local_stack, namespace, tmp_path / "controller", f"git://127.0.0.1:{port}/app.git")
    try:
        controller.start()
        _wait_synced(kube, namespace, seed)
        before = _fingerprint(kube, namespace)
        assert metric_total(controller, FAILURES, source=DEFAULT_SOURCE) == 0

        daemon.stop()
        pushed = upstream.commit(_layout(namespace, release="2.0.0"), "release 2.0.0 while the remote is down")
        failures = wait_until(lambda: _log_events(controller, "git remote unreachable"), lambda found: len(found) >= 3,
                              what="three failed polls of the remote", timeout=30, interval=0.1)
        assert metric_total(controller, FAILURES, source=DEFAULT_SOURCE) >= 3
        delays = [float(str(entry["retry_in"])) for entry in failures]
        assert delays[:3] == [2.0, 4.0, 8.0], delays
        times = [datetime.fromisoformat(str(entry["timestamp"])) for entry in failures[:3]]
        gaps = [(later - earlier).total_seconds() for earlier, later in itertools.pairwise(times)]
        assert all(gap >= delay - 0.1 for gap, delay in zip(gaps, delays[:2], strict=True)), (gaps, delays)
        assert _fingerprint(kube, namespace) == before, "an unreachable remote changed the cluster"
        inventory = _inventory(kube, namespace)
        assert inventory is not None
        assert inventory.revision == seed
        assert "error:   remote unreachable (" in sync_status(local_stack, namespace)

        daemon.start()
        _wait_synced(kube, namespace, pushed, timeout=30)
        assert _release(kube, namespace) == "2.0.0"
    finally:
        controller.stop()
        daemon.stop()


@pytest.mark.skipif(not have_ssh_signing(), reason="ssh-keygen cannot sign (OpenSSH 8.2 or later is needed)")
def test_with_allowed_signers_in_the_git_secret_a_signed_commit_is_applied_and_an_unsigned_one_is_not(
    kube: Kube, namespace: str, local_stack: stack.StackState, upstream: Upstream, daemon: int, tmp_path: Path
) -> None:
    trusted, public = ssh_key(tmp_path, "trusted")
    signers = base64.b64encode(f"dev@example.com {public}\n".encode()).decode()
    kube.create({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "git", "namespace": namespace},
                 "data": {"allowed_signers": signers}})
    signed = upstream.commit(_layout(namespace, release="1.0.0"), "signed release 1.0.0", *signed_by(trusted))
    controller = _controller(local_stack, namespace, tmp_path / "controller", f"git://127.0.0.1:{daemon}/app.git",
                             "--git-secret", f"{namespace}/git")
    controller.start()
    try:
        _wait_synced(kube, namespace, signed)
        before = _fingerprint(kube, namespace)

        unsigned = upstream.commit(_layout(namespace, release="6.6.6"), "unsigned release 6.6.6")
        wait_until(lambda: metric_total(controller, FAILURES, source=DEFAULT_SOURCE), lambda total: total >= 1,
                   what="the controller to refuse the unsigned commit", timeout=30, interval=0.1)
        assert _fingerprint(kube, namespace) == before, "an unsigned commit changed the cluster"
        assert _release(kube, namespace) == "1.0.0"

        status = sync_status(local_stack, namespace)
        assert f"commit:  {signed}" in status, status
        assert (f"commit {unsigned} of refs/heads/main failed ssh signature verification: it is not signed"
                in status), status

        resigned = upstream.commit(_layout(namespace, release="2.0.0"), "signed release 2.0.0",
                                   *signed_by(trusted))
        _wait_synced(kube, namespace, resigned)
        assert _release(kube, namespace) == "2.0.0"
        assert "error:   -" in sync_status(local_stack, namespace)
    finally:
        controller.stop()
