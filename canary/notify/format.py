"""What an alert says in every service: its headline, its facts and its colour.

The payload builders (slack.py, msteams.py, discord.py, rocket.py, gchat.py) call these, so that a
notice reads the same whichever chat it lands in.
"""

from __future__ import annotations

from canary.notify.base import Notice

# Hex colours, because every Slack-like service accepts them, while Slack's named colours
# ("good", "danger") are Slack's own. Blue for info: a promotion is news, not a success signal.
COLOURS = {"info": "#1F8DD6", "warn": "#ECB22E", "error": "#E01E5A"}


def headline(notice: Notice) -> str:
    """Which canary, and in which cluster when one is named: ``shop/web in prod-eu``."""
    where = f"{notice.namespace}/{notice.canary}"
    return f"{where} in {notice.cluster}" if notice.cluster else where


def facts(notice: Notice) -> list[tuple[str, str]]:
    """Phase and revision, then the details (metric and value against its bound, for example)."""
    return [("Phase", notice.phase), ("Revision", notice.revision), *notice.details]
