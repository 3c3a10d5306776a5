"""Any Canary the API server may hand over is either a Canary or a refusal that names its field, and a
tick over it returns; it never takes the controller down."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from canary.engine.canaries import Canaries, InvalidCanary
from canary.kube import Obj
from canary.models.base import API_VERSION
from canary.models.canary import Canary
from tests.builders import make_deployment
from tests.fakes import FakeKube, informer
from tests.unit.engine.test_reconciler import Cluster
from tests.unit.properties.strategies import (
    NAMESPACE,
    PROPERTIES,
    TICKABLE_PROVIDERS,
    Objects,
    canaries,
    names_a_field_of,
)


def parse(obj: Obj) -> Canary | InvalidCanary:
    return Canaries(informer(FakeKube(), API_VERSION, "Canary")).parse(obj)


def ready(cluster: Cluster) -> Obj | None:
    return next((c for c in cluster.canary().get("status", {}).get("conditions", []) if c["type"] == "Ready"), None)


def assert_any_refusal_names_a_field(cluster: Cluster) -> None:
    condition = ready(cluster)
    if condition is not None and condition["status"] == "False":
        assert "spec." in condition["message"], condition["message"]


@PROPERTIES
@given(canaries())
def test_every_canary_parses_or_is_refused_naming_each_field(obj: Obj) -> None:
    parsed = parse(obj)
    if isinstance(parsed, InvalidCanary):
        parts = parsed.message.split("; ")
        assert all(names_a_field_of(obj, part) for part in parts), parsed.message
    else:
        assert parsed.metadata.name == obj["metadata"]["name"]


@PROPERTIES
@given(canaries(providers=TICKABLE_PROVIDERS))
def test_a_tick_over_any_canary_returns_and_an_invalid_one_is_reported_by_field(obj: Obj) -> None:
    cluster = Cluster(make_deployment("web", NAMESPACE), obj)
    parsed = parse(obj)

    assert isinstance(cluster.tick(), str)
    condition = ready(cluster)
    if isinstance(parsed, InvalidCanary):
        assert condition is not None
        assert (condition["status"], condition["reason"]) == ("False", "InvalidSpec")
        assert condition["message"].startswith(f"Canary {NAMESPACE}/web: ")
        first = condition["message"].removeprefix(f"Canary {NAMESPACE}/web: ").split("; ")[0]
        assert names_a_field_of(obj, first), condition["message"]
    else:
        assert_any_refusal_names_a_field(cluster)


@PROPERTIES
@given(Objects(wrong=False, providers=TICKABLE_PROVIDERS).spec(), st.booleans())
def test_two_ticks_over_a_plausible_canary_return(spec: Obj, deleting: bool) -> None:
    obj: Obj = {"apiVersion": API_VERSION, "kind": "Canary", "metadata": {"name": "web", "namespace": NAMESPACE},
                "spec": spec}
    if deleting:
        obj["metadata"] |= {"deletionTimestamp": "2026-01-01T00:00:00Z", "finalizers": ["canary.dev/finalizer"]}
    cluster = Cluster(make_deployment("web", NAMESPACE), obj)

    if cluster.tick() == "terminated":
        return  # the API server deletes the Canary now
    assert_any_refusal_names_a_field(cluster)
    cluster.ready("web")
    if ("Deployment", NAMESPACE, "web-primary") in cluster.kube.objects:
        cluster.ready("web-primary")
    assert isinstance(cluster.tick(), str)
    assert_any_refusal_names_a_field(cluster)
