"""Lifecycle on the real control plane: annotations, deletion, manual controls, restarts, leadership."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from canary.kube import Obj
from canary.kube.cache import Informer
from canary.kube.client import Kube
from canary.local import stack
from canary.models.base import API_VERSION
from canary.waiting import wait_until
from tests.builders import make_canary, make_deployment
from tests.e2e.canaries import canary_status, deployment, events, image_of, release, route_weights, wait_phase
from tests.e2e.controllers import ControllerProcess, metric_total
from tests.e2e.receivers import receiver

pytestmark = pytest.mark.usefixtures("gateway_api_crds")
# kube-controller-manager's garbage collector finds new kinds on a 30 s discovery resync and waits for
# its monitors after CRDs are installed (the router tests install several): give it two rounds and more.
GC_TIMEOUT = 150




def _canary_cli(local_stack: stack.StackState, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "canary", *args, "--kubeconfig", local_stack.kubeconfig],
                          capture_output=True, text=True, check=False, timeout=60)


def test_an_annotated_deployment_gets_its_canary_and_is_promoted(
    kube: Kube, namespace: str, controller: ControllerProcess
) -> None:
    annotations = {"canary.dev/enabled": "true", "canary.dev/provider": "gatewayapi", "canary.dev/interval": "1s",
                   "canary.dev/step-weight": "25", "canary.dev/max-weight": "50", "canary.dev/threshold": "2"}
    target = make_deployment("web", namespace, replicas=1, image="web:1")
    target["metadata"]["annotations"] = annotations
    kube.create(target)

    wait_phase(kube, namespace, "web", "Initialized")
    generated = kube.get("canary.dev/v1alpha1", "Canary", "web", namespace=namespace)
    assert generated is not None
    assert generated["metadata"]["ownerReferences"][0]["kind"] == "Deployment"
    assert generated["spec"]["analysis"] == {"interval": "1s", "threshold": 2, "stepWeight": 25, "maxWeight": 50}
    assert generated["spec"]["service"] == {"port": 9898}

    kube.merge_patch("apps/v1", "Deployment", "web", {"metadata": {"annotations": {"canary.dev/step-weight": "50"}}},
                     namespace=namespace)
    wait_until(lambda: kube.get("canary.dev/v1alpha1", "Canary", "web", namespace=namespace),
               lambda c: c is not None and c["spec"]["analysis"].get("stepWeight") == 50,
               what="the generated Canary to follow the annotation edit", timeout=30)

    release(kube, namespace, "web:2")
    wait_phase(kube, namespace, "web", "Succeeded", timeout=60)
    assert image_of(deployment(kube, namespace, "web-primary")) == "web:2"

    explicit = make_deployment("api", namespace, replicas=1)
    explicit["metadata"]["annotations"] = {"canary.dev/enabled": "true"}
    kube.create(make_canary("api-release", namespace) | {"spec": make_canary("api", namespace)["spec"]})
    kube.create(explicit)
    wait_until(lambda: [e for e in kube.list_objects("v1", "Event", namespace=namespace)
                        if e["involvedObject"]["name"] == "api" and e["reason"] == "CanaryExists"],
               bool, what="a CanaryExists event on Deployment api", timeout=30)
    assert kube.get("canary.dev/v1alpha1", "Canary", "api", namespace=namespace) is None


def test_deleting_a_canary_collects_what_it_made_and_revert_on_deletion_restores_the_target(
    kube: Kube, namespace: str, controller: ControllerProcess
) -> None:
    kube.create(make_deployment("web", namespace, replicas=2, image="web:1"))
    kube.create(make_canary("web", namespace))
    wait_phase(kube, namespace, "web", "Initialized")
    kube.delete("canary.dev/v1alpha1", "Canary", "web", namespace=namespace)
    wait_until(lambda: [n for n in ("web-primary",) if kube.get("apps/v1", "Deployment", n, namespace=namespace)]
               + [s["metadata"]["name"] for s in kube.list_objects("v1", "Service", namespace=namespace)],
               lambda left: left == [], what="the garbage collector to remove the primary and the Services",
               timeout=GC_TIMEOUT)
    assert kube.get("gateway.networking.k8s.io/v1", "HTTPRoute", "web", namespace=namespace) is None

    kube.create(make_deployment("api", namespace, replicas=2, image="api:1"))
    kube.create(make_canary("api", namespace, revertOnDeletion=True))
    wait_phase(kube, namespace, "api", "Initialized")
    assert deployment(kube, namespace, "api")["spec"]["replicas"] == 0
    found = kube.get("canary.dev/v1alpha1", "Canary", "api", namespace=namespace)
    assert found is not None
    assert found["metadata"]["finalizers"] == ["canary.dev/finalizer"]

    kube.delete("canary.dev/v1alpha1", "Canary", "api", namespace=namespace)
    wait_until(lambda: kube.get("canary.dev/v1alpha1", "Canary", "api", namespace=namespace), lambda c: c is None,
               what="the Canary to be deleted after the revert", timeout=60)
    restored = deployment(kube, namespace, "api")
    assert restored["spec"]["replicas"] == 2
    apex = kube.get("v1", "Service", "api", namespace=namespace)
    assert apex is not None
    assert apex["spec"]["selector"] == {"app": "api"}
    assert not apex["metadata"].get("ownerReferences")
    wait_until(lambda: kube.get("apps/v1", "Deployment", "api-primary", namespace=namespace), lambda d: d is None,
               what="the primary to be collected", timeout=GC_TIMEOUT)


def test_manual_controls_pause_resume_promote_abort_and_retry(
    kube: Kube, namespace: str, controller: ControllerProcess, local_stack: stack.StackState
) -> None:
    kube.create(make_deployment("web", namespace, replicas=1, image="web:1"))
    kube.create(make_canary("web", namespace, analysis={"interval": "1s", "threshold": 2, "stepWeight": 5}))
    wait_phase(kube, namespace, "web", "Initialized")

    release(kube, namespace, "web:2")
    wait_until(lambda: route_weights(kube, namespace, "web"), lambda w: w is not None and w[1] >= 10,
               what="the canary to get traffic", timeout=30)
    paused = _canary_cli(local_stack, "pause", "web", "-n", namespace)
    assert paused.returncode == 0, paused.stderr
    wait_until(lambda: canary_status(kube, namespace, "web").get("conditions", []),
               lambda found: any(c.get("reason") == "Suspended" for c in found),
               what="the controller to report the pause", timeout=10)
    held = route_weights(kube, namespace, "web")
    with pytest.raises(TimeoutError):
        wait_until(lambda: route_weights(kube, namespace, "web"), lambda w: w != held,
                   what="the weight to move while paused", timeout=3)
    assert _canary_cli(local_stack, "resume", "web", "-n", namespace).returncode == 0

    promoted = _canary_cli(local_stack, "promote", "web", "-n", namespace)
    assert promoted.returncode == 0, promoted.stderr
    assert "promote of Canary" in promoted.stderr
    wait_phase(kube, namespace, "web", "Succeeded", timeout=60)
    assert image_of(deployment(kube, namespace, "web-primary")) == "web:2"

    release(kube, namespace, "web:3")
    wait_phase(kube, namespace, "web", "Progressing")
    aborted = _canary_cli(local_stack, "abort", "web", "-n", namespace)
    assert aborted.returncode == 0, aborted.stderr
    wait_phase(kube, namespace, "web", "Failed")
    assert image_of(deployment(kube, namespace, "web-primary")) == "web:2"

    retried = _canary_cli(local_stack, "retry", "web", "-n", namespace)
    assert retried.returncode == 0, retried.stderr
    wait_phase(kube, namespace, "web", "Succeeded", timeout=90)
    assert image_of(deployment(kube, namespace, "web-primary")) == "web:3"

    shown = _canary_cli(local_stack, "status", "-n", namespace)
    assert shown.returncode == 0, shown.stderr
    assert "web" in shown.stdout
    assert "Succeeded" in shown.stdout
    assert any(e["reason"] == "Failed" for e in events(kube, namespace, "web"))

    # The same through kubectl, which finds the kubectl-canary plugin the package installs on PATH.
    kubectl = shutil.which("kubectl")
    assert kubectl is not None, "kubectl is on PATH where the examples and this test run"
    path = f"{Path(sys.executable).parent}:{os.environ['PATH']}"
    plugin = subprocess.run([kubectl, "canary", "status", "-n", namespace], capture_output=True, text=True,
                            check=False, timeout=60,
                            env={**os.environ, "KUBECONFIG": local_stack.kubeconfig, "PATH": path})
    assert plugin.returncode == 0, plugin.stderr
    assert plugin.stdout.splitlines()[0] == shown.stdout.splitlines()[0], "the same table"
    assert "web" in plugin.stdout
    assert "Succeeded" in plugin.stdout


def test_a_controller_killed_mid_run_resumes_and_finishes_the_run(
    kube: Kube, namespace: str, local_stack: stack.StackState, canary_crds: list[str], tmp_path: Path
) -> None:
    first = ControllerProcess(local_stack, namespace, tmp_path, name="first")
    first.start()
    kube.create(make_deployment("web", namespace, replicas=1, image="web:1"))
    kube.create(make_canary("web", namespace, analysis={"interval": "1s", "threshold": 2, "stepWeight": 10}))
    wait_phase(kube, namespace, "web", "Initialized")
    release(kube, namespace, "web:2")
    wait_until(lambda: route_weights(kube, namespace, "web"), lambda w: w is not None and w[1] >= 30,
               what="the run to be under way", timeout=30)
    first.kill()
    frozen = route_weights(kube, namespace, "web")
    assert frozen is not None

    second = ControllerProcess(local_stack, namespace, tmp_path, name="second")
    second.start()
    try:
        done = wait_phase(kube, namespace, "web", "Succeeded", timeout=60)
    finally:
        second.stop()
    assert done["lastPromotedSpec"] == done["lastAppliedSpec"]
    assert image_of(deployment(kube, namespace, "web-primary")) == "web:2"
    assert frozen[1] < 100


def test_an_alert_with_nowhere_to_go_but_the_log_is_logged_and_never_written_into_the_status(
    kube: Kube, namespace: str, controller: ControllerProcess  # no --slack-url, no default AlertProvider
) -> None:
    initialised = "New Deployment detected, initialization completed."
    statuses: list[Obj] = []  # every version of the Canary's status, from a watch
    canaries = Informer(kube, API_VERSION, "Canary", namespace=namespace)
    canaries.subscribe(lambda event, obj: statuses.append(dict(obj.get("status") or {})))
    canaries.start()
    try:
        kube.create(make_deployment("web", namespace, replicas=1, image="web:1"))
        kube.create(make_canary("web", namespace, analysis={"interval": "1s", "threshold": 2, "stepWeight": 50}))
        wait_phase(kube, namespace, "web", "Initialized")
        wait_until(lambda: controller.log.read_text(errors="replace"), lambda text: initialised in text,
                   what="the alert in the controller's log", timeout=10, interval=0.1)
        wait_until(lambda: statuses, lambda seen: any(s.get("phase") == "Initialized" for s in seen),
                   what="the watch to see the Canary Initialized", timeout=10, interval=0.1)
    finally:
        canaries.stop()
    assert [s["pendingAlerts"] for s in statuses if s.get("pendingAlerts")] == [], \
        "an alert only the log hears is not kept for delivery"


def test_an_alert_whose_delivery_a_kill_interrupted_is_sent_by_the_next_controller(
    kube: Kube, namespace: str, local_stack: stack.StackState, canary_crds: list[str], tmp_path: Path
) -> None:
    initialised = "New Deployment detected, initialization completed."
    with socket.create_server(("127.0.0.1", 0)) as silent:  # takes the alert's connection, never answers
        silent.settimeout(60)
        first = ControllerProcess(local_stack, namespace, tmp_path, name="first",
                                  extra=("--slack-url", f"http://127.0.0.1:{silent.getsockname()[1]}/chat"))
        first.start()
        try:
            kube.create(make_deployment("web", namespace, replicas=1, image="web:1"))
            kube.create(make_canary("web", namespace, analysis={"interval": "1s", "threshold": 2, "stepWeight": 50}))
            status = wait_phase(kube, namespace, "web", "Initialized")
            connection, _ = silent.accept()  # the delivery is under way
            with connection:
                assert [a["message"] for a in status.get("pendingAlerts") or []] == [initialised], \
                    "written with the transition, before the delivery"
                first.kill()
        finally:
            first.stop()

    with receiver() as chat:
        second = ControllerProcess(local_stack, namespace, tmp_path, name="second",
                                   extra=("--slack-url", chat.url("/chat")))
        second.start()
        try:
            wait_until(lambda: canary_status(kube, namespace, "web").get("pendingAlerts"), lambda pending: not pending,
                       what="the pending alert to be delivered and removed", timeout=30)
        finally:
            second.stop()
        bodies = [json.dumps(body) for _, body in chat.calls]
    assert sum(initialised in body for body in bodies) == 1, bodies


def test_with_two_replicas_only_the_leader_acts_and_the_other_takes_over_when_it_dies(
    kube: Kube, namespace: str, local_stack: stack.StackState, canary_crds: list[str], tmp_path: Path
) -> None:
    election = ("--enable-leader-election", "--leader-election-namespace", namespace,
                "--leader-election-lease-seconds", "4")
    first = ControllerProcess(local_stack, namespace, tmp_path, extra=election, name="first")
    first.start()
    wait_until(lambda: kube.get("coordination.k8s.io/v1", "Lease", "canary-controller", namespace=namespace),
               lambda lease: lease is not None and bool(lease["spec"].get("holderIdentity")),
               what="the first replica to take the lease", timeout=30)
    second = ControllerProcess(local_stack, namespace, tmp_path, extra=election, name="second")
    second.start()
    try:
        kube.create(make_deployment("web", namespace, replicas=1, image="web:1"))
        kube.create(make_canary("web", namespace, analysis={"interval": "1s", "threshold": 2, "stepWeight": 50}))
        wait_phase(kube, namespace, "web", "Initialized")
        lease = kube.get("coordination.k8s.io/v1", "Lease", "canary-controller", namespace=namespace)
        assert lease is not None
        leader = lease["spec"]["holderIdentity"]
        wait_until(lambda: metric_total(first, "canary_ticks_total"), lambda ticks: ticks >= 2,
                   what="the leader to tick", timeout=10)
        assert metric_total(second, "canary_ticks_total") == 0, "the follower must not act"
        assert metric_total(second, "canary_leader") == 0

        first.kill()
        wait_until(lambda: kube.get("coordination.k8s.io/v1", "Lease", "canary-controller", namespace=namespace),
                   lambda lease: lease is not None and lease["spec"].get("holderIdentity") not in (None, leader),
                   what="the second replica to take the lease over", timeout=30)
        release(kube, namespace, "web:2")
        wait_phase(kube, namespace, "web", "Succeeded", timeout=60)
        assert image_of(deployment(kube, namespace, "web-primary")) == "web:2"
    finally:
        second.stop()
        first.stop()


def test_requests_are_handled_at_once_and_refusals_say_why(
    kube: Kube, namespace: str, controller: ControllerProcess, local_stack: stack.StackState
) -> None:
    # A 1m interval: a request that waited for the next tick would time out the 20 s the CLI waits.
    kube.create(make_deployment("web", namespace, replicas=1, image="web:1"))
    kube.create(make_canary("web", namespace, analysis={"interval": "1m", "threshold": 2, "stepWeight": 5}))
    wait_phase(kube, namespace, "web", "Initialized")
    release(kube, namespace, "web:2")
    wait_phase(kube, namespace, "web", "Progressing", timeout=20)

    aborted = _canary_cli(local_stack, "abort", "web", "-n", namespace, "--wait", "20s")
    assert aborted.returncode == 0, aborted.stderr
    assert canary_status(kube, namespace, "web")["phase"] == "Failed"
    assert metric_total(controller, "canary_status", name="web", namespace=namespace) == 2
    assert metric_total(controller, "canary_weight", name="web", namespace=namespace, workload="web-primary") == 100
    assert metric_total(controller, "canary_weight", name="web", namespace=namespace, workload="web") == 0

    refused = _canary_cli(local_stack, "promote", "web", "-n", namespace, "--wait", "20s")
    assert refused.returncode == 1, refused.stderr
    assert "promote refused: the canary is Failed" in refused.stderr, refused.stderr

    retried = _canary_cli(local_stack, "retry", "web", "-n", namespace, "--wait", "20s")
    assert retried.returncode == 0, retried.stderr
    assert "retry of Canary" in retried.stderr
    assert metric_total(controller, "canary_status", name="web", namespace=namespace) == 0, "running again"

    # A Canary the controller will not act on answers a request with its problem, not a timeout.
    kube.create(make_canary("web-again", namespace) | {"spec": make_canary("web", namespace)["spec"]})
    wait_until(lambda: canary_status(kube, namespace, "web-again").get("conditions", []),
               lambda found: any(c.get("reason") == "TargetConflict" for c in found),
               what="the second Canary to be reported as a conflict", timeout=20)
    conflicted = _canary_cli(local_stack, "promote", "web-again", "-n", namespace, "--wait", "20s")
    assert conflicted.returncode == 1, conflicted.stderr
    assert "promote refused" in conflicted.stderr
    assert "already the target of Canary web" in conflicted.stderr, conflicted.stderr


def test_a_release_made_while_the_canary_initialises_is_run_not_lost(
    kube: Kube, namespace: str, controller: ControllerProcess
) -> None:
    kube.create(make_deployment("web", namespace, replicas=3, image="web:1"))
    kube.create(make_canary("web", namespace))
    wait_until(lambda: kube.get("apps/v1", "Deployment", "web-primary", namespace=namespace), bool,
               what="the primary to be made", timeout=30, interval=0.05)
    release(kube, namespace, "web:2")  # while the primary made from web:1 starts

    done = wait_phase(kube, namespace, "web", "Succeeded", timeout=60)
    assert image_of(deployment(kube, namespace, "web-primary")) == "web:2"
    assert done["lastPromotedSpec"] == done["lastAppliedSpec"]
    assert deployment(kube, namespace, "web-primary")["metadata"]["annotations"]["canary.dev/revision"] == \
        done["lastPromotedSpec"], "the primary says which revision it runs"
