"""The routers, by provider name (spec.provider, or the controller's --mesh-provider default).

Adding a router is one module with a ``PLUGIN`` and one line in ``PLUGINS``.
"""

from __future__ import annotations

from collections.abc import Iterable

from canary.errors import PermanentError
from canary.models.canary import Canary
from canary.routers import (
    apisix,
    contour,
    gatewayapi,
    gloo,
    istio,
    kubernetes,
    kuma,
    linkerd,
    nginx,
    skipper,
    traefik,
)
from canary.routers.base import Getter, Router, RouterContext, RouterPlugin, Watch, Weights

PLUGINS: tuple[RouterPlugin, ...] = (kubernetes.PLUGIN, gatewayapi.PLUGIN, istio.PLUGIN, nginx.PLUGIN,
                                     contour.PLUGIN, traefik.PLUGIN, skipper.PLUGIN, linkerd.PLUGIN, gloo.PLUGIN,
                                     apisix.PLUGIN, kuma.PLUGIN)
_BY_NAME = {plugin.name: plugin for plugin in PLUGINS}
RETIRED = {"appmesh": "AWS App Mesh", "osm": "Open Service Mesh"}
"""Meshes whose projects ended (and that Flagger's own tests no longer cover)."""


def plugin_for(provider: str | None, *, default: str, where: str) -> RouterPlugin:
    """The plugin of ``provider`` (``name`` or ``name:version``; the default when None)."""
    name = provider or default
    base = name.split(":", 1)[0]
    if base in RETIRED:
        raise PermanentError(f"{where}: spec.provider {name!r}: {RETIRED[base]} is retired upstream and not "
                             f"supported; supported: {', '.join(sorted(_BY_NAME))}")
    if base not in _BY_NAME:
        raise PermanentError(f"{where}: spec.provider {name!r} is not supported; "
                             f"supported: {', '.join(sorted(_BY_NAME))}")
    return _BY_NAME[base]


def watches(plugins: Iterable[RouterPlugin] = PLUGINS) -> list[Watch]:
    """Every kind the routers read, once; a kind any router needs is not optional."""
    found: dict[tuple[str, str], Watch] = {}
    for watch in (w for plugin in plugins for w in plugin.watches):
        key = (watch.api_version, watch.kind)
        if key not in found or not watch.optional:
            found[key] = watch
    return list(found.values())


def read_weights(get: Getter, canary: Canary) -> Weights | None:
    """The split the router of ``canary`` holds; without spec.provider, the split of whichever router
    has objects for it (the local simulator does not know the controller's --mesh-provider)."""
    if canary.spec.provider:
        where = f"Canary {canary.metadata.namespace}/{canary.metadata.name}"
        return plugin_for(canary.spec.provider, default="", where=where).read_weights(get, canary)
    for plugin in PLUGINS:
        found = plugin.read_weights(get, canary)
        if found is not None:
            return found
    return None


class RouterRegistry:
    """The controller's routers, each built once on first use; an unknown name is an error naming the field."""

    def __init__(self, context: RouterContext, *, default: str) -> None:
        self._context = context
        self._default = default
        self._routers: dict[str, Router] = {}

    def for_provider(self, provider: str | None, *, where: str) -> Router:
        """The router for ``provider`` (the default when None); ``where`` names the object for errors."""
        plugin = plugin_for(provider, default=self._default, where=where)
        if plugin.name not in self._routers:
            self._routers[plugin.name] = plugin.create(self._context)
        return self._routers[plugin.name]
