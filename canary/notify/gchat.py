"""Google Chat incoming webhooks: a ``cardsV2`` card message.

``registry.py`` maps ``type: gchat`` here. The format follows
https://developers.google.com/workspace/chat/api/reference/rest/v1/cards (``cardsV2`` of
``cardId`` and ``card``: a ``header`` with ``title`` and ``subtitle``, ``sections`` of
``widgets``): the message as a ``textParagraph`` coloured by severity, each fact as a
``decoratedText`` with its name as ``topLabel``. A top-level ``text`` carries the notification
for clients that show no cards. Card text is Google Chat's HTML subset, so values are escaped.
"""

from __future__ import annotations

from html import escape
from typing import Any

from canary.notify.base import Notice
from canary.notify.format import COLOURS, facts, headline


def gchat_payload(notice: Notice, *, channel: str | None = None, username: str | None = None) -> dict[str, Any]:
    """The message for a Google Chat space's incoming webhook."""
    message = f'<font color="{COLOURS[notice.severity]}"><b>{escape(notice.message)}</b></font>'
    return {
        "text": f"{headline(notice)}: {notice.message}",
        "cardsV2": [{
            "cardId": f"canary-{notice.namespace}-{notice.canary}",
            "card": {
                "header": {"title": headline(notice), "subtitle": f"{notice.severity} · {notice.phase}"},
                "sections": [
                    {"widgets": [{"textParagraph": {"text": message}}]},
                    {"widgets": [{"decoratedText": {"topLabel": escape(name), "text": escape(value)}}
                                 for name, value in facts(notice)]},
                ],
            },
        }],
    }
