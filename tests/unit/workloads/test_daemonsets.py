"""DaemonSet targets: the hold that keeps an idle target's pods off every node is not part of the
revision nor of the primary, and readiness follows the DaemonSet's own status."""

from __future__ import annotations

from typing import Any

from canary.workloads.deployments import SCALE_TO_ZERO, TargetState, primary_deployment
from canary.workloads.readiness import daemonset_readiness

TEMPLATE: dict[str, Any] = {"metadata": {"labels": {"app": "web"}},
                            "spec": {"containers": [{"name": "app", "image": "web:1"}]}}


def _daemonset(template: dict[str, Any], **status: int) -> dict[str, Any]:
    return {"metadata": {"name": "web", "namespace": "shop", "generation": 1},
            "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": template},
            "status": {"observedGeneration": 1, **status}}


def test_holding_a_daemonset_changes_neither_its_revision_nor_the_primary() -> None:
    held = {**TEMPLATE, "spec": {**TEMPLATE["spec"], "nodeSelector": {SCALE_TO_ZERO: "true", "disk": "ssd"}}}
    free = {**TEMPLATE, "spec": {**TEMPLATE["spec"], "nodeSelector": {"disk": "ssd"}}}
    state = TargetState(target=_daemonset(held), primary=None, selector=("app", "web"), tracked={}, kind="DaemonSet")
    assert state.held
    assert state.revision == TargetState(target=_daemonset(free), primary=None, selector=("app", "web"),
                                         tracked={}, kind="DaemonSet").revision
    primary = primary_deployment(_daemonset(held), name="web-primary", selector=("app", "web"), tracked=set(),
                                 owner={}, replicas=None, revision=state.revision, kind="DaemonSet")
    assert primary["kind"] == "DaemonSet"
    assert "replicas" not in primary["spec"]
    assert primary["spec"]["template"]["spec"]["nodeSelector"] == {"disk": "ssd"}


def test_a_daemonset_is_ready_when_its_pods_are_updated_and_available_everywhere() -> None:
    assert daemonset_readiness(_daemonset(TEMPLATE, desiredNumberScheduled=2, updatedNumberScheduled=2,
                                          numberAvailable=2), threshold=100).ready
    late = daemonset_readiness(_daemonset(TEMPLATE, desiredNumberScheduled=2, updatedNumberScheduled=1,
                                          numberAvailable=2), threshold=100)
    assert (late.ready, late.message) == (False, "web: 1 of 2 pods updated")
    short = daemonset_readiness(_daemonset(TEMPLATE, desiredNumberScheduled=2, updatedNumberScheduled=2,
                                           numberAvailable=1), threshold=100)
    assert short.message == "web: 1 of 2 pods available (threshold 100%)"
    assert daemonset_readiness(None, threshold=100).message == "daemonset not found"
