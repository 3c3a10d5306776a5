"""The canary engine on the real control plane: bootstrap, releases, routers, configs, bad input."""

from __future__ import annotations

import pytest

from analysis.builtin import DURATION, builtin_query
from canary.kube.client import Kube
from canary.waiting import wait_until
from tests.builders import make_canary, make_configmap, make_deployment
from tests.e2e.canaries import canary_status, deployment, events, image_of, release, route_weights, wait_phase
from tests.e2e.controllers import ControllerProcess, metric_total

pytestmark = pytest.mark.usefixtures("gateway_api_crds")




def test_initialization_creates_primary_services_and_configs_and_scales_the_target_down(
    kube: Kube, namespace: str, controller: ControllerProcess
) -> None:
    kube.create(make_configmap("web-settings", namespace, data={"color": "blue"}))
    target = make_deployment("web", namespace, replicas=2, image="web:1")
    target["spec"]["template"]["spec"]["volumes"] = [{"name": "settings", "configMap": {"name": "web-settings"}}]
    kube.create(target)
    kube.create(make_canary("web", namespace))

    status = wait_phase(kube, namespace, "web", "Initialized")

    primary = deployment(kube, namespace, "web-primary")
    assert primary["spec"]["replicas"] == 2
    assert primary["spec"]["selector"]["matchLabels"] == {"app": "web-primary"}
    assert primary["spec"]["template"]["spec"]["volumes"][0]["configMap"]["name"] == "web-settings-primary"
    copy = kube.get("v1", "ConfigMap", "web-settings-primary", namespace=namespace)
    assert copy is not None
    assert copy["data"] == {"color": "blue"}
    assert deployment(kube, namespace, "web")["spec"]["replicas"] == 0
    services = {s["metadata"]["name"]: s["spec"]["selector"] for s in kube.list_objects("v1", "Service",
                                                                                       namespace=namespace)}
    assert services == {"web": {"app": "web-primary"}, "web-primary": {"app": "web-primary"},
                        "web-canary": {"app": "web"}}
    assert route_weights(kube, namespace, "web") == (100, 0)
    assert status["conditions"][0]["type"] == "Promoted"
    assert status["conditions"][0]["status"] == "True"
    # The Event comes after the status write that made the phase Initialized.
    wait_until(lambda: events(kube, namespace, "web"),
               lambda found: any(e["message"] == "Initialization done! web" for e in found),
               what="the initialisation Event", timeout=10)


def _analysis(**extra: object) -> dict[str, object]:
    """Canary steps of 10 up to 50, judged by the built-in success rate and a latency MetricTemplate."""
    return {"interval": "2s", "threshold": 2, "stepWeight": 10, "maxWeight": 50, "metrics": [
        {"name": "request-success-rate", "interval": "10s", "thresholdRange": {"min": 99}},
        {"name": "latency", "interval": "10s", "thresholdRange": {"max": 500},
         "templateRef": {"name": "latency"}},
    ], **extra}


def _latency_template(kube: Kube, namespace: str) -> None:
    kube.create({"apiVersion": "canary.dev/v1alpha1", "kind": "MetricTemplate",
                 "metadata": {"name": "latency", "namespace": namespace},
                 "spec": {"provider": {"type": "prometheus"}, "query": builtin_query("istio", DURATION)}})


def test_a_good_release_through_gateway_api_steps_the_weights_and_is_promoted(
    kube: Kube, namespace: str, controller: ControllerProcess
) -> None:
    _latency_template(kube, namespace)
    kube.create(make_deployment("web", namespace, replicas=2, image="web:1"))
    kube.create(make_canary("web", namespace, analysis=_analysis()))
    wait_phase(kube, namespace, "web", "Initialized")

    release(kube, namespace, "web:2")
    seen: list[tuple[int, int]] = []
    phases: list[str] = []

    def observe() -> str:
        weights = route_weights(kube, namespace, "web")
        if weights is not None and (not seen or seen[-1] != weights):
            seen.append(weights)
        phase = str(canary_status(kube, namespace, "web").get("phase", ""))
        if not phases or phases[-1] != phase:
            phases.append(phase)
        return phase

    wait_until(observe, lambda phase: phase in ("Succeeded", "Failed"), what="the release to end", timeout=120,
               interval=0.05)

    status = canary_status(kube, namespace, "web")
    assert phases[-1] == "Succeeded", status
    assert seen == [(100, 0), (90, 10), (80, 20), (70, 30), (60, 40), (50, 50), (100, 0)]
    assert phases[-3:] == ["Promoting", "Finalising", "Succeeded"]
    assert image_of(deployment(kube, namespace, "web-primary")) == "web:2"
    assert deployment(kube, namespace, "web")["spec"]["replicas"] == 0
    judged = {r["name"]: r for r in status["analysis"]}
    assert judged["request-success-rate"]["verdict"] == "pass"
    assert judged["request-success-rate"]["value"] == 100
    assert judged["latency"]["verdict"] == "pass"
    assert 10 < judged["latency"]["value"] < 50, "the simulator answers in about 20 ms"


