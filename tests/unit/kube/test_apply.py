from __future__ import annotations

from canary.kube.apply import contains


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
