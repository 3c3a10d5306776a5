"""Alerts through real AlertProviders and Secrets in the API server, read by Informers, to real HTTP receivers."""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any

import pytest
from prometheus_client import REGISTRY

from canary.kube.cache import Informer
from canary.kube.client import Kube
from canary.models.base import API_VERSION
from canary.notify.base import AlertRoute, Notice
from canary.notify.dispatch import AlertDispatcher
from canary.notify.registry import SERVICES
from canary.waiting import wait_until
from tests.e2e.receivers import Receiver, receiver

pytestmark = pytest.mark.usefixtures("canary_crds")
BEARER = "e2e-bearer-value"
UNREACHABLE = "http://127.0.0.1:9/hook"  # the discard port: nothing listens on loopback


@dataclass
class Caches:
    """The two Informers a dispatcher reads, over the test's namespace."""

    kube: Kube
    namespace: str
    providers: Informer
    secrets: Informer

    def provider(self, name: str, provider_type: str, **spec: Any) -> None:
        """Create an AlertProvider and wait until the cache holds it."""
        self.kube.create({"apiVersion": API_VERSION, "kind": "AlertProvider",
                          "metadata": {"name": name, "namespace": self.namespace},
                          "spec": {"type": provider_type, **spec}})
        self._cached(self.providers, name, lambda obj: obj is not None)

    def secret(self, name: str, **data: str) -> None:
        """Create or replace a Secret and wait until the cache holds this version of it."""
        encoded = {key: base64.b64encode(value.encode()).decode() for key, value in data.items()}
        body = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": self.namespace},
                "data": encoded}
        written = self.kube.apply(body, field_manager="test-alerts")
        version = written["metadata"]["resourceVersion"]
        self._cached(self.secrets, name, lambda obj: obj is not None and obj["metadata"]["resourceVersion"] == version)

    def _cached(self, informer: Informer, name: str, until: Callable[[dict[str, Any] | None], bool]) -> None:
        wait_until(lambda: informer.get(self.namespace, name), until,
                   what=f"{informer.kind} {self.namespace}/{name} in the cache", timeout=20)


@pytest.fixture
def caches(kube: Kube, namespace: str) -> Iterator[Caches]:
    providers = Informer(kube, API_VERSION, "AlertProvider", namespace=namespace).start()
    secrets = Informer(kube, "v1", "Secret", namespace=namespace).start()
    assert providers.wait_synced(20)
    assert secrets.wait_synced(20)
    yield Caches(kube, namespace, providers, secrets)
    providers.stop()
    secrets.stop()


@pytest.fixture
def hooks() -> Iterator[Receiver]:
    with receiver() as server:
        yield server


@pytest.fixture
def dispatchers(caches: Caches) -> Iterator[list[AlertDispatcher]]:
    made: list[AlertDispatcher] = []
    yield made
    for dispatcher in made:
        dispatcher.close(timeout=10)


def _dispatcher(caches: Caches, made: list[AlertDispatcher], **options: Any) -> AlertDispatcher:
    dispatcher = AlertDispatcher(caches.providers, caches.secrets, **{"cluster": "e2e", "backoff": 0.01, **options})
    made.append(dispatcher)
    return dispatcher


def _notice(namespace: str, *alerts: AlertRoute, severity: str = "error", message: str = "Rolling back") -> Notice:
    return Notice(canary="web", namespace=namespace, severity=severity, message=message, phase="Progressing",
                  revision="5d8f9c", alerts=alerts, details=(("request-success-rate", "75.2 < 99"),))


def _dropped(reason: str) -> float:
    return REGISTRY.get_sample_value("canary_alerts_dropped_total", {"reason": reason}) or 0.0


