"""Sharding: controllers started with --shard split the Canaries by their canary.dev/shard label, each
shard with a Lease of its own, so that each canary is handled by exactly one process and a shard's
standby takes over when its leader dies."""

from __future__ import annotations

from pathlib import Path

from canary.kube import Obj
from canary.kube.client import Kube
from canary.local import stack
from canary.waiting import wait_until
from tests.builders import make_canary, make_deployment
from tests.e2e.canaries import deployment, image_of, release, wait_phase
from tests.e2e.controllers import ControllerProcess, metric_total


def _holder(kube: Kube, namespace: str, lease: str) -> str | None:
    found = kube.get("coordination.k8s.io/v1", "Lease", lease, namespace=namespace)
    return None if found is None else found["spec"].get("holderIdentity")


def _sharded_canary(name: str, namespace: str, shard: str) -> Obj:
    canary = make_canary(name, namespace, provider="kubernetes",
                         analysis={"interval": "1s", "threshold": 2, "iterations": 2})
    canary["metadata"]["labels"] = {"canary.dev/shard": shard}
    return canary


def test_two_shards_each_handle_their_own_canaries_and_a_standby_takes_over(
    kube: Kube, namespace: str, local_stack: stack.StackState, canary_crds: list[str], tmp_path: Path
) -> None:
    election = ("--enable-leader-election", "--leader-election-namespace", namespace,
                "--leader-election-lease-seconds", "4")
    shard_a = ControllerProcess(local_stack, namespace, tmp_path, name="a-leader", extra=(*election, "--shard", "a"))
    standby = ControllerProcess(local_stack, namespace, tmp_path, name="a-standby", extra=(*election, "--shard", "a"))
    shard_b = ControllerProcess(local_stack, namespace, tmp_path, name="b", extra=(*election, "--shard", "b"))
    shard_a.start()
    try:
        first = wait_until(lambda: _holder(kube, namespace, "canary-controller-a"), bool,
                           what="shard a's first replica to lead", timeout=30)
        standby.start()
        shard_b.start()
        for name, shard in (("web-a", "a"), ("web-b", "b")):
            kube.create(make_deployment(name, namespace, replicas=1, image=f"{name}:1"))
            kube.create(_sharded_canary(name, namespace, shard))
        wait_phase(kube, namespace, "web-a", "Initialized")
        wait_phase(kube, namespace, "web-b", "Initialized")
        assert _holder(kube, namespace, "canary-controller-b"), "shard b has a Lease of its own"
        assert metric_total(shard_a, "canary_weight", name="web-a", workload="web-a-primary") == 100
        assert metric_total(shard_a, "canary_weight", name="web-b", workload="web-b-primary") == 0, \
            "shard a never ticks shard b's canary"
        assert metric_total(shard_b, "canary_weight", name="web-b", workload="web-b-primary") == 100
        assert metric_total(shard_b, "canary_weight", name="web-a", workload="web-a-primary") == 0
        assert metric_total(standby, "canary_ticks_total", result="ok") == 0, "the standby waits"

        shard_a.kill()
        wait_until(lambda: _holder(kube, namespace, "canary-controller-a"),
                   lambda holder: holder not in (None, first), what="the standby to take shard a over", timeout=30)
        release(kube, namespace, "web-a:2", name="web-a")
        release(kube, namespace, "web-b:2", name="web-b")
        wait_phase(kube, namespace, "web-a", "Succeeded", timeout=60)
        wait_phase(kube, namespace, "web-b", "Succeeded", timeout=60)
        assert image_of(deployment(kube, namespace, "web-a-primary")) == "web-a:2"
        assert metric_total(standby, "canary_weight", name="web-b", workload="web-b-primary") == 0
    finally:
        for process in (shard_b, standby, shard_a):
            process.stop()