def test_a_bad_release_is_rolled_back_after_threshold_failed_checks(
    kube: Kube, namespace: str, controller: ControllerProcess
) -> None:
    _latency_template(kube, namespace)
    kube.create(make_deployment("web", namespace, replicas=2, image="web:1"))
    kube.create(make_canary("web", namespace, analysis=_analysis()))
    wait_phase(kube, namespace, "web", "Initialized")

    bad = make_deployment("web", namespace, replicas=2, image="web:2",
                          annotations={"sim.canary.dev/error-rate": "30"})
    kube.apply(bad, field_manager="test")
    failed = wait_phase(kube, namespace, "web", "Failed", timeout=120)

    assert failed["failedChecks"] == 2
    assert route_weights(kube, namespace, "web") == (100, 0)
    assert image_of(deployment(kube, namespace, "web-primary")) == "web:1"
    assert deployment(kube, namespace, "web")["spec"]["replicas"] == 0
    failing = [r for r in failed["analysis"] if r["verdict"] != "pass"]
    assert failing[-1]["name"] == "request-success-rate"
    assert failing[-1]["value"] < 99
    rolled_back = [e for e in events(kube, namespace, "web") if e["reason"] == "Failed"]
    assert "request-success-rate" in rolled_back[0]["message"]


def test_blue_green_with_the_kubernetes_router_runs_its_iterations_and_promotes(
    kube: Kube, namespace: str, controller: ControllerProcess
) -> None:
    kube.create(make_deployment("web", namespace, replicas=2, image="web:1"))
    kube.create(make_canary("web", namespace, provider="kubernetes",
                            analysis={"interval": "1s", "threshold": 2, "iterations": 3}))
    wait_phase(kube, namespace, "web", "Initialized")

    release(kube, namespace, "web:2")
    iterations = set()

    def observe() -> str:
        status = canary_status(kube, namespace, "web")
        iterations.add(status.get("iterations", 0))
        return str(status.get("phase", ""))

    wait_until(observe, lambda phase: phase == "Succeeded", what="blue/green to succeed", timeout=60, interval=0.05)

    assert {1, 2, 3} <= iterations
    assert image_of(deployment(kube, namespace, "web-primary")) == "web:2"
    assert kube.get("gateway.networking.k8s.io/v1", "HTTPRoute", "web", namespace=namespace) is None


def test_a_configmap_change_alone_starts_a_run_and_the_primary_gets_the_primary_copy(
    kube: Kube, namespace: str, controller: ControllerProcess
) -> None:
    kube.create(make_configmap("web-settings", namespace, data={"color": "blue"}))
    target = make_deployment("web", namespace, replicas=1, image="web:1")
    target["spec"]["template"]["spec"]["containers"][0]["envFrom"] = [{"configMapRef": {"name": "web-settings"}}]
    kube.create(target)
    kube.create(make_canary("web", namespace, analysis={"interval": "1s", "threshold": 2, "stepWeight": 50}))
    first = wait_phase(kube, namespace, "web", "Initialized")

    kube.merge_patch("v1", "ConfigMap", "web-settings", {"data": {"color": "green"}}, namespace=namespace)

    wait_phase(kube, namespace, "web", "Progressing")
    done = wait_phase(kube, namespace, "web", "Succeeded", timeout=60)
    assert done["lastPromotedSpec"] != first["lastPromotedSpec"]
    copy = kube.get("v1", "ConfigMap", "web-settings-primary", namespace=namespace)
    assert copy is not None
    assert copy["data"] == {"color": "green"}
    primary = deployment(kube, namespace, "web-primary")
    assert primary["spec"]["template"]["spec"]["containers"][0]["envFrom"] == [
        {"configMapRef": {"name": "web-settings-primary"}}]


