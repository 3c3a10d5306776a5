"""The namespaced install (manifests/rbac-namespaced): a controller that holds only a Role in its
namespace, as its ServiceAccount, releases a canary there and reads nothing outside it."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from canary.kube.client import Kube
from canary.local import stack
from canary.waiting import wait_until
from tests.builders import make_canary, make_deployment
from tests.e2e import accounts
from tests.e2e.canaries import deployment, image_of, release, wait_phase
from tests.e2e.controllers import ControllerProcess

pytestmark = pytest.mark.usefixtures("gateway_api_crds")
RBAC = Path(__file__).parents[2] / "manifests" / "rbac-namespaced" / "rbac.yaml"


def _install(kube: Kube, namespace: str) -> None:
    """The namespaced install's objects, moved to ``namespace`` as kustomize's ``namespace:`` would."""
    for doc in yaml.safe_load_all(RBAC.read_text()):
        doc["metadata"]["namespace"] = namespace
        for subject in doc.get("subjects") or []:
            subject["namespace"] = namespace
        kube.apply(doc, field_manager="test-namespaced-install")


def test_a_controller_with_only_the_namespaced_role_releases_a_canary_and_refuses_other_namespaces(
    kube: Kube, namespace: str, local_stack: stack.StackState, canary_crds: list[str], tmp_path: Path
) -> None:
    _install(kube, namespace)
    kubeconfig = accounts.kubeconfig(local_stack.kubeconfig, namespace, "canary-controller", tmp_path)
    controller = ControllerProcess(local_stack, namespace, tmp_path, kubeconfig=kubeconfig, extra=(
        "--enable-leader-election", "--leader-election-namespace", namespace))
    controller.start()
    try:
        kube.create(make_deployment("web", namespace, replicas=1, image="web:1"))
        kube.create(make_canary("web", namespace, analysis={"interval": "1s", "threshold": 2, "stepWeight": 50}))
        wait_phase(kube, namespace, "web", "Initialized")
        release(kube, namespace, "web:2")
        wait_phase(kube, namespace, "web", "Succeeded", timeout=60)
        assert image_of(deployment(kube, namespace, "web-primary")) == "web:2"

        elsewhere = make_canary("other", namespace, analysis={"interval": "1s", "threshold": 2, "stepWeight": 50,
            "metrics": [{"name": "errors", "templateRef": {"name": "errors", "namespace": "default"},
                         "thresholdRange": {"max": 1}}]})
        elsewhere["spec"]["targetRef"]["name"] = "other"
        kube.create(make_deployment("other", namespace, replicas=1, image="other:1"))
        kube.create(elsewhere)
        ready = wait_until(
            lambda: next((c for c in (kube.get("canary.dev/v1alpha1", "Canary", "other", namespace=namespace) or {})
                          .get("status", {}).get("conditions") or [] if c["type"] == "Ready"), None),
            lambda c: c is not None and c["status"] == "False", what="the Ready condition of Canary other",
            timeout=30)
        assert ready is not None
        assert ready["reason"] == "CrossNamespaceRef"
        assert "spec.analysis.metrics[0].templateRef.namespace default" in ready["message"]
        assert f"--namespace {namespace}" in ready["message"]
    finally:
        controller.stop()
    # Kuma's TrafficRoute is cluster-scoped: with Kuma's CRDs installed (other tests do), its cache says
    # once that it may not list them, as manifests/rbac-namespaced documents. Nothing else is refused.
    refused = [line for line in controller.log.read_text().splitlines()
               if "forbidden" in line.lower() and "TrafficRoute" not in line]
    assert refused == [], controller.log_tail()
