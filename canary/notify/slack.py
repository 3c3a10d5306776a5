"""Slack incoming webhooks: the payload of a notice, in Slack's attachment format.

``registry.py`` maps ``type: slack`` here; ``discord.py`` reuses the shape for Discord's
Slack-compatible endpoint. Slack's format: https://api.slack.com/reference/messaging/attachments
(a top-level ``text`` as the notification, one attachment with ``color``, ``fallback`` and
``fields`` of ``title``/``value``/``short``; ``channel`` and ``username`` override the webhook's).
"""

from __future__ import annotations

from typing import Any

from canary.notify.base import Notice
from canary.notify.format import COLOURS, headline


def _escape(text: str) -> str:
    # Slack reads <...> as links and mentions and asks for &, < and > to be escaped
    # (https://api.slack.com/reference/surfaces/formatting#escaping); "75 < 99" must stay text.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _same(text: str) -> str:
    return text


def slack_like_payload(notice: Notice, *, channel: str | None, username: str | None,
                       escape: bool) -> dict[str, Any]:
    """Slack's attachment message; ``escape`` for Slack itself, not for services that copy its shape."""
    out = _escape if escape else _same
    text = out(f"{headline(notice)}: {notice.message}")
    fields = [{"title": "Phase", "value": out(notice.phase), "short": True},
              {"title": "Revision", "value": out(notice.revision), "short": True}]
    fields += [{"title": out(name), "value": out(value), "short": False} for name, value in notice.details]
    body: dict[str, Any] = {
        "text": text,
        "attachments": [{"color": COLOURS[notice.severity], "fallback": text, "fields": fields}],
    }
    if channel:
        body["channel"] = channel
    if username:
        body["username"] = username
    return body


def slack_payload(notice: Notice, *, channel: str | None = None, username: str | None = None) -> dict[str, Any]:
    """The message for a Slack incoming webhook."""
    return slack_like_payload(notice, channel=channel, username=username, escape=True)
