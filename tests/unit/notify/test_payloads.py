"""Each service's payload, in the structure that service documents, with every detail in it."""

from __future__ import annotations

from typing import Any

import pytest

from canary.notify.discord import discord_payload
from canary.notify.format import COLOURS
from canary.notify.gchat import gchat_payload
from canary.notify.generic import generic_payload
from canary.notify.msteams import msteams_payload
from canary.notify.registry import SERVICES
from canary.notify.rocket import rocket_payload
from canary.notify.slack import slack_payload
from tests.unit.notify.notices import NOTICE, notice


def test_slack_is_a_text_and_one_attachment_coloured_by_severity_with_every_fact_as_a_field() -> None:
    body = slack_payload(NOTICE)
    assert body["text"] == "shop/web in prod-eu: Canary analysis failed, rolling back"
    [attachment] = body["attachments"]
    assert attachment["color"] == COLOURS["error"]
    assert attachment["fallback"] == body["text"]
    assert attachment["fields"] == [
        {"title": "Phase", "value": "Progressing", "short": True},
        {"title": "Revision", "value": "abc123", "short": True},
        {"title": "request-success-rate", "value": "75.2 &lt; 99", "short": False},
        {"title": "request-duration", "value": "812 &gt; 500", "short": False},
    ]
    assert "channel" not in body
    assert "username" not in body


@pytest.mark.parametrize(("severity", "colour"), [("info", "#1F8DD6"), ("warn", "#ECB22E"), ("error", "#E01E5A")])
def test_slack_colours_follow_the_severity(severity: str, colour: str) -> None:
    assert slack_payload(notice(severity=severity))["attachments"][0]["color"] == colour


def test_slack_sends_channel_and_username_when_the_provider_sets_them() -> None:
    body = slack_payload(NOTICE, channel="#deploys", username="canary")
    assert (body["channel"], body["username"]) == ("#deploys", "canary")


def test_slack_escapes_the_characters_it_would_read_as_markup() -> None:
    body = slack_payload(notice(message="latency <p99> & errors", cluster=""))
    assert body["text"] == "shop/web: latency &lt;p99&gt; &amp; errors"


def test_discord_gets_slack_attachments_unescaped_and_without_a_channel() -> None:
    body = discord_payload(NOTICE, channel="#deploys", username="canary")
    assert "channel" not in body  # Discord's /slack endpoint does not take one: the webhook is the channel
    assert body["username"] == "canary"
    assert body["attachments"][0]["color"] == COLOURS["error"]
    assert {"title": "request-success-rate", "value": "75.2 < 99", "short": False} in body["attachments"][0]["fields"]


def test_rocket_chat_gets_text_alias_channel_and_slack_like_attachments() -> None:
    body = rocket_payload(NOTICE, channel="#deploys", username="canary")
    assert body["text"] == "shop/web in prod-eu: Canary analysis failed, rolling back"
    assert (body["channel"], body["alias"]) == ("#deploys", "canary")
    [attachment] = body["attachments"]
    assert attachment["color"] == COLOURS["error"]
    assert attachment["title"] == "shop/web in prod-eu"
    assert attachment["text"] == "Canary analysis failed, rolling back"
    assert attachment["fields"][2:] == [{"title": "request-success-rate", "value": "75.2 < 99", "short": False},
                                        {"title": "request-duration", "value": "812 > 500", "short": False}]


def test_rocket_chat_leaves_out_channel_and_alias_when_unset() -> None:
    assert {"channel", "alias"}.isdisjoint(rocket_payload(NOTICE))


def _card(body: dict[str, Any]) -> dict[str, Any]:
    [attachment] = body["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card: dict[str, Any] = attachment["content"]
    return card


def test_teams_gets_an_adaptive_card_message_with_the_facts_in_a_factset() -> None:
    body = msteams_payload(NOTICE)
    assert body["type"] == "message"
    card = _card(body)
    assert card["type"] == "AdaptiveCard"
    assert card["$schema"] == "http://adaptivecards.io/schemas/adaptive-card.json"
    assert card["version"] == "1.4"
    header, message, facts = card["body"]
    assert header["type"] == "Container"
    assert header["items"][0] == {"type": "TextBlock", "text": "shop/web in prod-eu", "weight": "Bolder",
                                  "size": "Medium", "color": "attention", "wrap": True}
    assert message == {"type": "TextBlock", "text": "Canary analysis failed, rolling back", "wrap": True}
    assert facts == {"type": "FactSet", "facts": [
        {"title": "Phase", "value": "Progressing"}, {"title": "Revision", "value": "abc123"},
        {"title": "request-success-rate", "value": "75.2 < 99"}, {"title": "request-duration", "value": "812 > 500"},
    ]}


@pytest.mark.parametrize(("severity", "style"), [("info", "accent"), ("warn", "warning"), ("error", "attention")])
def test_teams_colours_the_header_container_by_severity(severity: str, style: str) -> None:
    header = _card(msteams_payload(notice(severity=severity)))["body"][0]
    assert header["style"] == style
    assert header["items"][0]["color"] == style


def test_google_chat_gets_a_cards_v2_card_with_the_message_coloured_and_each_fact_as_decorated_text() -> None:
    body = gchat_payload(NOTICE)
    assert body["text"] == "shop/web in prod-eu: Canary analysis failed, rolling back"
    [entry] = body["cardsV2"]
    assert entry["cardId"] == "canary-shop-web"
    card = entry["card"]
    assert card["header"] == {"title": "shop/web in prod-eu", "subtitle": "error · Progressing"}
    message, facts = card["sections"]
    assert message["widgets"] == [{"textParagraph": {
        "text": '<font color="#E01E5A"><b>Canary analysis failed, rolling back</b></font>'}}]
    assert facts["widgets"] == [
        {"decoratedText": {"topLabel": "Phase", "text": "Progressing"}},
        {"decoratedText": {"topLabel": "Revision", "text": "abc123"}},
        {"decoratedText": {"topLabel": "request-success-rate", "text": "75.2 &lt; 99"}},
        {"decoratedText": {"topLabel": "request-duration", "text": "812 &gt; 500"}},
    ]


def test_generic_is_our_documented_json() -> None:
    assert generic_payload(NOTICE, channel="#ignored", username="ignored") == {
        "canary": "web", "namespace": "shop", "cluster": "prod-eu", "phase": "Progressing", "severity": "error",
        "message": "Canary analysis failed, rolling back", "revision": "abc123",
        "details": {"request-success-rate": "75.2 < 99", "request-duration": "812 > 500"},
    }


@pytest.mark.parametrize("provider_type", sorted(SERVICES))
def test_every_format_carries_the_message_and_every_detail(provider_type: str) -> None:
    text = str(SERVICES[provider_type].build(notice(details=(("request-success-rate", "75.2"),))))
    assert "Canary analysis failed, rolling back" in text
    assert "request-success-rate" in text
    assert "75.2" in text
    assert "abc123" in text
