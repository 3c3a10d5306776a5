"""The Router protocol, and what every router is given.

Every canary gets three Services from ``canary.routers.services`` (apex, primary, canary); a
router then decides how requests reach the primary and canary Services. The router's objects
are the truth for the current weights, not the Canary's status.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from canary.kube import Obj
from canary.models.canary import Canary


@dataclass(frozen=True)
class RouteTarget:
    """What a router needs to know about one canary."""

    canary: Canary
    owner: Obj
    selector: tuple[str, str]

    @property
    def namespace(self) -> str:
        """The canary's namespace."""
        return self.canary.metadata.namespace or "default"


@dataclass(frozen=True)
class Weights:
    """The traffic split, in percent."""

    primary: int
    canary: int


class Router(Protocol):
    """Routes traffic between the primary and canary Services."""

    name: str
    has_weights: bool
    has_match: bool

    def reconcile(self, route: RouteTarget) -> None:
        """Create or correct the router's objects, keeping the current weights."""
        ...

    def weights(self, route: RouteTarget) -> Weights:
        """The split the router currently applies."""
        ...

    def set_weights(self, route: RouteTarget, weights: Weights) -> None:
        """Apply a new split."""
        ...
