"""Discovery of a kind the API server does not serve: looked up again at most once per period."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes.client import ApiClient, Configuration
from kubernetes.dynamic.exceptions import ResourceNotFoundError

from canary.errors import PermanentError
from canary.kube import client
from canary.kube.client import Kube


class _Resources:
    """The dynamic client's discoverer, serving no kind at all; counts full rediscoveries (it makes one
    at every miss, as the real one does)."""

    def __init__(self) -> None:
        self.refreshes = 0

    def get(self, **_: Any) -> Any:
        self.invalidate_cache()
        raise ResourceNotFoundError("no such kind")

    def invalidate_cache(self) -> None:
        self.refreshes += 1


class _Dynamic:
    def __init__(self) -> None:
        self.resources = _Resources()


def test_missing_kinds_share_one_rediscovery_per_period() -> None:
    clock = [1000.0]
    kube = Kube(ApiClient(Configuration()), rediscover_seconds=client.REDISCOVER_SECONDS, clock=lambda: clock[0])
    dynamic = _Dynamic()
    kube._dynamic_client = dynamic  # type: ignore[assignment]
    for kind in ("TrafficSplit", "ScaledObject", "RouteTable"):
        with pytest.raises(PermanentError, match=f"the API server serves no {kind} in x/v1"):
            kube._resource("x/v1", kind)
    assert dynamic.resources.refreshes == 3, "each kind is looked for once"
    for _ in range(5):  # the caches of those kinds retry all the time
        for kind in ("TrafficSplit", "ScaledObject", "RouteTable"):
            with pytest.raises(PermanentError):
                kube._resource("x/v1", kind)
        clock[0] += client.REDISCOVER_SECONDS / 10
    assert dynamic.resources.refreshes == 3, "within the period, kinds found missing are refused from memory"
    clock[0] += client.REDISCOVER_SECONDS
    for kind in ("TrafficSplit", "ScaledObject", "RouteTable"):
        with pytest.raises(PermanentError):
            kube._resource("x/v1", kind)
    assert dynamic.resources.refreshes == 4, "after the period, one look (a CRD installed since is found) serves all"


def test_other_clients_look_again_at_every_miss() -> None:
    kube = Kube(ApiClient(Configuration()))
    dynamic = _Dynamic()
    kube._dynamic_client = dynamic  # type: ignore[assignment]
    for _ in range(3):
        with pytest.raises(PermanentError):
            kube._resource("x/v1", "Upstream")
    assert dynamic.resources.refreshes == 3, "a CRD installed a moment ago is found at once"
