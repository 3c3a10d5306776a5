from __future__ import annotations

from canary.kube.apply import APPLIED, apply_if_changed, contains, digest
from tests.fakes import FakeKube, informer


def test_defaults_added_by_the_cluster_do_not_count_as_a_difference() -> None:
    actual = {"metadata": {"name": "web", "uid": "1", "labels": {"app": "web"}},
              "spec": {"clusterIP": "10.0.0.5", "ports": [{"port": 80, "protocol": "TCP", "targetPort": 80}]}}
    desired = {"metadata": {"name": "web", "labels": {"app": "web"}, "annotations": {}},
               "spec": {"ports": [{"port": 80, "targetPort": 80}]}}
    assert contains(actual, desired)


def test_a_changed_or_missing_field_of_ours_is_a_difference() -> None:
    actual = {"spec": {"ports": [{"port": 80}], "selector": {"app": "web-primary"}}}
    assert not contains(actual, {"spec": {"selector": {"app": "web"}}})
    assert not contains(actual, {"spec": {"ports": [{"port": 80}, {"port": 81}]}})
    assert not contains(actual, {"metadata": {"labels": {"team": "a"}}})


def test_a_field_we_stop_sending_is_a_difference_and_an_unchanged_body_is_written_once() -> None:
    kube = FakeKube()
    cache = informer(kube, "networking.istio.io/v1", "VirtualService")
    mirrored = {"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
                "metadata": {"name": "web", "namespace": "shop"},
                "spec": {"http": [{"route": [{"destination": {"host": "web-primary"}}],
                                   "mirror": {"host": "web-canary"}}]}}
    assert apply_if_changed(kube.as_kube(), cache, mirrored, field_manager="canary")
    assert not apply_if_changed(kube.as_kube(), cache, mirrored, field_manager="canary"), "nothing new to write"
    plain = {**mirrored, "spec": {"http": [{"route": [{"destination": {"host": "web-primary"}}]}]}}
    assert contains(cache.get("shop", "web"), plain), "a subset test alone would keep the mirror"
    assert apply_if_changed(kube.as_kube(), cache, plain, field_manager="canary")
    assert cache.get("shop", "web")["metadata"]["annotations"][APPLIED] == digest(plain)  # type: ignore[index]
