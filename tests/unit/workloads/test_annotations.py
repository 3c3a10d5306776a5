from __future__ import annotations

from typing import Any

import pytest

from canary.errors import PermanentError
from canary.models.canary import Canary, Strategy
from canary.workloads.annotations import canary_for, is_enabled
from tests.builders import make_deployment


def _annotated(**annotations: str) -> dict[str, Any]:
    deployment = make_deployment("web", "shop")
    deployment["metadata"]["uid"] = "uid-1"
    deployment["metadata"]["annotations"] = {"canary.dev/enabled": "true",
                                             **{f"canary.dev/{k.replace('_', '-')}": v for k, v in annotations.items()}}
    return deployment


def test_defaults_give_a_canary_of_steps_owned_by_the_deployment() -> None:
    body = canary_for(_annotated())
    canary = Canary.model_validate(body)
    assert body["metadata"]["ownerReferences"][0] == {"apiVersion": "apps/v1", "kind": "Deployment",
                                                           "name": "web", "uid": "uid-1", "controller": True,
                                                           "blockOwnerDeletion": True}
    assert body["metadata"]["labels"] == {"canary.dev/generated": "true"}
    assert canary.spec.service.port == 9898, "the container port"
    assert canary.spec.analysis.step_weight == 10
    assert canary.spec.analysis.effective_max_weight == 50


def test_every_annotation_reaches_the_spec() -> None:
    body = canary_for(_annotated(strategy="ab", iterations="4", match="x-canary:insider", interval="30s",
                                 threshold="3", port="8080", provider="gatewayapi", alert="team-chat",
                                 metrics="request-success-rate>=99.5,request-duration<=400",
                                 progress_deadline="120"))
    canary = Canary.model_validate(body)
    analysis = canary.spec.analysis
    assert analysis.strategy is Strategy.AB_TESTING
    assert analysis.iterations == 4
    assert analysis.interval == "30s"
    assert canary.spec.provider == "gatewayapi"
    assert canary.spec.service.port == 8080
    assert canary.spec.progress_deadline_seconds == 120
    assert [(m.name, m.threshold_range.min if m.threshold_range else None) for m in analysis.metrics or []] == [
        ("request-success-rate", 99.5), ("request-duration", None)]
    assert analysis.alerts is not None
    assert analysis.alerts[0].provider_ref.name == "team-chat"
    assert analysis.match is not None
    assert analysis.match[0].headers is not None
    assert analysis.match[0].headers["x-canary"].exact == "insider"


def test_step_weights_and_blue_green() -> None:
    steps = Canary.model_validate(canary_for(_annotated(step_weights="5,10,25"))).spec.analysis
    assert steps.step_weights == [5, 10, 25]
    blue_green = Canary.model_validate(canary_for(_annotated(strategy="blue-green"))).spec.analysis
    assert blue_green.strategy is Strategy.BLUE_GREEN
    assert blue_green.iterations == 10


@pytest.mark.parametrize(
    ("annotations", "message"),
    [({"threshold": "many"}, "canary.dev/threshold must be a whole number, got 'many'"),
     ({"strategy": "big-bang"}, "canary.dev/strategy must be canary, blue-green or ab"),
     ({"metrics": "request-success-rate>99"}, "'request-success-rate>99' is not NAME>=NUMBER"),
     ({"strategy": "ab"}, "strategy ab needs annotation canary.dev/match"),
     # Values that parse but that the Canary's model refuses name the annotation too.
     ({"interval": "soon"}, "annotation canary.dev/interval: the Canary is invalid at spec.analysis.interval: "),
     ({"interval": "500ms", "threshold": "3"}, "annotations canary.dev/interval, canary.dev/threshold: the Canary is "
                                               "invalid at spec.analysis: Value error, interval must be at least 1s"),
     ({"step_weights": "50,10"}, "annotation canary.dev/step-weights: the Canary is invalid at spec.analysis: "
                                 "Value error, stepWeights must be strictly increasing"),
     ({"provider": "flagger"}, "annotation canary.dev/provider: the Canary is invalid at spec.provider: "),
     ({"port": "0"}, "annotation canary.dev/port: the Canary is invalid at spec.service.port: "),
     ({"max_weight": "150"}, "annotation canary.dev/max-weight: the Canary is invalid at spec.analysis.maxWeight: "),
     # Nothing silent: a typo, or an annotation the chosen strategy does not read, is refused by name.
     ({"stepweight": "20"}, "annotation canary.dev/stepweight: not a canary.dev annotation (they are alert, "),
     ({"iterations": "4"},
      "annotation canary.dev/iterations applies to strategy ab or blue-green, not canary"),
     ({"strategy": "blue-green", "step_weight": "20"},
      "annotation canary.dev/step-weight applies to strategy canary, not blue-green"),
     ({"strategy": "blue-green", "match": "x:y"},
      "annotation canary.dev/match applies to strategy ab, not blue-green")],
)
def test_bad_annotations_are_refused_naming_the_deployment_and_annotation(annotations: dict[str, str],
                                                                          message: str) -> None:
    with pytest.raises(PermanentError) as caught:
        canary_for(_annotated(**annotations))
    assert str(caught.value).startswith("Deployment shop/web: ")
    assert message in str(caught.value)


def test_annotations_other_parts_read_are_not_refused() -> None:
    # The Git sync's own, and the marks the controller writes.
    body = canary_for(_annotated(ignore="false", prune="disabled", applied="abc", revision="r1"))
    assert Canary.model_validate(body).spec.analysis.step_weight == 10


def test_only_true_enables() -> None:
    deployment = _annotated()
    assert is_enabled(deployment)
    deployment["metadata"]["annotations"]["canary.dev/enabled"] = "false"
    assert not is_enabled(deployment)
