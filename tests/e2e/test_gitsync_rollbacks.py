"""Rollbacks that Git knows about, end to end: a release from Git fails its checks, and the controller
reverts it in the repository (``--git-rollback revert``), or, when it cannot push, pins it and says
that Git is ahead of the cluster."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from canary.kube.client import Kube
from canary.local import stack
from canary.waiting import wait_until
from tests.e2e.canaries import canary_status, deployment, events, image_of, wait_phase
from tests.e2e.controllers import ControllerProcess
from tests.e2e.gitrepos import Upstream, git, serving, sync_status
from tests.e2e.receivers import Receiver, receiver

pytestmark = pytest.mark.usefixtures("canary_crds")
SLOW_BOUND = "request-duration<=0"  # a bound no release meets: every analysis fails


def _files(namespace: str, image: str, greeting: str) -> dict[str, str | None]:
    """An annotated Deployment that reads a ConfigMap, written by hand (comments and all)."""
    return {
        "k8s/app/deployment.yaml": f"""\
# podinfo, released as a canary
apiVersion: apps/v1
kind: Deployment
metadata:
  name: podinfo
  namespace: {namespace}
  annotations:
    canary.dev/enabled: "true"
    canary.dev/provider: kubernetes
    canary.dev/strategy: blue-green
    canary.dev/iterations: "2"
    canary.dev/interval: 1s
    canary.dev/threshold: "2"
    canary.dev/metrics: "{SLOW_BOUND}"
spec:
  replicas: 2
  selector:
    matchLabels:
      app: podinfo
  template:
    metadata:
      labels:
        app: podinfo
    spec:
      containers:
        - name: podinfo
          image: {image}  # bumped by CI
          envFrom:
            - configMapRef:
                name: podinfo-settings
""",
        "k8s/app/settings.yaml": f"""\
apiVersion: v1
kind: ConfigMap
metadata:
  name: podinfo-settings
  namespace: {namespace}
data:
  GREETING: {greeting}
