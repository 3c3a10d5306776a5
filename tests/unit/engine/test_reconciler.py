"""The reconciler's tick over fakes at the canary.kube boundary: what it writes, and what it reports.

The end-to-end tests run the same ticks against a real API server; these pin the rules quickly.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from prometheus_client import REGISTRY
from structlog.testing import capture_logs

from canary.engine.canaries import Canaries
from canary.engine.checks import CheckRunner
from canary.engine.decide import REQUEST_ANNOTATION
from canary.engine.effects import SetStatus
from canary.engine.reconciler import FINALIZER, Reconciler, _record_run
from canary.errors import Forbidden
from canary.kube import Obj
from canary.kube.events import EventRecorder
from canary.models.base import API_VERSION
from canary.models.canary import Canary, MetricResult, Phase
from canary.notify.base import AlertRoute, LogNotifier, Notice, Notifier, Settled
from canary.routers.base import RouterContext
from canary.routers.registry import RouterRegistry
from canary.webhooks import WebhookCaller
from canary.workloads.deployments import Deployments
from tests.builders import make_canary, make_deployment
from tests.fakes import FakeKube, informer

NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


class Cluster:
    """A fake cluster and a reconciler wired to it as the controller wires one."""

    def __init__(self, *objects: Obj, notifier: Notifier | None = None) -> None:
        self.kube = FakeKube(*objects)
        self.notifier = notifier or LogNotifier()
        kube = self.kube.as_kube()
        self.caches = {kind: informer(self.kube, version, kind) for version, kind in (
            (API_VERSION, "Canary"), ("apps/v1", "Deployment"), ("v1", "ConfigMap"), ("v1", "Secret"),
            ("v1", "Service"), (API_VERSION, "MetricTemplate"))}
        self.canaries = Canaries(self.caches["Canary"])
        deployments = Deployments(kube, deployments=self.caches["Deployment"], configmaps=self.caches["ConfigMap"],
                                  secrets=self.caches["Secret"])
        by_kind = {(c.api_version, c.kind): c for c in self.caches.values()}
        routers = RouterRegistry(RouterContext(kube, cache=lambda api_version, kind: by_kind[(api_version, kind)]),
                                 default="kubernetes")
        webhooks = WebhookCaller()
        self.reconciler = Reconciler(
            kube=kube, canaries=self.canaries, deployments=deployments, routers=routers,
            checks=CheckRunner(webhooks=webhooks, templates=self.caches["MetricTemplate"],
                               secrets=self.caches["Secret"], metrics_server="http://prometheus", clock=lambda: NOW),
            webhooks=webhooks, events=EventRecorder(kube), notifier=self.notifier,
            clock=lambda: NOW, settle_in_background=False)

    def reconciler_notifier(self) -> HeldNotifier:
        notifier = self.notifier
        assert isinstance(notifier, HeldNotifier)
        return notifier

    def tick(self, name: str = "web") -> str:
        self.kube.calls.clear()
        return self.reconciler.tick("apps", name)

    def canary(self, name: str = "web") -> Obj:
        found = self.caches["Canary"].get("apps", name)
        assert found is not None
        return found

    def ready(self, name: str) -> None:
        """What kube-controller-manager and kwok would do: the Deployment's pods are all up."""
        obj = self.kube.objects[("Deployment", "apps", name)]
        replicas = obj["spec"].get("replicas", 1)
        obj["metadata"]["generation"] = 1
        obj["status"] = {"observedGeneration": 1, "replicas": replicas, "updatedReplicas": replicas,
                         "availableReplicas": replicas, "readyReplicas": replicas}
        self.caches["Deployment"].store(obj)

    def annotate(self, key: str, value: str, name: str = "web") -> None:
        """Annotate the Canary through the API, as kubectl would, and let the cache hear of it."""
        self.caches["Canary"].store(self.kube.merge_patch(API_VERSION, "Canary", name, namespace="apps",
                                                          patch={"metadata": {"annotations": {key: value}}}))

    def events(self) -> list[str]:
        return [f"{o['reason']}: {o['message']}" for (kind, _, _), o in self.kube.objects.items() if kind == "Event"]


