"""Flagger's own load tester, unchanged, driven by our controller's webhooks as Flagger's Canaries use it:
its manual gates (``/gate/*``, ``/rollback/*``) and its command endpoint (``/``, with ``hey``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from canary.kube.client import Kube
from canary.waiting import wait_until
from tests.builders import make_canary, make_deployment
from tests.e2e.canaries import canary_status, deployment, events, image_of, release, route_weights, wait_phase
from tests.e2e.controllers import ControllerProcess
from tests.e2e.loadtesters import LoadTester
from tests.httpfakes import Answer, FakeServer, Seen

pytestmark = pytest.mark.usefixtures("gateway_api_crds")


@pytest.fixture
def tester(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[LoadTester]:
    """A flagger-loadtester for the test, stopped after it."""
    process = LoadTester(tmp_path / "loadtester")
    process.start()
    yield process
    process.stop()
    failed = getattr(request.node, "rep_call", None)
    if failed is not None and failed.failed:
        print(process.log_text()[-6000:])


def _count(tester: LoadTester, message: str) -> int:
    return tester.messages().count(message)


def test_a_confirm_promotion_gate_on_the_load_tester_holds_the_release_until_the_gate_is_opened(
    kube: Kube, namespace: str, controller: ControllerProcess, tester: LoadTester
) -> None:
    kube.create(make_deployment("web", namespace, replicas=1, image="web:1"))
    kube.create(make_canary("web", namespace, analysis={
        "interval": "1s", "threshold": 3, "stepWeight": 50, "maxWeight": 50, "webhooks": [
            {"name": "approve", "type": "confirm-rollout", "url": tester.url("/gate/approve")},
            {"name": "promotion-gate", "type": "confirm-promotion", "url": tester.url("/gate/check")}]}))
    wait_phase(kube, namespace, "web", "Initialized")
    release(kube, namespace, "web:2")

    wait_phase(kube, namespace, "web", "WaitingPromotion")
    closed = f"web.{namespace} gate check: approved false"
    wait_until(lambda: _count(tester, closed), lambda n: n >= 3, what="the gate asked three times", timeout=30)
    assert canary_status(kube, namespace, "web")["phase"] == "WaitingPromotion"
    assert image_of(deployment(kube, namespace, "web-primary")) == "web:1", "nothing promoted while closed"
    assert route_weights(kube, namespace, "web") == (50, 50)

    assert tester.post("/gate/open", name="web", namespace=namespace) == 202
    wait_phase(kube, namespace, "web", "Succeeded", timeout=60)
    assert image_of(deployment(kube, namespace, "web-primary")) == "web:2"
    assert f"web.{namespace} gate check: approved true" in tester.messages()

    # The load tester keeps a gate open until it is closed: closing it holds the next release again.
    assert tester.post("/gate/close", name="web", namespace=namespace) == 202
    release(kube, namespace, "web:3")
    wait_phase(kube, namespace, "web", "WaitingPromotion")
    assert image_of(deployment(kube, namespace, "web-primary")) == "web:2"


def test_opening_the_load_testers_rollback_gate_rolls_a_running_release_back(
    kube: Kube, namespace: str, controller: ControllerProcess, tester: LoadTester
) -> None:
    kube.create(make_deployment("web", namespace, replicas=1, image="web:1"))
    kube.create(make_canary("web", namespace, analysis={
        "interval": "1s", "threshold": 3, "stepWeight": 2, "maxWeight": 100, "webhooks": [
            {"name": "rollback", "type": "rollback", "url": tester.url("/rollback/check")}]}))
    wait_phase(kube, namespace, "web", "Initialized")
    release(kube, namespace, "web:2")
    wait_until(lambda: route_weights(kube, namespace, "web"), lambda w: w is not None and w[1] >= 4,
               what="the canary to get traffic", timeout=30)
    assert f"rollback.web.{namespace} rollback check: approved false" in tester.messages()

    assert tester.post("/rollback/open", name="web", namespace=namespace) == 202
    failed = wait_phase(kube, namespace, "web", "Failed", timeout=30)

    assert failed["failedChecks"] == 0, "rolled back on request, not for failed checks"
    assert route_weights(kube, namespace, "web") == (100, 0)
    assert image_of(deployment(kube, namespace, "web-primary")) == "web:1"
    assert deployment(kube, namespace, "web")["spec"]["replicas"] == 0
    assert f"rollback.web.{namespace} rollback check: approved true" in tester.messages()
    assert any("rollback webhook invoked" in e["message"] for e in events(kube, namespace, "web"))


def test_a_pre_rollout_cmd_hook_makes_the_load_tester_run_hey_against_the_canary(
    kube: Kube, namespace: str, controller: ControllerProcess, tester: LoadTester
) -> None:
    with FakeServer(lambda seen: Answer(body=b"podinfo")) as app:  # stands in for the canary Service
        command = f"hey -n 20 -c 2 {app.url}/"
        kube.create(make_deployment("web", namespace, replicas=1, image="web:1"))
        kube.create(make_canary("web", namespace, analysis={
            "interval": "1s", "threshold": 2, "stepWeight": 50, "maxWeight": 50, "webhooks": [
                {"name": "load-test", "type": "pre-rollout", "url": tester.url("/"), "timeout": "5s",
                 "metadata": {"type": "cmd", "cmd": command, "logCmdOutput": "true"}}]}))
        wait_phase(kube, namespace, "web", "Initialized")
        release(kube, namespace, "web:2")

        wait_phase(kube, namespace, "web", "Succeeded", timeout=60)
        wait_until(tester.messages, lambda found: f"command finished {command}" in found,
                   what="hey to finish on the load tester", timeout=30)
        requests = list(app.seen)

    assert len(requests) == 20
    assert {seen.headers["user-agent"].split("/")[0] for seen in requests} == {"hey"}
    assert _count(tester, f"task starting {command}") == 1, "the pre-rollout hook runs once, at the first step"
    assert any("Status code distribution" in m and "[200]\t20 responses" in m for m in tester.messages()), \
        "hey's report, logged with logCmdOutput"


def test_a_failing_bash_acceptance_test_on_the_load_tester_fails_the_pre_rollout_check_until_it_passes(
    kube: Kube, namespace: str, controller: ControllerProcess, tester: LoadTester
) -> None:
    ready = {"token": False}

    def token(seen: Seen) -> Answer:
        return Answer(body={"token": "t"}) if ready["token"] else Answer(status=503, body=b"not yet")

    with FakeServer(token) as app:
        command = f"curl -sfd 'test' {app.url}/token | grep token"
        kube.create(make_deployment("web", namespace, replicas=1, image="web:1"))
        kube.create(make_canary("web", namespace, analysis={
            "interval": "1s", "threshold": 30, "stepWeight": 50, "maxWeight": 50, "webhooks": [
                {"name": "acceptance-test", "type": "pre-rollout", "url": tester.url("/"), "timeout": "30s",
                 "metadata": {"type": "bash", "cmd": command}}]}))
        wait_phase(kube, namespace, "web", "Initialized")
        release(kube, namespace, "web:2")

        failing = wait_until(lambda: canary_status(kube, namespace, "web"), lambda s: s.get("failedChecks", 0) >= 2,
                             what="failed pre-rollout checks", timeout=30)
        assert failing["canaryWeight"] == 0, "no traffic before the acceptance test passes"
        assert any(m.startswith(f"command failed {command}") for m in tester.messages())

        ready["token"] = True
        passed = wait_phase(kube, namespace, "web", "Succeeded", timeout=60)

    assert passed["failedChecks"] >= 2
    assert f"command finished {command}" in tester.messages()
    assert image_of(deployment(kube, namespace, "web-primary")) == "web:2"
