"""Discord webhooks, through Discord's Slack-compatible endpoint (``<webhook>/slack``).

``registry.py`` maps ``type: discord`` here, as Flagger does: the same attachments as Slack
(https://discord.com/developers/docs/resources/webhook#execute-slackcompatible-webhook), posted to
the webhook's address with ``/slack`` appended. A Discord webhook belongs to one channel, so
``channel`` is not sent; ``username`` overrides the webhook's name. Text is not HTML-escaped:
Discord shows entities such as ``&lt;`` literally.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

from canary.notify.base import Notice
from canary.notify.slack import slack_like_payload


def discord_url(address: str) -> str:
    """The Slack-compatible endpoint of a Discord webhook address (kept as is if already there)."""
    parts = urlsplit(address)
    path = parts.path.rstrip("/")
    if not path.endswith("/slack"):
        path += "/slack"
    return urlunsplit(parts._replace(path=path))


def discord_payload(notice: Notice, *, channel: str | None = None, username: str | None = None) -> dict[str, Any]:
    """The Slack-shaped message Discord's ``/slack`` endpoint accepts."""
    return slack_like_payload(notice, channel=None, username=username, escape=False)
