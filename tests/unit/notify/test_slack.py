from __future__ import annotations

from typing import Any

import requests
from prometheus_client import REGISTRY

from canary.local.waiting import wait_until
from canary.notify.base import Notice
from canary.notify.slack import SlackNotifier, slack_payload
from tests.e2e.receivers import receiver

NOTICE = Notice(canary="web", namespace="shop", severity="error", message="Failed checks threshold reached 2",
                phase="Progressing", revision="abc123")


def _dropped() -> float:
    return REGISTRY.get_sample_value("canary_alerts_dropped_total") or 0.0


def test_the_payload_is_slack_attachments_coloured_by_severity() -> None:
    body = slack_payload(NOTICE, cluster="prod-eu")
    assert body["text"] == "shop/web in prod-eu: Failed checks threshold reached 2"
    assert body["attachments"][0]["color"] == "danger"
    assert {"title": "Revision", "value": "abc123", "short": True} in body["attachments"][0]["fields"]


def test_alerts_reach_a_real_http_receiver() -> None:
    with receiver() as hooks:
        notifier = SlackNotifier(hooks.url("/slack"))
        notifier.notify(NOTICE)
        notifier.close()
        wait_until(lambda: hooks.calls, bool, what="the alert", timeout=10)
    path, body = hooks.calls[0]
    assert path == "/slack"
    assert body["attachments"][0]["color"] == "danger"


def test_undeliverable_alerts_are_retried_then_counted_as_dropped() -> None:
    calls: list[dict[str, Any]] = []

    def refuse(url: str, **kwargs: Any) -> requests.Response:
        calls.append(kwargs["json"])
        raise requests.ConnectionError("refused")

    before = _dropped()
    notifier = SlackNotifier("http://127.0.0.1:9/", post=refuse, attempts=2)
    notifier.notify(NOTICE)
    notifier.close()
    assert len(calls) == 2
    assert _dropped() == before + 1
