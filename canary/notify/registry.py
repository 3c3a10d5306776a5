"""Which payload builder and endpoint serve each ``AlertProvider.spec.type``.

``dispatch.py`` asks ``service_for`` when it resolves a provider. Adding a service is one module
with a builder, one line here and its tests. An unknown type is an error naming the field.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from canary.errors import PermanentError
from canary.notify.base import Notice
from canary.notify.discord import discord_payload, discord_url
from canary.notify.gchat import gchat_payload
from canary.notify.generic import generic_payload
from canary.notify.msteams import msteams_payload
from canary.notify.rocket import rocket_payload
from canary.notify.slack import slack_payload


class PayloadBuilder(Protocol):
    """Turns a notice into the JSON body a service's webhook expects."""

    def __call__(self, notice: Notice, *, channel: str | None = None,
                 username: str | None = None) -> dict[str, Any]:
        """The body; ``channel`` and ``username`` as the AlertProvider sets them."""
        ...


def _as_given(address: str) -> str:
    return address


@dataclass(frozen=True)
class Service:
    """How to talk to one kind of webhook: its payload, and where on its address to post."""

    build: PayloadBuilder
    endpoint: Callable[[str], str] = field(default=_as_given)


SERVICES: dict[str, Service] = {
    "slack": Service(slack_payload),
    "msteams": Service(msteams_payload),
    "discord": Service(discord_payload, endpoint=discord_url),
    "rocket": Service(rocket_payload),
    "gchat": Service(gchat_payload),
    "generic": Service(generic_payload),
}


def service_for(provider_type: object, *, owner: str) -> Service:
    """The service of ``spec.type``; ``owner`` (``ns/name``) names the AlertProvider in the error."""
    if isinstance(provider_type, str) and provider_type in SERVICES:
        return SERVICES[provider_type]
    raise PermanentError(f"AlertProvider {owner}: spec.type must be one of {', '.join(SERVICES)}, "
                         f"got {provider_type!r}")