def test_a_canary_without_its_target_gets_a_condition_and_two_canaries_on_one_target_get_an_event(
    kube: Kube, namespace: str, controller: ControllerProcess
) -> None:
    kube.create(make_canary("ghost", namespace))
    status = wait_until(lambda: canary_status(kube, namespace, "ghost"),
                        lambda s: any(c.get("reason") == "TargetNotFound" for c in s.get("conditions", [])),
                        what="a TargetNotFound condition", timeout=30)
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "False"
    assert "spec.targetRef: Deployment ghost not found" in ready["message"]

    kube.create(make_deployment("web", namespace, replicas=1))
    kube.create(make_canary("web", namespace))
    wait_phase(kube, namespace, "web", "Initialized")
    second = make_canary("web-again", namespace)
    second["spec"]["targetRef"]["name"] = "web"
    kube.create(second)
    wait_until(lambda: events(kube, namespace, "web-again"),
               lambda found: any(e["reason"] == "TargetConflict" for e in found),
               what="a TargetConflict event on the second Canary", timeout=30)
    assert canary_status(kube, namespace, "web").get("phase") == "Initialized"
    assert metric_total(controller, "canary_total", namespace=namespace) == 3, "canary_total counts all three"

    kube.create(make_deployment("ghost", namespace, replicas=1))
    wait_phase(kube, namespace, "ghost", "Initialized")
    # The condition is cleared by the write that follows the initialisation's.
    wait_until(lambda: next(c for c in canary_status(kube, namespace, "ghost")["conditions"] if c["type"] == "Ready"),
               lambda ready: ready["status"] == "True", what="the Ready condition to heal", timeout=15)


def test_an_idle_canary_costs_no_api_requests_per_tick(
    kube: Kube, namespace: str, controller: ControllerProcess
) -> None:
    kube.create(make_deployment("web", namespace, replicas=1, image="web:1"))
    kube.create(make_canary("web", namespace, analysis={"interval": "1s", "threshold": 2, "stepWeight": 10}))
    wait_phase(kube, namespace, "web", "Initialized")
    ticks = metric_total(controller, "canary_ticks_total", result="ok")
    wait_until(lambda: metric_total(controller, "canary_ticks_total", result="ok"), lambda n: n >= ticks + 1,
               what="a tick after initialisation", timeout=10)
    requests = metric_total(controller, "canary_api_requests_total")
    ticks = metric_total(controller, "canary_ticks_total", result="ok")

    wait_until(lambda: metric_total(controller, "canary_ticks_total", result="ok"), lambda n: n >= ticks + 5,
               what="five idle ticks", timeout=20)

    assert metric_total(controller, "canary_api_requests_total") == requests


def test_an_autoscaler_reference_gets_a_primary_copy_pointing_at_the_primary(
    kube: Kube, namespace: str, controller: ControllerProcess
) -> None:
    kube.create(make_deployment("web", namespace, replicas=2, image="web:1"))
    kube.create({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
                 "metadata": {"name": "web", "namespace": namespace},
                 "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                          "minReplicas": 2, "maxReplicas": 4,
                          "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {
                              "type": "Utilization", "averageUtilization": 80}}}]}})
    kube.create(make_canary("web", namespace, autoscalerRef={"apiVersion": "autoscaling/v2",
                                                             "kind": "HorizontalPodAutoscaler", "name": "web",
                                                             "primaryScalerReplicas": {"maxReplicas": 6}}))
    wait_phase(kube, namespace, "web", "Initialized")

    copy = kube.get("autoscaling/v2", "HorizontalPodAutoscaler", "web-primary", namespace=namespace)
    assert copy is not None
    assert copy["spec"]["scaleTargetRef"]["name"] == "web-primary"
    assert (copy["spec"]["minReplicas"], copy["spec"]["maxReplicas"]) == (2, 6)
    assert copy["metadata"]["ownerReferences"][0]["kind"] == "Canary"
