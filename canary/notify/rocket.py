"""Rocket.Chat incoming webhooks: text plus Slack-like attachments.

``registry.py`` maps ``type: rocket`` here. The format of Rocket.Chat's incoming webhooks (its
administration guide, "Integrations"): ``text``,
``channel``, ``alias`` (the displayed sender name, our ``username``) and ``attachments`` with
``color``, ``title``, ``text`` and ``fields`` of ``title``/``value``/``short``.
"""

from __future__ import annotations

from typing import Any

from canary.notify.base import Notice
from canary.notify.format import COLOURS, headline


def rocket_payload(notice: Notice, *, channel: str | None = None, username: str | None = None) -> dict[str, Any]:
    """The message for a Rocket.Chat incoming webhook."""
    fields = [{"title": "Phase", "value": notice.phase, "short": True},
              {"title": "Revision", "value": notice.revision, "short": True}]
    fields += [{"title": name, "value": value, "short": False} for name, value in notice.details]
    body: dict[str, Any] = {
        "text": f"{headline(notice)}: {notice.message}",
        "attachments": [{"color": COLOURS[notice.severity], "title": headline(notice), "text": notice.message,
                         "fields": fields}],
    }
    if channel:
        body["channel"] = channel
    if username:
        body["alias"] = username
    return body
