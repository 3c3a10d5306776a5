"""The traffic simulator's reads, answered from watch-backed caches instead of the API server.

``canary.local.simulator`` reads every Canary, its Deployments, their pods and the router's
objects once a period; asked of the API server, that is three or more requests per canary per
second (300/s at 100 canaries). ``WatchedCluster`` answers the same ``get`` and ``list_objects``
from one informer per kind (``canary.kube.cache.Informer``: one list, then a watch), started on
the kind's first read, so an idle cluster costs the simulator only its watches, whatever the
number of canaries.

Until a kind's informer has loaded its first list, its reads go to the API server as before, so
the first period after a start, or after a CRD appears, sees what a direct read would. A kind the
API server does not serve raises ``PermanentError`` as ``Kube`` does; it is looked up again on a
later read (``Kube``'s ``rediscover_seconds`` bounds how often).
"""

from __future__ import annotations

import threading

from canary.kube import Obj
from canary.kube.cache import Informer
from canary.kube.client import Kube


class WatchedCluster:
    """``get`` and ``list_objects`` (the simulator's ``Cluster``) from one informer per kind, cluster-wide.

    The objects returned are the informers' own: callers must not change them.
    """

    def __init__(self, kube: Kube) -> None:
        self._kube = kube
        self._informers: dict[tuple[str, str], Informer] = {}
        self._lock = threading.Lock()

    def get(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> Obj | None:
        """The object, or None when it does not exist."""
        informer = self._informer(api_version, kind)
        if not informer.synced:
            return self._kube.get(api_version, kind, name, namespace=namespace)
        return informer.peek(namespace, name)

    def list_objects(
        self, api_version: str, kind: str, *, namespace: str | None = None, label_selector: str | None = None
    ) -> list[Obj]:
        """Every object of a kind, in one namespace or in all; a label selector is asked of the API server."""
        if label_selector is not None:
            return self._kube.list_objects(api_version, kind, namespace=namespace, label_selector=label_selector)
        informer = self._informer(api_version, kind)
        if not informer.synced:
            return self._kube.list_objects(api_version, kind, namespace=namespace)
        return informer.peek_all(namespace)

    def kinds(self) -> list[tuple[str, str]]:
        """(apiVersion, kind) of every kind followed so far."""
        with self._lock:
            return sorted(self._informers)

    def close(self) -> None:
        """Stop the informers (each ends with its current watch call)."""
        with self._lock:
            for informer in self._informers.values():
                informer.stop()

    def _informer(self, api_version: str, kind: str) -> Informer:
        key = (api_version, kind)
        with self._lock:
            found = self._informers.get(key)
        if found is not None:
            return found
        # Discovery first: a kind the API server does not serve raises here, as a direct read would,
        # and is looked up again on the next read instead of leaving an informer retrying forever.
        self._kube.is_namespaced(api_version, kind)
        with self._lock:
            if key not in self._informers:
                self._informers[key] = Informer(self._kube, api_version, kind).start()
            return self._informers[key]