def _canary(name: str = "web", **analysis: Any) -> Obj:
    body = make_canary("web", "apps", provider="kubernetes",
                       analysis={"interval": "10s", "threshold": 2, "iterations": 2, **analysis})
    body["metadata"]["name"] = name
    return body


def _sample(metric: str, /, **labels: str) -> float | None:
    return REGISTRY.get_sample_value(metric, labels)


def _condition(obj: Obj) -> dict[str, str]:
    return next(c for c in obj["status"]["conditions"] if c["type"] == "Ready")


def test_an_invalid_canary_gets_a_condition_naming_the_field_and_nothing_else() -> None:
    cluster = Cluster(make_deployment("web", "apps"), _canary(interval="bogus"))
    cluster.tick()
    ready = _condition(cluster.canary())
    assert ready["status"] == "False"
    assert ready["reason"] == "InvalidSpec"
    assert "spec.analysis.interval" in ready["message"]
    status_write, event = cluster.kube.writes()
    assert status_write == "patch Canary web/status"
    assert event.startswith("create Event web.")
    assert any("InvalidSpec: Canary apps/web: spec.analysis.interval" in e for e in cluster.events())
    assert ("Deployment", "apps", "web-primary") not in cluster.kube.objects

    cluster.tick()
    assert cluster.kube.writes() == [], "reported once, not at every tick"


def test_initialisation_records_the_revision_the_primary_was_made_from_and_sets_the_gauges() -> None:
    cluster = Cluster(make_deployment("web", "apps", image="web:1"), _canary())
    cluster.tick()
    primary = cluster.kube.objects[("Deployment", "apps", "web-primary")]
    made_from = primary["metadata"]["annotations"]["canary.dev/revision"]
    assert cluster.canary()["status"]["phase"] == "Initializing"

    # The target changes while the primary starts: the primary still runs what it was made from.
    target = cluster.kube.objects[("Deployment", "apps", "web")]
    target["spec"]["template"]["spec"]["containers"][0]["image"] = "web:2"
    cluster.caches["Deployment"].store(target)
    cluster.ready("web-primary")
    cluster.tick()
    status = cluster.canary()["status"]
    assert status["phase"] == "Initialized"
    assert status["lastPromotedSpec"] == status["lastAppliedSpec"] == made_from
    assert _sample("canary_status", name="web", namespace="apps") == 1
    assert _sample("canary_weight", name="web", namespace="apps", workload="web-primary") == 100
    assert _sample("canary_weight", name="web", namespace="apps", workload="web") == 0

    cluster.tick()
    status = cluster.canary()["status"]
    assert status["phase"] == "Progressing", "the change is released as a run"
    assert status["lastAppliedSpec"] != made_from
    assert _sample("canary_status", name="web", namespace="apps") == 0

    cluster.reconciler.forget("DELETED", cluster.canary())
    assert _sample("canary_status", name="web", namespace="apps") is None
    assert _sample("canary_weight", name="web", namespace="apps", workload="web-primary") is None


@pytest.mark.parametrize(("request_value", "words"), [
    ("promote/7", "promote refused: Canary apps/web-again: spec.targetRef web is already the target of Canary web"),
])
def test_a_request_to_a_canary_the_controller_will_not_act_on_is_refused_with_the_problem(
    request_value: str, words: str
) -> None:
    first = _canary()
    first["metadata"]["creationTimestamp"] = "2026-01-01T00:00:00Z"
    second = _canary("web-again")
    second["metadata"]["creationTimestamp"] = "2026-01-02T00:00:00Z"
    second["metadata"]["annotations"] = {REQUEST_ANNOTATION: request_value}
    cluster = Cluster(make_deployment("web", "apps"), first, second)
    cluster.tick("web-again")
    status = cluster.canary("web-again")["status"]
    assert _condition(cluster.canary("web-again"))["reason"] == "TargetConflict"
    assert status["handledRequest"] == request_value
    assert status["requestRefused"] == words


