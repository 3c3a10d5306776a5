"""Generated canaries: each shard writes the Canaries of its own Deployments, and a refused write says so."""

from __future__ import annotations

from canary.defaults import SHARD_LABEL, in_shard, shard_selector
from canary.engine.canaries import Canaries
from canary.engine.generated import GeneratedCanaries
from canary.errors import Forbidden
from canary.kube import Obj
from canary.kube.events import EventRecorder
from canary.models.base import API_VERSION
from tests.builders import make_deployment
from tests.fakes import FakeKube, informer


def _annotated(name: str, shard: str | None) -> Obj:
    deployment = make_deployment(name, "shop")
    deployment["metadata"]["uid"] = f"uid-{name}"
    deployment["metadata"]["annotations"] = {"canary.dev/enabled": "true"}
    if shard is not None:
        deployment["metadata"]["labels"] = {SHARD_LABEL: shard}
    return deployment


def _generated_by(shard: str | None, kube: FakeKube) -> set[str]:
    canaries = Canaries(informer(kube, API_VERSION, "Canary"))
    GeneratedCanaries(kube.as_kube(), deployments=informer(kube, "apps/v1", "Deployment"), canaries=canaries,
                      events=EventRecorder(kube.as_kube()), shard=shard).sync()
    return {name for (kind, _, name) in kube.objects if kind == "Canary"}


def test_each_shard_generates_only_the_canaries_of_its_deployments_and_labels_them() -> None:
    deployments = [_annotated("plain", None), _annotated("web-a", "a"), _annotated("web-b", "b")]
    assert _generated_by("a", FakeKube(*deployments)) == {"web-a"}
    assert _generated_by(None, FakeKube(*deployments)) == {"plain"}
    kube = FakeKube(*deployments)
    _generated_by("b", kube)
    assert kube.objects[("Canary", "shop", "web-b")]["metadata"]["labels"][SHARD_LABEL] == "b", \
        "the Canary carries its shard, so that the shard's controller watches it"


def test_the_selector_and_the_membership_agree() -> None:
    assert shard_selector("a") == "canary.dev/shard=a"
    assert shard_selector(None) == "!canary.dev/shard"
    assert in_shard({SHARD_LABEL: "a"}, "a")
    assert not in_shard({SHARD_LABEL: "a"}, None)
    assert in_shard({"app": "web"}, None)
    assert not in_shard(None, "a")


class _RefusingKube(FakeKube):
    """An API server that refuses to write Canaries, as one does in a namespace being deleted."""

    def apply(self, body: Obj, *, field_manager: str, subresource: str | None = None) -> Obj:
        if body["kind"] == "Canary":
            raise Forbidden(f"apply Canary shop/{body['metadata']['name']}: namespace shop is being terminated")
        return super().apply(body, field_manager=field_manager, subresource=subresource)


def test_a_refused_write_is_reported_as_such_not_as_invalid_annotations() -> None:
    kube = _RefusingKube(_annotated("web", None))
    canaries = Canaries(informer(kube, API_VERSION, "Canary"))
    GeneratedCanaries(kube.as_kube(), deployments=informer(kube, "apps/v1", "Deployment"), canaries=canaries,
                      events=EventRecorder(kube.as_kube())).sync()
    [event] = [o for (kind, _, _), o in kube.objects.items() if kind == "Event"]
    assert event["reason"] == "GeneratedCanaryNotWritten"
    assert "namespace shop is being terminated" in event["message"]
