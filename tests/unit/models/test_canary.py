from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from canary.models.base import parse_duration
from canary.models.canary import Canary, HookType, Strategy


def _canary(**analysis: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": "podinfo", "namespace": "test"},
        "spec": {"targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "podinfo"},
                 "service": {"port": 9898}, "analysis": {"interval": "1m", "threshold": 5, **analysis}},
    }


def test_flagger_defaults_apply_when_fields_are_left_out() -> None:
    canary = Canary.model_validate(_canary(stepWeight=10))
    spec = canary.spec
    assert spec.progress_deadline_seconds == 600
    assert spec.analysis.effective_max_weight == 100
    assert spec.analysis.effective_primary_ready_threshold == 100
    assert spec.service_names == ("podinfo", "podinfo-primary", "podinfo-canary")
    assert spec.primary_name == "podinfo-primary"
    assert spec.analysis.strategy is Strategy.CANARY


def test_the_strategy_follows_from_iterations_and_match() -> None:
    assert Canary.model_validate(_canary(iterations=3)).spec.analysis.strategy is Strategy.BLUE_GREEN
    ab = _canary(iterations=3, match=[{"headers": {"x-canary": {"exact": "insider"}}}])
    assert Canary.model_validate(ab).spec.analysis.strategy is Strategy.AB_TESTING


def test_step_weights_set_the_max_weight() -> None:
    analysis = Canary.model_validate(_canary(stepWeights=[1, 5, 20, 60])).spec.analysis
    assert analysis.effective_max_weight == 60


@pytest.mark.parametrize(
    ("analysis", "message"),
    [
        ({"stepWeight": 10, "iterations": 2}, "exactly one of iterations, stepWeight, stepWeights"),
        ({}, "exactly one of iterations, stepWeight, stepWeights"),
        ({"stepWeight": 150}, "less than or equal to 100"),
        ({"stepWeights": [20, 10]}, "stepWeights must be strictly increasing"),
        ({"stepWeight": 10, "interval": "500ms"}, "interval must be at least 1s"),
        ({"stepWeight": 10, "interval": "soon"}, "String should match pattern"),
    ],
)
def test_invalid_analysis_is_refused_with_the_field_named(analysis: dict[str, Any], message: str) -> None:
    body = _canary(**analysis)
    body["spec"]["analysis"].update(analysis)
    with pytest.raises(ValidationError) as caught:
        Canary.model_validate(body)
    assert message in str(caught.value)
    assert "spec.analysis" in str(caught.value)


def test_unknown_fields_are_refused_but_mesh_blocks_are_kept() -> None:
    body = _canary(stepWeight=5)
    body["spec"]["service"]["trafficPolicy"] = {"tls": {"mode": "ISTIO_MUTUAL"}}
    canary = Canary.model_validate(body)
    assert canary.spec.service.traffic_policy is not None
    assert canary.spec.service.traffic_policy.model_dump() == {"tls": {"mode": "ISTIO_MUTUAL"}}
    body["spec"]["analysis"]["stepWieght"] = 5
    with pytest.raises(ValidationError, match="stepWieght"):
        Canary.model_validate(body)


def test_webhooks_default_to_rollout_and_are_grouped_by_type() -> None:
    hooks = [{"name": "load", "url": "http://tester/"},
             {"name": "gate", "type": "confirm-rollout", "url": "http://gate/"}]
    analysis = Canary.model_validate(_canary(stepWeight=5, webhooks=hooks)).spec.analysis
    assert [h.name for h in analysis.hooks(HookType.ROLLOUT)] == ["load"]
    assert [h.name for h in analysis.hooks(HookType.CONFIRM_ROLLOUT)] == ["gate"]


@pytest.mark.parametrize(("text", "seconds"), [("1s", 1), ("1m30s", 90), ("500ms", 0.5), ("2h", 7200)])
def test_go_durations_parse(text: str, seconds: float) -> None:
    assert parse_duration(text).total_seconds() == seconds


def test_a_status_field_left_by_another_controller_version_does_not_make_the_canary_invalid() -> None:
    body = _canary(stepWeight=10)
    body["status"] = {"phase": "Succeeded", "revision": "abc", "somethingNewer": 1}
    canary = Canary.model_validate(body)
    assert canary.status.phase == "Succeeded"
    assert "revision" not in canary.status.model_dump(by_alias=True)


def test_a_threshold_range_with_min_above_max_is_refused_naming_the_metric() -> None:
    body = _canary(stepWeight=10, metrics=[{"name": "request-success-rate", "thresholdRange": {"min": 99, "max": 1}}])
    with pytest.raises(ValidationError) as caught:
        Canary.model_validate(body)
    assert "spec.analysis.metrics.0.thresholdRange" in str(caught.value)
    assert "min must not be above max, got min 99 and max 1" in str(caught.value)