""",
    }


def _controller(local_stack: stack.StackState, namespace: str, tmp_path: Path, url: str, alerts: Receiver,
                *flags: str) -> ControllerProcess:
    return ControllerProcess(
        local_stack, namespace, tmp_path,
        extra=("--git-url", url, "--git-path", "k8s", "--git-inventory-namespace", namespace,
               "--git-poll-interval", "1", "--slack-url", alerts.url("/slack"), *flags),
        env={"CANARY_CACHE_DIR": str(tmp_path / "cache")})


def _messages(alerts: Receiver) -> list[str]:
    with alerts.lock:
        return [str(body.get("text") or body) for _, body in alerts.calls]


def test_a_rolled_back_release_is_reverted_in_git_and_the_cluster_and_git_agree(
    kube: Kube, namespace: str, local_stack: stack.StackState, upstream: Upstream, daemon: int, tmp_path: Path
) -> None:
    upstream.commit({**_files(namespace, "podinfo:6.7.0", "hello"), "k8s/app/service.yaml": None}, "seed")
    with receiver() as alerts:
        controller = _controller(local_stack, namespace, tmp_path, f"git://127.0.0.1:{daemon}/app.git", alerts,
                                 "--git-rollback", "revert")
        controller.start()
        try:
            seeded = wait_phase(kube, namespace, "podinfo", "Initialized", timeout=60)
            bad = upstream.commit(_files(namespace, "podinfo:6.7.1", "hola"), "release 6.7.1 in Spanish")
            failed = wait_phase(kube, namespace, "podinfo", "Failed", timeout=60)
            failed_at = time.monotonic()
            assert failed["lastAppliedSpec"] != seeded["lastPromotedSpec"]

            revert = wait_until(upstream.head, lambda head: head != bad,
                                what="the controller to push a revert commit", timeout=30, interval=0.05)
            pushed_in = time.monotonic() - failed_at
            message = git("log", "-1", "--format=%an <%ae>%n%B", revert, cwd=upstream.bare)
            assert message.startswith("canary-controller <canary-controller@canary.dev>\nRevert podinfo to its "
                                      f"promoted revision {seeded['lastPromotedSpec']}"), message
            assert f"Canary {namespace}/podinfo rolled back revision {failed['lastAppliedSpec']}" in message
            assert "\n- request-duration" in message, "the failing check is named"
            assert git("rev-parse", f"{revert}^", cwd=upstream.bare) == bad, "one commit on top of the bad one"
            manifest = git("show", f"{revert}:k8s/app/deployment.yaml", cwd=upstream.bare)
            assert "image: podinfo:6.7.0" in manifest
            assert manifest.startswith("# podinfo, released as a canary\n"), "comments survive the edit"
            assert "# bumped by CI" in manifest
            changed = git("diff", "--stat", bad, revert, cwd=upstream.bare)
            assert "2 files changed, 2 insertions(+), 2 deletions(-)" in changed, changed
            assert "GREETING: hello" in git("show", f"{revert}:k8s/app/settings.yaml", cwd=upstream.bare)

            agreed = wait_until(lambda: canary_status(kube, namespace, "podinfo"),
                                lambda s: s.get("lastAppliedSpec") == s.get("lastPromotedSpec"),
                                what="the engine to see the target back at the promoted revision", timeout=30,
                                interval=0.05)
            print(f"rollback to revert commit: {pushed_in:.2f}s; to the cluster agreeing with Git: "
                  f"{time.monotonic() - failed_at:.2f}s")
            assert agreed["lastPromotedSpec"] == seeded["lastPromotedSpec"]
            assert image_of(deployment(kube, namespace, "podinfo")) == "podinfo:6.7.0"
            settings = kube.get("v1", "ConfigMap", "podinfo-settings", namespace=namespace)
            assert settings is not None
            assert settings["data"] == {"GREETING": "hello"}
            assert deployment(kube, namespace, "podinfo")["spec"]["replicas"] == 0, "nothing is released"
            assert "Git and the cluster agree: commit " + revert[:12] in sync_status(local_stack, namespace)
            assert any(e["reason"] == "GitReverted" for e in events(kube, namespace, "podinfo"))
            wait_until(lambda: [m for m in _messages(alerts) if "Reverted in Git" in m], bool,
                       what="the revert alert", timeout=10, interval=0.1)

            upstream.commit({"k8s/app/notes.txt": "not a manifest\n"}, "an unrelated commit")
            wait_until(lambda: kube.get("v1", "ConfigMap", "canary-gitsync-default", namespace=namespace) or {},
                       lambda cm: upstream.head() in cm.get("data", {}).get("inventory.json", ""),
                       what="the unrelated commit to be synced", timeout=30, interval=0.2)
            final = canary_status(kube, namespace, "podinfo")
            assert final["phase"] == "Failed", "no release started: the revert was judged as one revision"
            assert final["lastAppliedSpec"] == final["lastPromotedSpec"] == seeded["lastPromotedSpec"]
            assert git("rev-parse", "refs/heads/main^", cwd=upstream.bare) == revert, "nothing more was pushed"
        finally:
            controller.stop()


def test_without_write_access_revert_falls_back_to_pin_and_says_git_is_ahead(
    kube: Kube, namespace: str, local_stack: stack.StackState, upstream: Upstream, tmp_path: Path
) -> None:
    upstream.commit({**_files(namespace, "podinfo:6.7.0", "hello"), "k8s/app/service.yaml": None}, "seed")
    with receiver() as alerts, serving(tmp_path, push=False) as port:
        controller = _controller(local_stack, namespace, tmp_path, f"git://127.0.0.1:{port}/app.git", alerts,
                                 "--git-rollback", "revert")
        controller.start()
        try:
            wait_phase(kube, namespace, "podinfo", "Initialized", timeout=60)
            bad = upstream.commit(_files(namespace, "podinfo:6.7.1", "hola"), "release 6.7.1")
            wait_phase(kube, namespace, "podinfo", "Failed", timeout=60)

            ahead = wait_until(lambda: [m for m in _messages(alerts) if "Git is ahead of the cluster" in m], bool,
                               what="the alert that Git is ahead", timeout=30, interval=0.1)
            assert f"at commit {bad[:12]}" in ahead[0]
            assert "revert not possible" in ahead[0], ahead[0]
            assert "refused" in ahead[0], ahead[0]
            status = sync_status(local_stack, namespace)
            assert "Git is ahead of the cluster: Canary" in status, status
            assert "revert not possible" in status, status
            assert any(e["reason"] == "GitAhead" for e in events(kube, namespace, "podinfo"))
            assert upstream.head() == bad, "nothing was pushed"
            assert image_of(deployment(kube, namespace, "podinfo-primary")) == "podinfo:6.7.0"
            with pytest.raises(TimeoutError):
                wait_phase(kube, namespace, "podinfo", "Progressing", timeout=3)
            assert len([m for m in _messages(alerts) if "Git is ahead" in m]) == 1, "said once"
        finally:
            controller.stop()