def test_every_provider_type_receives_its_own_payload_and_the_secrets_token(
        caches: Caches, hooks: Receiver, dispatchers: list[AlertDispatcher]) -> None:
    for provider_type in SERVICES:
        caches.provider(provider_type, provider_type, address=hooks.url(f"/{provider_type}"),
                        channel="#deploys", username="canary")
    caches.secret("guarded-hook", address=hooks.url("/guarded"), token=BEARER)
    caches.provider("guarded", "generic", secretRef={"name": "guarded-hook"})
    dispatcher = _dispatcher(caches, dispatchers)
    routes = tuple(AlertRoute(name=name, severity=None, provider=name) for name in [*SERVICES, "guarded"])

    dispatcher.notify(_notice(caches.namespace, *routes))
    dispatcher.close(timeout=10)

    received = {path: (body, headers) for (path, body), headers in zip(hooks.calls, hooks.headers, strict=True)}
    expected = replace(_notice(caches.namespace, *routes), cluster="e2e")
    for provider_type, service in SERVICES.items():
        path = f"/{provider_type}/slack" if provider_type == "discord" else f"/{provider_type}"
        body, headers = received.pop(path)
        assert body == service.build(expected, channel="#deploys", username="canary"), provider_type
        assert "authorization" not in headers
    body, headers = received.pop("/guarded")
    assert body["details"] == {"request-success-rate": "75.2 < 99"}
    assert headers["authorization"] == f"Bearer {BEARER}"
    assert received == {}


def test_each_alert_hears_only_the_severities_it_asked_for(
        caches: Caches, hooks: Receiver, dispatchers: list[AlertDispatcher]) -> None:
    for name in ("pager", "team", "audit"):
        caches.provider(name, "generic", address=hooks.url(f"/{name}"))
    dispatcher = _dispatcher(caches, dispatchers)
    routes = (AlertRoute(name="on-call", severity="error", provider="pager"),
              AlertRoute(name="team", severity="warn", provider="team"),
              AlertRoute(name="audit", severity=None, provider="audit"))

    for severity in ("info", "warn", "error"):
        dispatcher.notify(_notice(caches.namespace, *routes, severity=severity, message=severity))
    dispatcher.close(timeout=10)

    heard: dict[str, set[str]] = {}
    for path, body in hooks.calls:
        heard.setdefault(path, set()).add(body["message"])
    assert heard == {"/pager": {"error"}, "/team": {"warn", "error"}, "/audit": {"info", "warn", "error"}}


def test_an_unreachable_destination_is_dropped_and_a_fixed_secret_is_used_for_the_next_alert(
        caches: Caches, hooks: Receiver, dispatchers: list[AlertDispatcher]) -> None:
    caches.secret("chat-hook", address=UNREACHABLE)
    caches.provider("chat", "slack", secretRef={"name": "chat-hook"})
    route = AlertRoute(name="chat", severity="info", provider="chat")
    before = _dropped("undeliverable")
    dispatcher = _dispatcher(caches, dispatchers, attempts=2)

    dispatcher.notify(_notice(caches.namespace, route, message="first"))
    wait_until(lambda: _dropped("undeliverable"), lambda value: value == before + 1,
               what="the undeliverable alert counted as dropped", timeout=20)
    caches.secret("chat-hook", address=hooks.url("/chat"))
    dispatcher.notify(_notice(caches.namespace, route, message="second"))
    dispatcher.close(timeout=10)

    assert [body["text"] for _, body in hooks.calls] == [f"{caches.namespace}/web in e2e: second"]


def test_an_alert_to_a_missing_provider_is_dropped_until_the_provider_exists(
        caches: Caches, hooks: Receiver, dispatchers: list[AlertDispatcher]) -> None:
    route = AlertRoute(name="chat", severity=None, provider="chat")
    dispatcher = _dispatcher(caches, dispatchers)
    before = _dropped("unresolved")

    dispatcher.notify(_notice(caches.namespace, route, message="too early"))
    assert _dropped("unresolved") == before + 1
    caches.provider("chat", "generic", address=hooks.url("/chat"))
    dispatcher.notify(_notice(caches.namespace, route, message="in time"))
    dispatcher.close(timeout=10)

    assert [(path, body["message"]) for path, body in hooks.calls] == [("/chat", "in time")]
