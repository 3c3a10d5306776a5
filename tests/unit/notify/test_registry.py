"""Every AlertProvider type has a service; an unknown one is an error naming the field."""

from __future__ import annotations

import pytest

from canary.errors import PermanentError
from canary.models.resources import AlertProviderSpec
from canary.notify.discord import discord_payload, discord_url
from canary.notify.registry import SERVICES, service_for
from canary.notify.slack import slack_payload


def test_every_type_the_crd_allows_has_a_service() -> None:
    allowed = AlertProviderSpec.model_json_schema()["properties"]["type"]["enum"]
    assert sorted(SERVICES) == sorted(allowed)


def test_slack_posts_its_payload_to_the_address_as_given() -> None:
    service = service_for("slack", owner="shop/chat")
    assert service.build is slack_payload
    assert service.endpoint("https://hooks.slack.com/services/T/B/x") == "https://hooks.slack.com/services/T/B/x"


def test_discord_posts_slack_payloads_to_the_slack_compatible_endpoint() -> None:
    service = service_for("discord", owner="shop/chat")
    assert service.build is discord_payload
    assert service.endpoint("https://discord.com/api/webhooks/1/tok") == "https://discord.com/api/webhooks/1/tok/slack"


@pytest.mark.parametrize("address", ["https://discord.com/api/webhooks/1/tok/slack",
                                     "https://discord.com/api/webhooks/1/tok/slack/"])
def test_a_discord_address_already_ending_in_slack_is_kept(address: str) -> None:
    assert discord_url(address) == "https://discord.com/api/webhooks/1/tok/slack"


def test_a_discord_address_keeps_its_query() -> None:
    assert discord_url("https://discord.com/api/webhooks/1/tok?wait=true") == (
        "https://discord.com/api/webhooks/1/tok/slack?wait=true")


@pytest.mark.parametrize("provider_type", ["teams", None, ""])
def test_an_unknown_type_is_an_error_naming_the_provider_and_field(provider_type: object) -> None:
    with pytest.raises(PermanentError, match=r"^AlertProvider shop/chat: spec.type must be one of slack, "):
        service_for(provider_type, owner="shop/chat")
