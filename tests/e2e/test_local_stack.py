"""The local stack is a real Kubernetes: its controllers, scheduler, kwok and Prometheus all work."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry, Gauge, start_http_server

from analysis.providers.base import Outcome, QueryResult
from analysis.providers.prometheus import PrometheusProvider
from canary.errors import InvalidObject
from canary.kube.client import Kube
from canary.kube.conditions import is_true
from canary.local import stack
from canary.waiting import wait_until
from tests.builders import make_configmap, make_deployment

DATA = Path(__file__).parent / "data"


def _available(deployment: dict[str, Any] | None) -> dict[str, Any]:
    status = (deployment or {}).get("status", {})
    conditions = {c["type"]: c["status"] for c in status.get("conditions", [])}
    return {"available": conditions.get("Available"), "ready": status.get("readyReplicas", 0),
            "updated": status.get("updatedReplicas", 0), "replicas": status.get("replicas", 0)}


def _rollout_done(seen: dict[str, Any], replicas: int) -> bool:
    return bool(seen["available"] == "True" and seen["ready"] == seen["updated"] == seen["replicas"] == replicas)


def test_deployment_becomes_available_with_three_ready_pods(kube: Kube, namespace: str) -> None:
    kube.create(make_deployment("web", namespace, replicas=3))

    wait_until(lambda: _available(kube.get("apps/v1", "Deployment", "web", namespace=namespace)),
               lambda seen: _rollout_done(seen, 3), what="deployment web to be available", timeout=60)

    pods = kube.list_objects("v1", "Pod", namespace=namespace, label_selector="app=web")
    assert len(pods) == 3
    assert all(p["spec"].get("nodeName", "").startswith("kwok-node-") for p in pods), "the scheduler bound them"
    assert all(p["status"]["phase"] == "Running" for p in pods)
    replicasets = kube.list_objects("apps/v1", "ReplicaSet", namespace=namespace, label_selector="app=web")
    assert [rs["metadata"]["ownerReferences"][0]["name"] for rs in replicasets] == ["web"]


def test_pods_annotated_unready_run_but_never_become_ready(kube: Kube, namespace: str) -> None:
    kube.create(make_deployment("stuck", namespace, replicas=2, annotations={"sim.canary.dev/unready": "true"}))
    kube.create(make_deployment("fine", namespace, replicas=1))

    def phases() -> dict[str, list[tuple[str, str]]]:
        pods = kube.list_objects("v1", "Pod", namespace=namespace)
        return {app: [(p["status"].get("phase", ""), next((c["status"] for c in p["status"].get("conditions", [])
                                                            if c["type"] == "Ready"), ""))
                      for p in pods if p["metadata"]["labels"]["app"] == app] for app in ("stuck", "fine")}

    seen = wait_until(phases, lambda s: s == {"stuck": [("Running", "False")] * 2, "fine": [("Running", "True")]},
                      what="stuck pods running unready and the other ready", timeout=60)
    assert seen["stuck"] == [("Running", "False"), ("Running", "False")]
    assert _available(kube.get("apps/v1", "Deployment", "stuck", namespace=namespace))["ready"] == 0


def test_changing_the_pod_template_rolls_out_a_new_replicaset(kube: Kube, namespace: str) -> None:
    kube.create(make_deployment("web", namespace, replicas=2, image="registry.local/web:1"))
    wait_until(lambda: _available(kube.get("apps/v1", "Deployment", "web", namespace=namespace)),
               lambda seen: _rollout_done(seen, 2), what="the first rollout", timeout=60)

    kube.apply(make_deployment("web", namespace, replicas=2, image="registry.local/web:2"), field_manager="test")

    def replicasets() -> dict[str, int]:
        found = kube.list_objects("apps/v1", "ReplicaSet", namespace=namespace, label_selector="app=web")
        return {rs["spec"]["template"]["spec"]["containers"][0]["image"]: rs["status"].get("readyReplicas", 0)
                for rs in found if rs["spec"]["replicas"] > 0 or rs["status"].get("replicas", 0) > 0}

    seen = wait_until(replicasets, lambda rs: rs == {"registry.local/web:2": 2},
                      what="the new ReplicaSet to take over and the old one to scale to zero", timeout=60)
    assert seen == {"registry.local/web:2": 2}
    all_sets = kube.list_objects("apps/v1", "ReplicaSet", namespace=namespace, label_selector="app=web")
    assert sorted(rs["spec"]["replicas"] for rs in all_sets) == [0, 2]


def test_crd_from_a_yaml_file_is_established_and_its_status_subresource_works(kube: Kube, namespace: str) -> None:
    crd = yaml.safe_load((DATA / "widgets-crd.yaml").read_text())
    kube.apply(crd, field_manager="test")

    wait_until(lambda: kube.get("apiextensions.k8s.io/v1", "CustomResourceDefinition", crd["metadata"]["name"]),
               lambda found: is_true(found, "Established"), what="the Widget CRD to be established", timeout=30)

    widget = {"apiVersion": "test.canary.dev/v1", "kind": "Widget",
              "metadata": {"name": "w", "namespace": namespace}, "spec": {"size": 3}}
    kube.create(widget)
    with pytest.raises(InvalidObject, match=r"spec\.size"):
        kube.create({**widget, "metadata": {"name": "bad", "namespace": namespace}, "spec": {"size": 0}})

    kube.merge_patch("test.canary.dev/v1", "Widget", "w", {"status": {"phase": "Ready"}}, namespace=namespace,
                     subresource="status")
    kube.merge_patch("test.canary.dev/v1", "Widget", "w", {"status": {"phase": "Ignored"}, "spec": {"size": 4}},
                     namespace=namespace)

    stored = kube.get("test.canary.dev/v1", "Widget", "w", namespace=namespace)
    assert stored is not None
    assert stored["status"] == {"phase": "Ready"}, "the main resource must not write status"
    assert stored["spec"] == {"size": 4}


def test_deleting_an_owner_garbage_collects_what_it_owns(kube: Kube, namespace: str) -> None:
    owner = kube.create(make_configmap("owner", namespace))
    kube.create(make_configmap("owned", namespace, owner=owner))
    kube.create(make_configmap("bystander", namespace))

    kube.delete("v1", "ConfigMap", "owner", namespace=namespace)

    wait_until(lambda: kube.get("v1", "ConfigMap", "owned", namespace=namespace), lambda cm: cm is None,
               what="the garbage collector to delete ConfigMap owned", timeout=60)
    assert kube.get("v1", "ConfigMap", "bystander", namespace=namespace) is not None


def test_prometheus_scrapes_a_loopback_target_and_answers_promql(local_stack: stack.StackState) -> None:
    registry = CollectorRegistry()
    gauge = Gauge("canary_test_temperature", "A value the test sets.", ["room"], registry=registry)
    gauge.labels(room="lab").set(42.5)
    gauge.labels(room="hall").set(7)
    server, thread = start_http_server(0, addr="127.0.0.1", registry=registry)
    job = "scrape_test"
    local_stack.add_target(job=job, address=f"127.0.0.1:{server.server_port}")
    provider = PrometheusProvider(local_stack.prometheus_url)
    try:
        result = wait_until(lambda: provider.query(f'canary_test_temperature{{job="{job}",room="lab"}}'),
                            lambda r: r.outcome is Outcome.VALUE, what="Prometheus to scrape the test target",
                            timeout=30)
        assert result == QueryResult(Outcome.VALUE, value=42.5)
        total = provider.query(f'sum(canary_test_temperature{{job="{job}"}})')
        assert total.value == 49.5
        several = provider.query(f'canary_test_temperature{{job="{job}"}}')
        assert several.outcome is Outcome.SEVERAL_SERIES
        assert provider.query('canary_test_temperature{room="attic"}').outcome is Outcome.NO_DATA
    finally:
        local_stack.remove_target(job=job)
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed on this machine")
def test_kubectl_lists_the_kwok_nodes(local_stack: stack.StackState) -> None:
    result = subprocess.run(["kubectl", "get", "nodes", "-o", "name"], capture_output=True, text=True, check=False,
                            env=stack.environ_with(local_stack), timeout=60)
    assert result.returncode == 0, result.stderr
    if not local_stack.external_cluster:
        assert result.stdout.split() == ["node/kwok-node-0", "node/kwok-node-1"]
    else:
        assert result.stdout.strip()
