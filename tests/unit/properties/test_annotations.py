"""Any canary.dev annotations on a Deployment give a Canary or a refusal that names the annotation,
and the generated-canary pass goes on either way."""

from __future__ import annotations

import re

from hypothesis import example, given
from hypothesis import strategies as st

from canary.engine.canaries import Canaries
from canary.engine.generated import GeneratedCanaries
from canary.errors import PermanentError
from canary.kube import Obj
from canary.kube.events import EventRecorder
from canary.models.base import API_VERSION
from canary.models.canary import Canary
from canary.workloads.annotations import PREFIX, canary_for
from tests.builders import make_deployment
from tests.fakes import FakeKube, informer
from tests.unit.properties.strategies import NAMESPACE, PROPERTIES, PROVIDERS, mostly

NUMBERS = mostly(st.integers(-5, 700).map(str), st.sampled_from(["", "ten", "1.5", "0x10", " 7 ", "9" * 40]))
VALUES: dict[str, st.SearchStrategy[str]] = {
    "strategy": mostly(st.sampled_from(["canary", "blue-green", "ab"]), st.sampled_from(["", "Canary", "a/b"])),
    "provider": mostly(st.sampled_from(PROVIDERS), st.sampled_from(["", "flagger", "istio:v9"])),
    "port": NUMBERS,
    "interval": mostly(st.sampled_from(["1m", "30s", "1h"]), st.sampled_from(["", "500ms", "0s", "soon", "60"])),
    "threshold": NUMBERS,
    "step-weight": NUMBERS,
    "max-weight": NUMBERS,
    "step-weights": mostly(st.lists(st.integers(1, 100), min_size=1, max_size=4, unique=True).map(
        lambda steps: ",".join(map(str, sorted(steps)))), st.sampled_from(["50,10", "0,5", "5,,10", "5, 10", "x"])),
    "iterations": NUMBERS,
    "match": mostly(st.sampled_from(["x-canary:insider", "user-agent: bot"]), st.sampled_from(["", ":", "x:", "x"])),
    "metrics": mostly(st.sampled_from(["request-success-rate>=99", "request-duration<=500,latency<=1.5"]),
                      st.sampled_from(["rate>99", "a>=", ",", "Rate>=1", "x<=1e3"])),
    "alert": mostly(st.sampled_from(["team-chat"]), st.just("")),
    "progress-deadline": NUMBERS,
}
annotation_sets = st.fixed_dictionaries({}, optional={PREFIX + key: value for key, value in VALUES.items()})


def deployment(annotations: dict[str, str]) -> Obj:
    body = make_deployment("web", NAMESPACE)
    body["metadata"] |= {"uid": "uid-web", "annotations": {f"{PREFIX}enabled": "true", **annotations}}
    return body


def names_the_annotation(message: str, annotations: dict[str, str]) -> bool:
    """Whether ``message`` names an annotation on the Deployment, or one that another needs (strategy ab
    needs canary.dev/match)."""
    named = re.findall(rf"{re.escape(PREFIX)}(?:{'|'.join(map(re.escape, VALUES))})\b", message)
    return any(key in annotations for key in named) or (bool(named) and "needs annotation" in message)


@PROPERTIES
@given(annotation_sets)
@example({f"{PREFIX}interval": "soon"})
@example({f"{PREFIX}interval": "500ms"})
@example({f"{PREFIX}step-weights": "50,10"})
@example({f"{PREFIX}provider": "flagger"})
@example({f"{PREFIX}port": "0"})
def test_annotations_give_a_valid_canary_or_a_refusal_naming_the_annotation(annotations: dict[str, str]) -> None:
    try:
        Canary.model_validate(canary_for(deployment(annotations)))
    except PermanentError as exc:
        refusal = str(exc)
    else:
        return
    assert names_the_annotation(refusal, annotations), refusal


@PROPERTIES
@given(annotation_sets)
@example({f"{PREFIX}interval": "soon"})
@example({f"{PREFIX}interval": "500ms"})
@example({f"{PREFIX}step-weights": "50,10"})
@example({f"{PREFIX}provider": "flagger"})
def test_the_generated_pass_writes_a_canary_or_an_event_naming_the_annotation(annotations: dict[str, str]) -> None:
    kube = FakeKube(deployment(annotations))
    canaries = Canaries(informer(kube, API_VERSION, "Canary"))
    generated = GeneratedCanaries(kube.as_kube(), deployments=informer(kube, "apps/v1", "Deployment"),
                                  canaries=canaries, events=EventRecorder(kube.as_kube()))

    assert generated.sync().endswith("generated canaries written")
    events = [o for (kind, _, _), o in kube.objects.items() if kind == "Event"]
    written = kube.objects.get(("Canary", NAMESPACE, "web"))
    if written is None:
        [event] = events
        assert event["reason"] == "InvalidCanaryAnnotations"
        assert names_the_annotation(event["message"], annotations), event["message"]
    else:
        assert events == []
        Canary.from_object(written)