def test_a_field_that_becomes_unset_is_removed_from_the_stored_status() -> None:
    cluster = Cluster(make_deployment("web", "apps", image="web:1"), _canary())
    cluster.tick()
    cluster.ready("web-primary")
    cluster.tick()
    cluster.annotate(REQUEST_ANNOTATION, "promote/1")
    cluster.tick()
    assert cluster.canary()["status"]["requestRefused"].startswith("promote refused: the canary is Initialized")

    target = cluster.kube.objects[("Deployment", "apps", "web")]
    target["spec"]["template"]["spec"]["containers"][0]["image"] = "web:2"
    cluster.caches["Deployment"].store(target)
    cluster.tick()
    assert cluster.canary()["status"]["phase"] == "Progressing"
    cluster.annotate(REQUEST_ANNOTATION, "abort/2")
    cluster.tick()
    status = cluster.canary()["status"]
    assert status["handledRequest"] == "abort/2"
    assert status["phase"] == "Failed"
    assert "requestRefused" not in status, "an accepted request clears the last refusal"


@pytest.mark.parametrize(("metric", "words"), [
    ({"name": "request-latency-p42", "thresholdRange": {"max": 5}},
     "not a built-in metric (request-duration, request-success-rate) and no templateRef or query"),
    ({"name": "latency", "templateRef": {"name": "missing"}, "thresholdRange": {"max": 5}},
     "templateRef: MetricTemplate apps/missing not found"),
])
def test_a_metric_that_cannot_run_is_reported_at_initialisation_and_nothing_is_made(
    metric: dict[str, Any], words: str
) -> None:
    cluster = Cluster(make_deployment("web", "apps"), _canary(metrics=[metric]))
    cluster.tick()
    ready = _condition(cluster.canary())
    assert ready["reason"] == "InvalidMetric"
    assert words in ready["message"]
    assert ("Deployment", "apps", "web-primary") not in cluster.kube.objects


def test_a_write_the_api_server_refuses_becomes_a_condition_and_an_event_once_then_clears() -> None:
    cluster = Cluster(make_deployment("web", "apps", image="web:1"), _canary())
    apply = cluster.kube.apply

    def refuse_services(body: Obj, **options: Any) -> Obj:
        if body["kind"] == "Service":
            raise Forbidden('create Service apps/web-canary: services "web-canary" is forbidden: exceeded quota: '
                            "services, requested: services=1, used: services=2, limited: services=2")
        return apply(body, **options)

    cluster.kube.apply = refuse_services  # type: ignore[method-assign]
    cluster.tick()
    ready = _condition(cluster.canary())
    assert (ready["status"], ready["reason"]) == ("False", "Forbidden")
    assert "exceeded quota" in ready["message"]
    assert any(e.startswith("Forbidden: create Service apps/web-canary") for e in cluster.events())
    cluster.tick()
    assert cluster.kube.writes() == [], "reported once, not at every tick"

    cluster.kube.apply = apply  # type: ignore[method-assign]
    cluster.tick()
    assert _condition(cluster.canary())["status"] == "True"


def test_a_failure_the_scheduler_reports_becomes_the_condition_until_a_tick_succeeds() -> None:
    cluster = Cluster(make_deployment("web", "apps", image="web:1"), _canary())
    cluster.reconciler.report("apps", "web", "failed 3 times in a row, retrying in 240s: HTTP 500: range is full")
    ready = _condition(cluster.canary())
    assert (ready["status"], ready["reason"]) == ("False", "APIError")
    assert ready["message"] == ("Canary apps/web: failed 3 times in a row, retrying in 240s: HTTP 500: "
                                "range is full")
    cluster.tick()
    assert _condition(cluster.canary())["status"] == "True"


