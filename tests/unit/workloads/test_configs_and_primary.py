from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from canary.errors import PermanentError
from canary.workloads import configs
from canary.workloads.configs import ConfigRef
from canary.workloads.deployments import primary_deployment, selector_label
from canary.workloads.readiness import Readiness, deployment_readiness
from canary.workloads.revision import revision
from tests.builders import make_deployment

POD_SPEC: dict[str, Any] = {
    "volumes": [{"name": "cfg", "configMap": {"name": "settings"}},
                {"name": "tls", "secret": {"secretName": "tls"}},
                {"name": "all", "projected": {"sources": [{"configMap": {"name": "extra"}},
                                                          {"secret": {"name": "token"}}]}}],
    "containers": [{"name": "app", "image": "app:1",
                    "env": [{"name": "A", "valueFrom": {"configMapKeyRef": {"name": "env-cm", "key": "a"}}},
                            {"name": "B", "valueFrom": {"secretKeyRef": {"name": "env-secret", "key": "b"}}}],
                    "envFrom": [{"configMapRef": {"name": "bulk"}}, {"secretRef": {"name": "bulk-secret"}}]}],
    "initContainers": [{"name": "init", "image": "init:1", "envFrom": [{"configMapRef": {"name": "init-cm"}}]}],
}


def test_every_way_a_pod_refers_to_a_config_is_found() -> None:
    found = configs.referenced(POD_SPEC)
    assert found == {ConfigRef("ConfigMap", n) for n in ("settings", "extra", "env-cm", "bulk", "init-cm")} | {
        ConfigRef("Secret", n) for n in ("tls", "token", "env-secret", "bulk-secret")}


def test_the_primary_refers_to_primary_copies_of_tracked_configs_only() -> None:
    rewritten = configs.for_primary(POD_SPEC, {ConfigRef("ConfigMap", "settings"), ConfigRef("Secret", "env-secret")})
    assert rewritten["volumes"][0]["configMap"]["name"] == "settings-primary"
    assert rewritten["volumes"][1]["secret"]["secretName"] == "tls"
    assert rewritten["containers"][0]["env"][1]["valueFrom"]["secretKeyRef"]["name"] == "env-secret-primary"
    assert POD_SPEC["volumes"][0]["configMap"]["name"] == "settings", "the input is not changed"


def test_references_to_primary_copies_point_back_at_the_target_configs() -> None:
    tracked = {ConfigRef("ConfigMap", "settings"), ConfigRef("Secret", "env-secret")}
    primary = configs.for_primary(POD_SPEC, tracked)
    copies = {ConfigRef(r.kind, r.name + configs.PRIMARY_SUFFIX) for r in tracked}
    assert configs.for_target(primary, copies) == POD_SPEC
    assert configs.for_target(primary, set()) == primary, "names without a copy of ours stay as they are"


def test_a_config_can_opt_out_of_tracking_and_checksums_follow_content() -> None:
    cm = {"kind": "ConfigMap", "metadata": {"name": "x", "namespace": "n"}, "data": {"a": "1"}}
    assert configs.is_tracked(cm)
    assert not configs.is_tracked({**cm, "metadata": {"annotations": {"canary.dev/config-tracking": "disabled"}}})
    assert configs.checksum(cm) != configs.checksum({**cm, "data": {"a": "2"}})
    copy = configs.primary_copy(cm, owner={"name": "owner"})
    assert copy["metadata"]["name"] == "x-primary"
    assert copy["data"] == {"a": "1"}


def test_the_revision_changes_with_the_template_or_a_config_but_not_with_key_order() -> None:
    template = {"spec": {"containers": [{"name": "a", "image": "a:1"}]}, "metadata": {"labels": {"x": "1", "y": "2"}}}
    same = {"metadata": {"labels": {"y": "2", "x": "1"}}, "spec": {"containers": [{"image": "a:1", "name": "a"}]}}
    assert revision(template, {"configmap/a": "1"}) == revision(same, {"configmap/a": "1"})
    assert revision(template, {"configmap/a": "1"}) != revision(template, {"configmap/a": "2"})


