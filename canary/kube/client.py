"""Dict-in, dict-out access to any Kubernetes resource, on the official dynamic client.

Callers name resources by apiVersion and kind, as manifests do. API errors become the
application's error types (``canary.errors``) so that no caller needs to know the client.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar, cast

from kubernetes import config as kube_config
from kubernetes import watch
from kubernetes.client import ApiClient, rest
from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.exceptions import DynamicApiError, NotFoundError, ResourceNotFoundError
from prometheus_client import Counter
from urllib3.exceptions import HTTPError

from canary import __version__
from canary.errors import Conflict, Forbidden, InvalidObject, PermanentError, TemporaryError
from canary.kube import Obj

T = TypeVar("T")
REDISCOVER_SECONDS = 30.0
"""How often the controller looks again for kinds the API server did not serve (its caches of
routers' kinds retry all the time); other clients look again at every miss."""
CONTROLLER_AGENT = f"canary-delivery/{__version__}"
"""The controller's User-Agent, so that its requests are told apart in the API server's audit log."""

CLI_AGENT = f"canary-cli/{__version__}"
"""Every other client of ours (commands, the local stack, tests) unless it names itself."""


def controller_agent(shard: str | None) -> str:
    """The User-Agent of the controller of ``shard``: a shard's requests are told apart from its peers'."""
    return f"{CONTROLLER_AGENT} shard/{shard}" if shard else CONTROLLER_AGENT


# Watches are not counted: they are long-lived streams, not per-tick work.
API_REQUESTS = Counter("canary_api_requests_total", "Requests to the Kubernetes API server, by verb and kind.",
                       ["verb", "kind"])


def _raw(_client: object, data: Obj) -> Obj:
    """The dynamic client's answer as the JSON it parsed, without wrapping it in ResourceInstance objects
    that would only be turned back into dicts (a good part of each request's CPU)."""
    return data


def _reason(exc: HTTPError) -> str:
    """urllib3's words for why a connection failed, without its retry and pool wording."""
    reason = getattr(exc, "reason", None) or exc
    text = str(reason)
    return text.split(": ", 1)[1] if "Failed to establish" in text and ": " in text else text


def api_client(kubeconfig: Path | None = None, *, user_agent: str = CLI_AGENT, pool_size: int = 0) -> ApiClient:
    """An ApiClient for ``kubeconfig``, or the in-cluster config, or the default kubeconfig, that
    names itself ``user_agent`` and keeps up to ``pool_size`` connections (at least the client's own
    default, 5 per core): a thread that finds the pool full opens a connection, TLS handshake and all,
    and drops it afterwards."""
    try:
        if kubeconfig is not None:
            client = cast(ApiClient, kube_config.new_client_from_config(config_file=str(kubeconfig)))
        else:
            try:
                kube_config.load_incluster_config()
                client = ApiClient()
            except kube_config.ConfigException:
                client = cast(ApiClient, kube_config.new_client_from_config())
    except (kube_config.ConfigException, OSError) as exc:
        where = kubeconfig or "the default kubeconfig (~/.kube/config or KUBECONFIG)"
        raise PermanentError(f"cannot load {where}: {exc}") from exc
    client.user_agent = user_agent
    if pool_size > client.configuration.connection_pool_maxsize:
        client.configuration.connection_pool_maxsize = pool_size
        client.rest_client.pool_manager.clear()
        client.rest_client = rest.RESTClientObject(client.configuration)
    return client


class Kube:
    """Generic reads and writes; one instance shares one connection pool across threads."""

    def __init__(self, client: ApiClient, *, rediscover_seconds: float = 0.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._client = client
        self._clock = clock
        self._rediscover_seconds = rediscover_seconds
        self._dynamic_client: DynamicClient | None = None  # made on first use: it asks the server at once
        self._discovery_lock = threading.Lock()
        self._rediscovered = -math.inf
        self._resources: dict[tuple[str, str], Any] = {}
        self._missing: set[tuple[str, str]] = set()

    @classmethod
    def from_kubeconfig(cls, kubeconfig: Path | None = None, *, rediscover_seconds: float = 0.0,
                        user_agent: str = CLI_AGENT, pool_size: int = 0) -> Kube:
        """Connect with ``kubeconfig`` (see ``api_client`` for the fallbacks and ``pool_size``) as
        ``user_agent``; a kind the API server does not serve is looked up again at most every
        ``rediscover_seconds``, for all kinds."""
        return cls(api_client(kubeconfig, user_agent=user_agent, pool_size=pool_size),
                   rediscover_seconds=rediscover_seconds)

    def close(self) -> None:
        """Release the connection pool."""
        self._client.close()

    def _resource(self, api_version: str, kind: str) -> Any:  # noqa: ANN401 - the client is untyped
        # The dynamic client's discovery is not thread-safe: one lookup at a time, results kept.
        with self._discovery_lock:
            key = (api_version, kind)
            if key not in self._resources:
                self._resources[key] = self._discover(api_version, kind)
            return self._resources[key]

    @property
    def _dynamic(self) -> DynamicClient:
        if self._dynamic_client is None:
            try:
                self._dynamic_client = DynamicClient(self._client)
            except HTTPError as exc:
                raise TemporaryError(f"cannot reach the API server at {self._client.configuration.host}: "
                                     f"{_reason(exc)}") from exc
        return self._dynamic_client

    def _discover(self, api_version: str, kind: str) -> Any:  # noqa: ANN401 - the client is untyped
        # The dynamic client answers a kind it does not know by discovering everything again (GET
        # /version, /api and /apis), since a CRD may have been established meanwhile. A kind found
        # missing is refused from memory until rediscover_seconds have passed since the last such look.
        key, now = (api_version, kind), self._clock()
        if key in self._missing and now - self._rediscovered < self._rediscover_seconds:
            raise PermanentError(f"the API server serves no {kind} in {api_version}")
        try:
            found = self._dynamic.resources.get(api_version=api_version, kind=kind)
        except ResourceNotFoundError:
            self._rediscovered = now
            self._missing.add(key)
            raise PermanentError(f"the API server serves no {kind} in {api_version}") from None
        except HTTPError as exc:
            raise TemporaryError(f"cannot reach the API server at {self._client.configuration.host}: "
                                 f"{_reason(exc)}") from exc
        self._missing.discard(key)
        return found

    def _call(self, what: str, fn: Callable[[], T]) -> T:
        verb, _, rest = what.partition(" ")
        API_REQUESTS.labels(verb=verb, kind=rest.split(" ", 1)[0]).inc()
        try:
            return fn()
        except DynamicApiError as exc:
            raise _translate(what, exc) from exc
        except HTTPError as exc:
            raise TemporaryError(f"{what}: {exc}") from exc

    def get(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> Obj | None:
        """The object, or None when it does not exist."""
        resource = self._resource(api_version, kind)
        try:
            found = self._call(f"get {kind} {_ref(namespace, name)}",
                               lambda: self._dynamic.get(resource, name=name, namespace=namespace, serializer=_raw))
        except _Missing:
            return None
        return cast(Obj, found)

    def list_objects(
        self, api_version: str, kind: str, *, namespace: str | None = None, label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> list[Obj]:
        """Every object of a kind (matching the selectors), in one namespace or in all."""
        resource = self._resource(api_version, kind)
        found = self._call(f"list {kind}", lambda: self._dynamic.get(
            resource, namespace=namespace, label_selector=label_selector, field_selector=field_selector,
            serializer=_raw))
        return [cast(Obj, item) for item in found.get("items", [])]

    def list_with_version(self, api_version: str, kind: str, *, namespace: str | None = None,
                          label_selector: str | None = None,
                          field_selector: str | None = None) -> tuple[list[Obj], str]:
        """Every object of a kind (matching the selectors) and the list's resourceVersion, to start a
        watch from."""
        resource = self._resource(api_version, kind)
        found = self._call(f"list {kind}", lambda: self._dynamic.get(
            resource, namespace=namespace, label_selector=label_selector, field_selector=field_selector,
            serializer=_raw))
        listed = cast(Obj, found)
        return [cast(Obj, item) for item in listed.get("items", [])], str(listed["metadata"]["resourceVersion"])

    def watch(
        self, api_version: str, kind: str, *, resource_version: str, namespace: str | None = None,
        timeout_seconds: int = 60, label_selector: str | None = None, field_selector: str | None = None,
    ) -> Iterator[tuple[str, Obj]]:
        """Changes since ``resource_version`` as (type, object), ending after the timeout; a ``BOOKMARK``
        carries only a newer resourceVersion to resume from (so that a quiet kind never falls behind the
        API server's window of history).

        A resourceVersion too old to resume from raises ``Expired``: list again.
        """
        resource = self._resource(api_version, kind)
        # The stream the dynamic client's watch runs, without its wrapping of every object in a
        # ResourceInstance (a tenth of a release's CPU), which raw_object makes needless.
        stream = watch.Watch().stream(resource.get, namespace=namespace, resource_version=resource_version,
                                      timeout_seconds=timeout_seconds, allow_watch_bookmarks=True,
                                      label_selector=label_selector, field_selector=field_selector,
                                      serialize=False)
        try:
            for event in stream:
                kind_of_event = str(event["type"])
                raw = cast(Obj, event["raw_object"])
                if kind_of_event == "ERROR":
                    if raw.get("code") == 410:
                        raise Expired(f"watch {kind}: {raw.get('message')}")
                    raise TemporaryError(f"watch {kind}: {raw.get('message')}")
                yield kind_of_event, raw
        except ApiException as exc:
            if exc.status == 410:
                raise Expired(f"watch {kind}: resource version expired") from exc
            raise TemporaryError(f"watch {kind}: HTTP {exc.status}") from exc
        except HTTPError as exc:
            raise TemporaryError(f"watch {kind}: {exc}") from exc

    def create(self, body: Obj) -> Obj:
        """Create ``body``; a conflict with an existing object raises ``Conflict``."""
        resource = self._resource(body["apiVersion"], body["kind"])
        meta = body.get("metadata", {})
        created = self._call(f"create {body['kind']} {_ref(meta.get('namespace'), meta.get('name'))}",
                             lambda: self._dynamic.create(resource, body=body, namespace=meta.get("namespace"),
                                                          serializer=_raw))
        return cast(Obj, created)

    def apply(self, body: Obj, *, field_manager: str, subresource: str | None = None) -> Obj:
        """Server-side apply ``body`` as ``field_manager``, taking over conflicting fields."""
        resource = self._resource(body["apiVersion"], body["kind"])
        if subresource is not None:
            resource = resource.subresources[subresource]
        meta = body["metadata"]
        applied = self._call(
            f"apply {body['kind']} {_ref(meta.get('namespace'), meta['name'])}",
            lambda: self._dynamic.server_side_apply(
                resource, body=body, name=meta["name"], namespace=meta.get("namespace"),
                field_manager=field_manager, force_conflicts=True, serializer=_raw),
        )
        return cast(Obj, applied)

    def apply_dry_run(self, body: Obj, *, field_manager: str) -> Obj:
        """What server-side apply of ``body`` as ``field_manager`` would make of the object (dryRun=All).

        The server runs defaulting, admission and validation but stores nothing, so comparing the
        answer with the live object tells whether a real apply would change anything.
        """
        resource = self._resource(body["apiVersion"], body["kind"])
        meta = body["metadata"]
        applied = self._call(
            f"apply {body['kind']} {_ref(meta.get('namespace'), meta['name'])} (dry run)",
            lambda: self._dynamic.server_side_apply(
                resource, body=body, name=meta["name"], namespace=meta.get("namespace"),
                field_manager=field_manager, force_conflicts=True, dry_run="All", serializer=_raw),
        )
        return cast(Obj, applied)

    def is_namespaced(self, api_version: str, kind: str) -> bool:
        """Whether objects of this kind live in namespaces (from discovery)."""
        return bool(self._resource(api_version, kind).namespaced)

    def merge_patch(
        self, api_version: str, kind: str, name: str, patch: Obj, *, namespace: str | None = None,
        subresource: str | None = None,
    ) -> Obj:
        """JSON merge patch; include metadata.resourceVersion in ``patch`` for a conditional write."""
        resource = self._resource(api_version, kind)
        if subresource is not None:
            resource = resource.subresources[subresource]
        patched = self._call(
            f"patch {kind} {_ref(namespace, name)}",
            lambda: self._dynamic.patch(resource, body=patch, name=name, namespace=namespace,
                                        content_type="application/merge-patch+json", serializer=_raw),
        )
        return cast(Obj, patched)

    def delete(
        self, api_version: str, kind: str, name: str, *, namespace: str | None = None,
        propagation: str = "Background",
    ) -> bool:
        """Delete an object; False when it was already gone."""
        resource = self._resource(api_version, kind)
        body = {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": propagation}
        try:
            self._call(f"delete {kind} {_ref(namespace, name)}",
                       lambda: self._dynamic.delete(resource, name=name, namespace=namespace, body=body))
        except _Missing:
            return False
        return True


class Expired(TemporaryError):
    """A watch cannot resume from its resourceVersion (HTTP 410): list again."""


class _Missing(TemporaryError):
    """A 404, which the public methods turn into None or False."""


def _ref(namespace: str | None, name: str | None) -> str:
    return f"{namespace}/{name}" if namespace else str(name)


def _translate(what: str, exc: DynamicApiError) -> Exception:
    status = getattr(exc, "status", None)
    message = _server_message(exc)
    if isinstance(exc, NotFoundError) or status == 404:
        return _Missing(f"{what}: not found")
    if status == 409:
        return Conflict(f"{what}: {message}")
    if status in (400, 422):
        return InvalidObject(f"{what}: {message}")
    if status in (401, 403):
        return Forbidden(f"{what}: {message}")
    return TemporaryError(f"{what}: HTTP {status}: {message}")


def _server_message(exc: DynamicApiError) -> str:
    summary = getattr(exc, "summary", None)
    if callable(summary):
        return str(summary())
    return str(exc)
