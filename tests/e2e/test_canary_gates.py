"""Webhook gates and the progress deadline, against a real HTTP receiver and kwok's unready pods."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from canary.kube.client import Kube
from canary.local import stack
from canary.waiting import wait_until
from tests.builders import make_canary, make_deployment
from tests.e2e.canaries import canary_status, deployment, image_of, release, route_weights, wait_phase
from tests.e2e.controllers import ControllerProcess
from tests.e2e.receivers import receiver

pytestmark = pytest.mark.usefixtures("gateway_api_crds")




def _hooks(url: Callable[[str], str], *types: str) -> list[dict[str, str]]:
    return [{"name": t, "type": t, "url": url(f"/{t}")} for t in types]


def test_gates_hold_the_release_until_opened_and_every_hook_type_is_called(
    kube: Kube, namespace: str, controller: ControllerProcess
) -> None:
    with receiver() as hooks:
        hooks.answer("/confirm-rollout", 403)
        hooks.answer("/confirm-promotion", 403)
        hooks.answer("/rollback", 404)
        kube.create(make_deployment("web", namespace, replicas=1, image="web:1"))
        kube.create(make_canary("web", namespace, analysis={
            "interval": "1s", "threshold": 3, "stepWeight": 50, "maxWeight": 50,
            "webhooks": _hooks(hooks.url, "confirm-rollout", "pre-rollout", "rollout", "confirm-traffic-increase",
                               "confirm-promotion", "post-rollout", "rollback")}))
        wait_phase(kube, namespace, "web", "Initialized")
        release(kube, namespace, "web:2")

        wait_phase(kube, namespace, "web", "Waiting")
        wait_until(hooks.paths, lambda p: p.count("/confirm-rollout") >= 3, what="confirm-rollout polled", timeout=30)
        assert canary_status(kube, namespace, "web")["failedChecks"] == 0, "a closed gate is not a failure"
        assert deployment(kube, namespace, "web")["spec"]["replicas"] == 0, "nothing starts before approval"

        hooks.answer("/confirm-rollout", 200)
        wait_phase(kube, namespace, "web", "WaitingPromotion", timeout=60)
        assert route_weights(kube, namespace, "web") == (50, 50)
        assert image_of(deployment(kube, namespace, "web-primary")) == "web:1"

        hooks.answer("/confirm-promotion", 200)
        wait_phase(kube, namespace, "web", "Succeeded", timeout=60)
        wait_until(hooks.paths, lambda p: "/post-rollout" in p, what="the post-rollout hook", timeout=10)

    called = set(hooks.paths())
    assert called == {"/confirm-rollout", "/pre-rollout", "/rollout", "/confirm-traffic-increase",
                      "/confirm-promotion", "/post-rollout", "/rollback"}
    payload = next(body for path, body in hooks.calls if path == "/rollout")
    assert payload["name"] == "web"
    assert payload["namespace"] == namespace
    assert payload["phase"] == "Progressing"
    assert payload["type"] == "rollout"
    assert image_of(deployment(kube, namespace, "web-primary")) == "web:2"


def test_failing_rollout_hooks_count_and_roll_back_at_the_threshold(
    kube: Kube, namespace: str, controller: ControllerProcess
) -> None:
    with receiver() as hooks:
        hooks.answer("/rollout", 500)
        kube.create(make_deployment("web", namespace, replicas=1, image="web:1"))
        kube.create(make_canary("web", namespace, analysis={
            "interval": "1s", "threshold": 2, "stepWeight": 20, "webhooks": _hooks(hooks.url, "rollout")}))
        wait_phase(kube, namespace, "web", "Initialized")
        release(kube, namespace, "web:2")

        failed = wait_phase(kube, namespace, "web", "Failed", timeout=60)

    assert failed["failedChecks"] == 2
    assert route_weights(kube, namespace, "web") == (100, 0)
    assert image_of(deployment(kube, namespace, "web-primary")) == "web:1"
    assert deployment(kube, namespace, "web")["spec"]["replicas"] == 0


def test_a_passing_rollback_hook_rolls_back_at_once(kube: Kube, namespace: str, controller: ControllerProcess) -> None:
    with receiver() as hooks:
        hooks.answer("/rollback", 404)
        kube.create(make_deployment("web", namespace, replicas=1, image="web:1"))
        kube.create(make_canary("web", namespace, analysis={
            "interval": "1s", "threshold": 5, "stepWeight": 10, "maxWeight": 50,
            "webhooks": _hooks(hooks.url, "rollback")}))
        wait_phase(kube, namespace, "web", "Initialized")
        release(kube, namespace, "web:2")
        wait_until(lambda: route_weights(kube, namespace, "web"), lambda w: w is not None and w[1] >= 10,
                   what="the canary to get traffic", timeout=30)

        hooks.answer("/rollback", 200)
        failed = wait_phase(kube, namespace, "web", "Failed", timeout=30)

    assert failed["failedChecks"] == 0
    assert route_weights(kube, namespace, "web") == (100, 0)


def test_a_canary_whose_pods_never_become_ready_fails_at_the_progress_deadline(
    kube: Kube, namespace: str, controller: ControllerProcess
) -> None:
    kube.create(make_deployment("web", namespace, replicas=2, image="web:1"))
    kube.create(make_canary("web", namespace, progressDeadlineSeconds=4))
    wait_phase(kube, namespace, "web", "Initialized")

    release(kube, namespace, "web:2", annotations={"sim.canary.dev/unready": "true"})
    wait_phase(kube, namespace, "web", "Progressing")
    failed = wait_phase(kube, namespace, "web", "Failed", timeout=60)

    assert failed["canaryWeight"] == 0
    assert route_weights(kube, namespace, "web") == (100, 0)
    assert image_of(deployment(kube, namespace, "web-primary")) == "web:1"
    assert deployment(kube, namespace, "web")["spec"]["replicas"] == 0


def test_a_revision_arriving_mid_run_whose_pods_never_become_ready_fails_at_the_canary_deadline(
    kube: Kube, namespace: str, controller: ControllerProcess
) -> None:
    # The old canary pods stay available, so the Deployment looks healthy until its own deadline (600 s).
    kube.create(make_deployment("web", namespace, replicas=2, image="web:1"))
    kube.create(make_canary("web", namespace, progressDeadlineSeconds=5,
                            analysis={"interval": "1s", "threshold": 2, "stepWeight": 5, "maxWeight": 50}))
    wait_phase(kube, namespace, "web", "Initialized")
    release(kube, namespace, "web:2")
    wait_until(lambda: canary_status(kube, namespace, "web").get("canaryWeight", 0), lambda weight: weight >= 10,
               what="the first release to be under way", timeout=60, interval=0.1)

    release(kube, namespace, "web:3", annotations={"sim.canary.dev/unready": "true"})
    failed = wait_phase(kube, namespace, "web", "Failed", timeout=60)

    assert route_weights(kube, namespace, "web") == (100, 0)
    assert image_of(deployment(kube, namespace, "web-primary")) == "web:1"
    target = deployment(kube, namespace, "web")
    assert target["spec"]["progressDeadlineSeconds"] == 600, "not the Deployment's deadline"
    assert failed["conditions"][0]["reason"] == "Failed"


def test_no_data_fails_by_default_but_a_skip_metric_lets_the_release_through(
    kube: Kube, namespace: str, controller: ControllerProcess
) -> None:
    kube.create({"apiVersion": "canary.dev/v1alpha1", "kind": "MetricTemplate",
                 "metadata": {"name": "nothing", "namespace": namespace},
                 "spec": {"provider": {"type": "prometheus"},
                          "query": 'sum(rate(no_such_metric_total{namespace="{{ namespace }}"}[{{ interval }}]))'}})
    for name, policy in (("strict", "fail"), ("lenient", "skip")):
        kube.create(make_deployment(name, namespace, replicas=1, image="app:1"))
        kube.create(make_canary(name, namespace, analysis={
            "interval": "1s", "threshold": 2, "stepWeight": 50,
            "metrics": [{"name": "nothing", "templateRef": {"name": "nothing"}, "noData": policy,
                         "thresholdRange": {"min": 1}}]}))
    for name in ("strict", "lenient"):
        wait_phase(kube, namespace, name, "Initialized")
        release(kube, namespace, "app:2", name=name)

    failed = wait_phase(kube, namespace, "strict", "Failed", timeout=60)
    passed = wait_phase(kube, namespace, "lenient", "Succeeded", timeout=60)

    assert failed["analysis"][-1]["verdict"] == "no-data"
    assert "no values found" in failed["analysis"][-1]["message"]
    assert passed["analysis"][-1]["verdict"] == "no-data"


def test_event_webhooks_hear_every_event_of_their_canary_and_the_default_hears_the_others(
    kube: Kube, namespace: str, local_stack: stack.StackState, canary_crds: list[str], tmp_path: Path
) -> None:
    with receiver() as hooks:
        controller = ControllerProcess(local_stack, namespace, tmp_path,
                                       extra=("--event-webhook", hooks.url("/default")))
        controller.start()
        try:
            kube.create(make_deployment("web", namespace, replicas=1, image="web:1"))
            kube.create(make_deployment("api", namespace, replicas=1, image="api:1"))
            own = make_canary("web", namespace, provider="kubernetes", analysis={
                "interval": "1s", "threshold": 2, "iterations": 1,
                "webhooks": [{"name": "events", "type": "event", "url": hooks.url("/own"),
                              "metadata": {"team": "a", "eventType": "not mine"}}]})
            kube.create(own)
            kube.create(make_canary("api", namespace, provider="kubernetes",
                                    analysis={"interval": "1s", "threshold": 2, "iterations": 1}))
            wait_phase(kube, namespace, "web", "Initialized")
            wait_phase(kube, namespace, "api", "Initialized")
            release(kube, namespace, "web:2")
            wait_phase(kube, namespace, "web", "Succeeded", timeout=60)

            def bodies(path: str) -> list[dict[str, object]]:
                with hooks.lock:
                    return [body for called, body in hooks.calls if called == path]

            own_events = wait_until(lambda: bodies("/own"), lambda found: any(
                "Promotion completed" in str(b["metadata"]) for b in found),
                what="the promotion Event at the canary's event webhook", timeout=20)
        finally:
            controller.stop()
    first = own_events[0]
    assert first["name"] == "web"
    assert first["namespace"] == namespace
    metadata = first["metadata"]
    assert isinstance(metadata, dict)
    assert metadata["eventMessage"] == "Initialization done! web"
    assert metadata["eventType"] == "Normal", "the hook's metadata never overrides the Event's"
    assert metadata["team"] == "a"
    assert int(str(metadata["timestamp"])) > 0
    assert any("New revision detected" in str(b["metadata"]) for b in own_events)
    assert {b["name"] for b in bodies("/default")} == {"api"}, "a canary with its own event webhook uses it alone"