def test_a_config_written_just_before_its_canary_is_copied_for_the_primary_even_before_the_cache_has_it() -> None:
    target = make_deployment("web", "apps", image="web:1")
    target["spec"]["template"]["spec"]["volumes"] = [{"name": "settings", "configMap": {"name": "web-settings"}}]
    cluster = Cluster(target, _canary())
    # On the API server, not yet in the controller's cache (its watch event is on the way).
    cluster.kube.objects[("ConfigMap", "apps", "web-settings")] = {
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "web-settings", "namespace": "apps"},
        "data": {"color": "blue"}}
    cluster.tick()
    primary = cluster.kube.objects[("Deployment", "apps", "web-primary")]
    assert primary["spec"]["template"]["spec"]["volumes"][0]["configMap"]["name"] == "web-settings-primary"
    assert cluster.kube.objects[("ConfigMap", "apps", "web-settings-primary")]["data"] == {"color": "blue"}


class HeldNotifier:
    """Keeps the notices it is given; the test says when each delivery ends."""

    def __init__(self) -> None:
        self.notices: list[tuple[Notice, Settled | None]] = []

    def notify(self, notice: Notice, settled: Settled | None = None) -> None:
        self.notices.append((notice, settled))

    def delivers(self, alerts: tuple[AlertRoute, ...]) -> bool:
        return True  # a chat, as far as the reconciler can tell

    def deliver_all(self) -> None:
        held, self.notices = self.notices, []
        for _, settled in held:
            assert settled is not None
            settled(True)


def _pending(cluster: Cluster) -> list[str]:
    return [a["message"] for a in cluster.canary()["status"].get("pendingAlerts") or []]


def test_a_transitions_alert_is_pending_in_its_status_write_until_delivered_and_a_restart_sends_it_again() -> None:
    held = HeldNotifier()
    cluster = Cluster(make_deployment("web", "apps", image="web:1"), _canary(), notifier=held)
    cluster.tick()
    cluster.ready("web-primary")
    cluster.tick()
    initialised = "New Deployment detected, initialization completed."
    assert cluster.canary()["status"]["phase"] == "Initialized"
    assert _pending(cluster) == [initialised], "written with the transition"
    assert [n.message for n, _ in held.notices] == [initialised]

    # The controller is killed before the delivery: the next one finds the alert in the status.
    restarted = Cluster(*cluster.kube.objects.values(), notifier=HeldNotifier())
    restarted.tick()
    resent = restarted.reconciler_notifier()
    assert [n.message for n, _ in resent.notices] == [initialised]
    assert resent.notices[0][0].revision == cluster.canary()["status"]["lastAppliedSpec"]

    cluster.tick()
    assert len(held.notices) == 1, "sent once per process, not at every tick"
    held.deliver_all()
    assert _pending(cluster) == [], "removed once delivered"
    assert cluster.canary()["status"]["lastTransitionTime"] == "2026-01-01T00:00:00Z"


def test_an_alert_with_only_the_log_to_go_to_is_logged_after_its_transition_and_never_pending() -> None:
    initialised = "New Deployment detected, initialization completed."
    chat, log_only = Cluster(make_deployment("web", "apps", image="web:1"), _canary(), notifier=HeldNotifier()), \
        Cluster(make_deployment("web", "apps", image="web:1"), _canary())  # no alerts, no default destination
    for cluster in (chat, log_only):
        cluster.tick()
        cluster.ready("web-primary")
    with capture_logs() as logs:
        log_only.tick()
    assert log_only.canary()["status"]["phase"] == "Initialized"
    assert _pending(log_only) == [], "nothing to deliver at least once"
    assert [(e["message"], e["revision"]) for e in logs if e["event"] == "alert"] == \
        [(initialised, log_only.canary()["status"]["lastAppliedSpec"])]
    assert log_only.kube.writes().count("patch Canary web/status") == 1, "the transition's write, and no other"

    chat.tick()
    chat.kube.calls.clear()
    chat.reconciler_notifier().deliver_all()
    assert chat.kube.writes() == ["patch Canary web/status"], "a chat's alert is pending, then removed"


