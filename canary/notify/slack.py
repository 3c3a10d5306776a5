"""Alerts to a Slack incoming webhook (``--slack-url``), sent from a thread so a tick never waits.

The queue is bounded: when the receiver is down for long, new alerts are dropped, counted in
``canary_alerts_dropped_total`` and logged, rather than piling up without end.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any

import requests
import structlog
from prometheus_client import Counter

from canary.notify.base import Notice

log = structlog.get_logger(__name__)
DROPPED = Counter("canary_alerts_dropped_total", "Alerts dropped because the queue was full or delivery failed.")
SENT = Counter("canary_alerts_sent_total", "Alerts delivered.")
_COLOURS = {"info": "good", "warn": "warning", "error": "danger"}
Post = Callable[..., requests.Response]


def slack_payload(notice: Notice, *, cluster: str) -> dict[str, Any]:
    """Slack's attachment format, coloured by severity."""
    where = f"{notice.namespace}/{notice.canary}" + (f" in {cluster}" if cluster else "")
    return {
        "text": f"{where}: {notice.message}",
        "attachments": [{
            "color": _COLOURS.get(notice.severity, "good"),
            "fields": [{"title": "Phase", "value": notice.phase, "short": True},
                       {"title": "Revision", "value": notice.revision, "short": True}],
        }],
    }


class SlackNotifier:
    """Queues alerts and posts them to one webhook URL, with a few retries."""

    def __init__(self, url: str, *, cluster: str = "", post: Post = requests.post, capacity: int = 100,
                 attempts: int = 3, timeout: float = 5.0) -> None:
        self._url, self._cluster, self._post = url, cluster, post
        self._attempts, self._timeout = attempts, timeout
        self._queue: queue.Queue[Notice | None] = queue.Queue(maxsize=capacity)
        self._thread = threading.Thread(target=self._deliver, name="slack-notifier", daemon=True)
        self._thread.start()

    def notify(self, notice: Notice) -> None:
        """Queue ``notice``; drop it (and count) when the queue is full."""
        try:
            self._queue.put_nowait(notice)
        except queue.Full:
            DROPPED.inc()
            log.warning("alert dropped: queue full", canary=notice.canary, message=notice.message)

    def close(self, timeout: float = 5.0) -> None:
        """Deliver what is queued (within ``timeout``), then stop."""
        self._queue.put(None)
        self._thread.join(timeout)

    def _deliver(self) -> None:
        while (notice := self._queue.get()) is not None:
            self._send(notice)

    def _send(self, notice: Notice) -> None:
        body = slack_payload(notice, cluster=self._cluster)
        for attempt in range(1, self._attempts + 1):
            try:
                response = self._post(self._url, json=body, timeout=self._timeout)
                if response.status_code < 300:
                    SENT.inc()
                    return
                problem = f"HTTP {response.status_code}"
            except requests.RequestException as exc:
                problem = type(exc).__name__
            if attempt < self._attempts:
                threading.Event().wait(0.5 * attempt)
        DROPPED.inc()
        log.warning("alert not delivered", canary=notice.canary, problem=problem)
