"""What each gating webhook receives, against a local HTTP receiver: Flagger's CanaryWebhookPayload,
with the phase Flagger's scheduler sends for each hook type (pkg/controller/scheduler_hooks.go);
and what a closed gate's answer carries back."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from canary.engine.checks import CheckRunner
from canary.engine.decide import Check
from canary.models.base import API_VERSION
from canary.models.canary import Canary
from canary.webhooks import WebhookCaller
from tests.builders import make_canary
from tests.fakes import FakeKube, informer
from tests.httpfakes import Answer, FakeServer

HOOK_OF = {Check.CONFIRM_ROLLOUT: "confirm-rollout", Check.PRE_ROLLOUT: "pre-rollout", Check.ANALYSIS: "rollout",
           Check.CONFIRM_TRAFFIC_INCREASE: "confirm-traffic-increase", Check.CONFIRM_PROMOTION: "confirm-promotion",
           Check.ROLLBACK: "rollback"}


def _payload(check: Check, phase: str) -> dict[str, Any]:
    kube = FakeKube()
    with FakeServer(lambda seen: Answer(status=403)) as receiver:
        obj = make_canary("web", "apps", analysis={"interval": "1s", "threshold": 2, "stepWeight": 10, "webhooks": [
            {"name": "hook", "type": HOOK_OF[check], "url": f"{receiver.url}/hook", "metadata": {"cmd": "hey"}}]})
        canary = Canary.from_object({**obj, "status": {"phase": phase}})
        runner = CheckRunner(webhooks=WebhookCaller(wait=5.0), templates=informer(kube, API_VERSION, "MetricTemplate"),
                             secrets=informer(kube, "v1", "Secret"), metrics_server="http://unused",
                             clock=lambda: dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
        runner.run(check, canary, revision="rev-2", provider="kubernetes")
    (seen,) = receiver.seen
    assert seen.headers["content-type"] == "application/json"
    body: dict[str, Any] = seen.json()
    return body


@pytest.mark.parametrize("phase", ["Progressing", "Waiting", "WaitingPromotion"])
def test_rollback_hooks_are_sent_the_canarys_own_phase(phase: str) -> None:
    assert _payload(Check.ROLLBACK, phase)["phase"] == phase


def test_confirm_rollout_hooks_are_sent_the_canarys_own_phase() -> None:
    assert _payload(Check.CONFIRM_ROLLOUT, "Succeeded")["phase"] == "Succeeded"


@pytest.mark.parametrize("check", [Check.PRE_ROLLOUT, Check.ANALYSIS, Check.CONFIRM_TRAFFIC_INCREASE,
                                   Check.CONFIRM_PROMOTION])
def test_the_other_gating_hooks_are_sent_progressing_whatever_the_phase(check: Check) -> None:
    assert _payload(check, "WaitingPromotion") == {
        "name": "web", "namespace": "apps", "phase": "Progressing", "checksum": "rev-2", "type": HOOK_OF[check],
        "metadata": {"cmd": "hey"}}


@pytest.mark.parametrize("mute", [True, False])
def test_a_closed_gate_says_whether_its_hook_mutes_the_alert(mute: bool) -> None:
    kube = FakeKube()
    with FakeServer(lambda seen: Answer(status=200 if seen.path == "/open" else 403)) as receiver:
        obj = make_canary("web", "apps", analysis={"interval": "1s", "threshold": 2, "stepWeight": 10, "webhooks": [
            {"name": "open", "type": "confirm-rollout", "url": f"{receiver.url}/open"},
            {"name": "gate", "type": "confirm-rollout", "url": f"{receiver.url}/gate/halt", "muteAlert": mute}]})
        runner = CheckRunner(webhooks=WebhookCaller(wait=5.0), templates=informer(kube, API_VERSION, "MetricTemplate"),
                             secrets=informer(kube, "v1", "Secret"), metrics_server="http://unused",
                             clock=lambda: dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
        result = runner.run(Check.CONFIRM_ROLLOUT, Canary.from_object(obj), revision="rev-2", provider="kubernetes")
    assert (result.passed, result.muted) == (False, mute)
    assert result.message == "webhook gate answered HTTP 403 Forbidden"