def test_the_primary_is_a_copy_with_its_own_selector_and_owner() -> None:
    target = make_deployment("web", "ns", replicas=0, annotations={"sim.canary.dev/latency-ms": "5"})
    target["metadata"]["annotations"] = {"canary.dev/enabled": "true", "team": "a"}
    primary = primary_deployment(target, name="web-primary", selector=("app", "web"), tracked=set(),
                                 owner={"name": "web"}, replicas=3, revision="abc123")
    assert primary["metadata"]["name"] == "web-primary"
    assert primary["metadata"]["annotations"] == {"team": "a", "canary.dev/revision": "abc123"}, \
        "the target's canary.dev annotations don't follow the copy; the revision it runs does"
    assert primary["spec"]["replicas"] == 3
    assert primary["spec"]["selector"]["matchLabels"] == {"app": "web-primary"}
    assert primary["spec"]["template"]["metadata"]["labels"]["app"] == "web-primary"
    assert primary["spec"]["template"]["metadata"]["annotations"] == {"sim.canary.dev/latency-ms": "5"}
    assert primary["metadata"]["ownerReferences"] == [{"name": "web"}]


def test_a_target_without_a_known_selector_label_is_refused_with_the_field_named() -> None:
    target = make_deployment("web", "ns")
    target["spec"]["selector"]["matchLabels"] = {"component": "web"}
    with pytest.raises(PermanentError, match=r"Deployment ns/web: spec.selector.matchLabels must contain one of app"):
        selector_label(target, ("app", "name"))


NOW = datetime(2026, 1, 1, 12, tzinfo=UTC)


def _deployment(*, replicas: int, updated: int, available: int, total: int | None = None,
                conditions: list[dict[str, str]] | None = None) -> dict[str, Any]:
    return {"metadata": {"name": "web", "generation": 2},
            "spec": {"replicas": replicas},
            "status": {"observedGeneration": 2, "replicas": total if total is not None else updated,
                       "updatedReplicas": updated, "availableReplicas": available, "conditions": conditions or []}}


def test_readiness_follows_the_rollout() -> None:
    def judge(deployment: dict[str, Any]) -> Readiness:
        return deployment_readiness(deployment, deadline_seconds=60, threshold=100, now=NOW)

    assert judge(_deployment(replicas=3, updated=3, available=3)).ready
    assert judge(_deployment(replicas=3, updated=1, available=1)).message == "web: 1 of 3 replicas updated"
    assert judge(_deployment(replicas=3, updated=3, available=3, total=4)).message == (
        "web: 1 old replicas pending termination")
    assert not judge(_deployment(replicas=3, updated=3, available=2)).ready
    assert deployment_readiness(_deployment(replicas=4, updated=4, available=2), deadline_seconds=60, threshold=50,
                                now=NOW).ready


def test_a_deployment_short_of_replicas_past_the_deadline_is_stuck() -> None:
    since = (NOW - timedelta(seconds=61)).isoformat()
    unavailable = [{"type": "Available", "status": "False", "reason": "MinimumReplicasUnavailable",
                    "lastUpdateTime": since}]
    late = deployment_readiness(_deployment(replicas=2, updated=2, available=0, conditions=unavailable),
                                deadline_seconds=60, threshold=100, now=NOW)
    assert late.stuck
    early = deployment_readiness(_deployment(replicas=2, updated=2, available=0, conditions=unavailable),
                                 deadline_seconds=120, threshold=100, now=NOW)
    assert not early.ready
    assert not early.stuck
    exceeded = [{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"}]
    assert deployment_readiness(_deployment(replicas=2, updated=1, available=0, conditions=exceeded),
                                deadline_seconds=600, threshold=100, now=NOW).stuck
