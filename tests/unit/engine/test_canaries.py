"""The Canary index: parsed once per version, invalid ones kept with their reason, targets followed."""

from __future__ import annotations

import copy

from canary.engine.canaries import Canaries, InvalidCanary, cross_namespace_refs
from canary.kube.cache import Informer
from canary.models.base import API_VERSION
from canary.models.canary import Canary
from tests.builders import make_canary
from tests.fakes import FakeKube, informer


def _cache(*objects: dict[str, object]) -> tuple[Informer, Canaries]:
    cache = informer(FakeKube(*objects), API_VERSION, "Canary")
    return cache, Canaries(cache)


def test_each_version_is_parsed_once_and_an_invalid_one_says_why() -> None:
    good = make_canary("web", "apps")
    bad = make_canary("api", "apps", analysis={"interval": "soon", "stepWeight": 10})
    _, canaries = _cache(good, bad)
    first = canaries.get("apps", "web")
    again = canaries.get("apps", "web")
    assert first is not None
    assert again is not None
    assert isinstance(first[1], Canary)
    assert first[1] is again[1], "the same version is not parsed twice"
    invalid = canaries.get("apps", "api")
    assert invalid is not None
    assert isinstance(invalid[1], InvalidCanary)
    assert "spec.analysis.interval" in invalid[1].message


def test_the_target_index_follows_the_informers_events() -> None:
    cache, canaries = _cache(make_canary("web", "apps"))
    assert [h.metadata.name for h in canaries.targeting("apps", "web")] == ["web"]

    moved = copy.deepcopy(cache.get("apps", "web") or {})
    moved["spec"]["targetRef"]["name"] = "api"
    canaries._index("MODIFIED", moved)
    assert canaries.targeting("apps", "web") == []
    assert [h.metadata.name for h in canaries.targeting("apps", "api")] == ["web"]

    invalid = make_canary("other", "apps", analysis={"interval": "soon", "stepWeight": 10})
    invalid["spec"]["targetRef"]["name"] = "api"
    canaries._index("ADDED", invalid)
    assert [h.metadata.name for h in canaries.targeting("apps", "api")] == ["other", "web"], \
        "an invalid Canary still claims its target"

    canaries._index("DELETED", moved)
    assert [h.metadata.name for h in canaries.targeting("apps", "api")] == ["other"]


def test_references_to_other_namespaces_are_named_by_field() -> None:
    canary = Canary.model_validate(make_canary("web", "apps", analysis={
        "interval": "1m", "iterations": 2,
        "metrics": [{"name": "ok", "templateRef": {"name": "t"}},
                    {"name": "same", "templateRef": {"name": "t", "namespace": "apps"}},
                    {"name": "far", "templateRef": {"name": "t", "namespace": "monitoring"}}],
        "alerts": [{"name": "chat", "providerRef": {"name": "slack", "namespace": "ops"}}]}))
    assert cross_namespace_refs(canary) == ["spec.analysis.metrics[2].templateRef.namespace monitoring",
                                            "spec.analysis.alerts[0].providerRef.namespace ops"]