def test_an_alert_not_handed_over_is_sent_again_at_the_next_tick() -> None:
    held = HeldNotifier()
    cluster = Cluster(make_deployment("web", "apps", image="web:1"), _canary(), notifier=held)
    cluster.tick()
    cluster.ready("web-primary")
    cluster.tick()
    notice, settled = held.notices.pop()
    assert settled is not None
    settled(False)  # the queue was full
    assert len(_pending(cluster)) == 1
    cluster.tick()
    assert [n.message for n, _ in held.notices] == [notice.message]


def test_a_deleted_canary_whose_provider_is_not_supported_is_reported_by_field_and_keeps_its_finalizer() -> None:
    body = _canary()
    body["spec"] |= {"provider": "appmesh", "revertOnDeletion": True}
    body["metadata"] |= {"deletionTimestamp": "2026-01-01T00:00:00Z", "finalizers": [FINALIZER]}
    cluster = Cluster(make_deployment("web", "apps"), body)

    assert "spec.provider 'appmesh'" in cluster.tick()
    ready = _condition(cluster.canary())
    assert (ready["status"], ready["reason"]) == ("False", "InvalidSpec")
    assert ready["message"].startswith("Canary apps/web: spec.provider 'appmesh': AWS App Mesh is retired")
    assert cluster.canary()["metadata"]["finalizers"] == [FINALIZER], "the revert has not happened"


def _sample_or_zero(metric: str, /, **labels: str) -> float:
    return _sample(metric, **labels) or 0.0


@pytest.mark.parametrize(("phase", "counter", "analysis_status", "extra"), [
    ("Succeeded", "canary_successes_total", "completed", {}),
    ("Succeeded", "canary_successes_total", "skipped", {"skipAnalysis": True}),
    ("Failed", "canary_failures_total", "completed", {}),
])
def test_the_end_of_a_run_counts_its_outcome_and_observes_its_duration(
    phase: str, counter: str, analysis_status: str, extra: dict[str, Any]
) -> None:
    body = _canary(name="runs")
    body["spec"].update(extra)
    started = NOW - dt.timedelta(seconds=90)
    body["status"] = {"phase": "Finalising" if phase == "Succeeded" else "Progressing", "conditions": [
        {"type": "Promoted", "status": "Unknown", "reason": "Progressing",
         "lastTransitionTime": started.strftime("%Y-%m-%dT%H:%M:%SZ")}]}
    canary = Canary.model_validate(body)
    labels = {"name": "runs", "namespace": "apps", "deployment_strategy": "blue-green",  # iterations, no match
              "analysis_status": analysis_status}
    before = _sample_or_zero(counter, **labels)
    durations = _sample_or_zero("canary_duration_seconds_sum", name="runs", namespace="apps")
    result = MetricResult(name="request-success-rate", value=99.5, verdict="pass", time=NOW)

    _record_run(canary, SetStatus(phase=Phase(phase), analysis=(result,)), NOW)
    assert _sample_or_zero(counter, **labels) == before + 1
    assert _sample_or_zero("canary_duration_seconds_sum", name="runs", namespace="apps") == durations + 90
    assert _sample("canary_metric_analysis", name="runs", namespace="apps", metric="request-success-rate") == 99.5

    _record_run(canary.model_copy(update={"status": canary.status.model_copy(update={"phase": Phase(phase)})}),
                SetStatus(phase=Phase(phase)), NOW)
    assert _sample_or_zero(counter, **labels) == before + 1, "a phase written again is not another run"
