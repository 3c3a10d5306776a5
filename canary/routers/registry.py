"""Routers by provider name (spec.provider, or the controller's --mesh-provider default)."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from canary.errors import PermanentError
from canary.routers.base import Router, RouteTarget

RouterFactory = Callable[[], Router]
ApexRelease = Callable[[RouteTarget], None]


class RouterRegistry:
    """Maps provider names to routers; an unknown name is an error naming the field."""

    def __init__(self, factories: Mapping[str, RouterFactory], *, default: str, release_apex: ApexRelease) -> None:
        self._factories = dict(factories)
        self.release_apex = release_apex
        self._routers: dict[str, Router] = {}
        self._default = default

    def names(self) -> list[str]:
        """The providers this controller can route for."""
        return sorted(self._factories)

    def for_provider(self, provider: str | None, *, where: str) -> Router:
        """The router for ``provider`` (the default when None); ``where`` names the object for errors."""
        name = provider or self._default
        base = name.split(":", 1)[0]
        if base not in self._factories:
            raise PermanentError(f"{where}: spec.provider {name!r} is not supported; "
                                 f"supported: {', '.join(self.names())}")
        if base not in self._routers:
            self._routers[base] = self._factories[base]()
        return self._routers[base]
