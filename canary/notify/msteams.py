"""Microsoft Teams: an Adaptive Card in a ``message`` envelope.

``registry.py`` maps ``type: msteams`` here. Why an Adaptive Card and not Flagger's MessageCard:
Microsoft is retiring the Office 365 connectors that render MessageCards, and the webhooks of
Teams Workflows (their replacement) take only Adaptive Cards, while the remaining connector
webhooks accept Adaptive Cards too; one format serves both. The envelope and card follow
https://learn.microsoft.com/microsoftteams/platform/webhooks-and-connectors/how-to/connectors-using
(``type: message``, one attachment of ``contentType: application/vnd.microsoft.card.adaptive``)
and https://adaptivecards.io/explorer/ (a Container styled by severity, TextBlocks, a FactSet).
Adaptive Cards have no ``themeColor``: the container's style carries the colour.
"""

from __future__ import annotations

from typing import Any

from canary.notify.base import Notice
from canary.notify.format import facts, headline

CARD_VERSION = "1.4"  # the newest version every Teams client renders
# Adaptive Cards name their colours; Container styles and TextBlock colours share these names.
_COLOURS = {"info": "accent", "warn": "warning", "error": "attention"}


def msteams_payload(notice: Notice, *, channel: str | None = None, username: str | None = None) -> dict[str, Any]:
    """The message for a Teams webhook (Workflows or incoming webhook)."""
    card = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": CARD_VERSION,
        "msteams": {"width": "Full"},
        "body": [
            {"type": "Container", "style": _COLOURS[notice.severity], "bleed": True, "items": [
                {"type": "TextBlock", "text": headline(notice), "weight": "Bolder", "size": "Medium",
                 "color": _COLOURS[notice.severity], "wrap": True},
            ]},
            {"type": "TextBlock", "text": notice.message, "wrap": True},
            {"type": "FactSet", "facts": [{"title": name, "value": value} for name, value in facts(notice)]},
        ],
    }
    return {
        "type": "message",
        "summary": f"{headline(notice)}: {notice.message}",
        "attachments": [{"contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": None,
                         "content": card}],
    }
