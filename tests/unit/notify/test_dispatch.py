"""The dispatcher: severity routing, provider and Secret resolution, delivery to real HTTP receivers, drops.

Caches here are plain dicts (``Objects``); tests/e2e/test_alerts.py runs the same against Informers.
One receiver serves the module (stopping one takes half a second); each test sees only its own calls.
"""

from __future__ import annotations

import base64
import socket
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import pytest
from prometheus_client import REGISTRY
from structlog.testing import capture_logs

from canary.kube import Obj
from canary.notify.base import Notice
from canary.notify.dispatch import AlertDispatcher, ProviderRef, admits
from canary.notify.registry import SERVICES
from canary.notify.slack import slack_payload
from canary.waiting import wait_until
from tests.e2e.receivers import Receiver, receiver
from tests.unit.notify.notices import notice, route

Make = Callable[..., AlertDispatcher]
UNREACHABLE = "http://127.0.0.1:9/hook"  # the discard port: nothing listens on loopback
BEARER = "s3cret-for-tests"


class Objects:
    """A cache of fixed objects, answering like an Informer."""

    def __init__(self, objects: list[Obj]) -> None:
        self._objects = {(o["metadata"]["namespace"], o["metadata"]["name"]): o for o in objects}

    def get(self, namespace: str | None, name: str) -> Obj | None:
        return self._objects.get((namespace or "", name))


def provider(name: str, provider_type: str = "generic", *, namespace: str = "shop", **spec: Any) -> Obj:
    return {"apiVersion": "canary.dev/v1alpha1", "kind": "AlertProvider",
            "metadata": {"name": name, "namespace": namespace}, "spec": {"type": provider_type, **spec}}


def secret(name: str, *, namespace: str = "shop", **data: str) -> Obj:
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": namespace},
            "data": {key: base64.b64encode(value.encode()).decode() for key, value in data.items()}}


def dropped(reason: str) -> float:
    return REGISTRY.get_sample_value("canary_alerts_dropped_total", {"reason": reason}) or 0.0


def sent(provider_type: str) -> float:
    return REGISTRY.get_sample_value("canary_alerts_sent_total", {"type": provider_type}) or 0.0


class Hooks:
    """One test's share of the module's receiver: its own path prefix, its own calls."""

    def __init__(self, server: Receiver) -> None:
        self._server, self._prefix = server, f"/{uuid.uuid4().hex}"

    def path(self, path: str) -> str:
        return self._prefix + path

    def url(self, path: str) -> str:
        return self._server.url(self.path(path))

    def answer(self, path: str, status: int) -> None:
        self._server.answer(self._prefix + path, status)

    def _mine(self) -> list[int]:
        with self._server.lock:
            return [i for i, (path, _) in enumerate(self._server.calls) if self._prefix in path]

    @property
    def calls(self) -> list[tuple[str, dict[str, Any]]]:
        """This test's calls, paths without the prefix (proxied calls keep their scheme and host)."""
        return [(self._server.calls[i][0].replace(self._prefix, ""), self._server.calls[i][1]) for i in self._mine()]

    @property
    def headers(self) -> list[dict[str, str]]:
        return [self._server.headers[i] for i in self._mine()]

    def paths(self) -> list[str]:
        return [path for path, _ in self.calls]


@pytest.fixture(scope="module")
def server() -> Iterator[Receiver]:
    with receiver() as shared:
        yield shared


@pytest.fixture
def hooks(server: Receiver) -> Hooks:
    return Hooks(server)


@pytest.fixture
def make() -> Iterator[Make]:
    """Dispatchers over the given objects (fast backoff), closed after the test."""
    made: list[AlertDispatcher] = []

    def build(*objects: Obj, **options: Any) -> AlertDispatcher:
        providers = Objects([o for o in objects if o["kind"] == "AlertProvider"])
        secrets = Objects([o for o in objects if o["kind"] == "Secret"])
        dispatcher = AlertDispatcher(providers, secrets, **{"backoff": 0.01, **options})
        made.append(dispatcher)
        return dispatcher

    yield build
    for dispatcher in made:
        dispatcher.close(timeout=10)


@pytest.mark.parametrize(("route_severity", "heard"), [
    ("info", {"info", "warn", "error"}),
    (None, {"info", "warn", "error"}),
    ("warn", {"warn", "error"}),
    ("error", {"error"}),
])
def test_an_alert_hears_its_severity_and_the_worse_ones(route_severity: str | None, heard: set[str]) -> None:
    assert {s for s in ("info", "warn", "error") if admits(route_severity, s)} == heard


def test_each_notice_reaches_exactly_the_alerts_whose_severity_admits_it(make: Make, hooks: Hooks) -> None:
    levels = ("info", "warn", "error")
    dispatcher = make(*(provider(level, address=hooks.url(f"/{level}")) for level in levels),
                      provider("unset", address=hooks.url("/unset")))
    alerts = (*(route(level, level) for level in levels), route("unset"))
    for level in levels:
        dispatcher.notify(notice(severity=level, message=level, alerts=alerts))
    dispatcher.close(timeout=10)
    heard = {(path, body["message"]) for path, body in hooks.calls}
    assert heard == {("/info", "info"), ("/unset", "info"),
                     ("/info", "warn"), ("/unset", "warn"), ("/warn", "warn"),
                     ("/info", "error"), ("/unset", "error"), ("/warn", "error"), ("/error", "error")}


@pytest.mark.parametrize("provider_type", sorted(SERVICES))
def test_each_type_posts_its_own_payload_with_the_providers_channel_and_username(
        make: Make, hooks: Hooks, provider_type: str) -> None:
    dispatcher = make(provider("chat", provider_type, address=hooks.url("/hook"), channel="#deploys",
                               username="canary"), cluster="prod-eu")
    before = sent(provider_type)
    the_notice = notice(alerts=(route("chat"),), cluster="")
    dispatcher.notify(the_notice)
    dispatcher.close(timeout=10)
    [(path, body)] = hooks.calls
    assert path == ("/hook/slack" if provider_type == "discord" else "/hook")
    expected = SERVICES[provider_type].build(notice(alerts=(route("chat"),), cluster="prod-eu"),
                                             channel="#deploys", username="canary")
    assert body == expected
    assert "prod-eu" in str(body)
    assert sent(provider_type) == before + 1


def test_the_secrets_address_wins_over_spec_address_and_its_token_is_sent_as_bearer(make: Make, hooks: Hooks) -> None:
    dispatcher = make(provider("chat", address=hooks.url("/spec"), secretRef={"name": "chat-hook"}),
                      secret("chat-hook", address=hooks.url("/secret") + "\n", token=BEARER))
    dispatcher.notify(notice(alerts=(route("chat"),)))
    dispatcher.close(timeout=10)
    assert hooks.paths() == ["/secret"]
    assert hooks.headers[0]["authorization"] == f"Bearer {BEARER}"


def test_a_secret_with_only_a_token_uses_spec_address(make: Make, hooks: Hooks) -> None:
    dispatcher = make(provider("chat", address=hooks.url("/spec"), secretRef={"name": "chat-hook"}),
                      secret("chat-hook", token=BEARER))
    dispatcher.notify(notice(alerts=(route("chat"),)))
    dispatcher.close(timeout=10)
    assert hooks.paths() == ["/spec"]
    assert hooks.headers[0]["authorization"] == f"Bearer {BEARER}"


def test_without_a_token_no_authorization_header_is_sent(make: Make, hooks: Hooks) -> None:
    dispatcher = make(provider("chat", address=hooks.url("/hook")))
    dispatcher.notify(notice(alerts=(route("chat"),)))
    dispatcher.close(timeout=10)
    assert "authorization" not in hooks.headers[0]


def test_the_provider_in_another_namespace_is_found_by_the_routes_namespace(make: Make, hooks: Hooks) -> None:
    dispatcher = make(provider("pager", namespace="ops", address=hooks.url("/ops")))
    dispatcher.notify(notice(alerts=(route("pager", namespace="ops"),)))
    dispatcher.close(timeout=10)
    assert hooks.paths() == ["/ops"]


def test_a_proxy_carries_the_request_and_the_secrets_proxy_wins_over_spec_proxy(make: Make, hooks: Hooks) -> None:
    dispatcher = make(provider("a", address=f"http://a.example.invalid{hooks.path('/hook')}", proxy=hooks.url("")),
                      provider("b", proxy=UNREACHABLE, secretRef={"name": "b-hook"}),
                      secret("b-hook", address=f"http://b.example.invalid{hooks.path('/hook')}", proxy=hooks.url("")))
    dispatcher.notify(notice(alerts=(route("a"), route("b"))))
    dispatcher.close(timeout=10)
    # A forward proxy is asked for the absolute URL.
    assert sorted(hooks.paths()) == ["http://a.example.invalid/hook", "http://b.example.invalid/hook"]


def test_canaries_without_alerts_go_to_the_default_slack_url_and_others_do_not(make: Make, hooks: Hooks) -> None:
    dispatcher = make(provider("chat", address=hooks.url("/chat")), default_url=hooks.url("/default"))
    dispatcher.notify(notice(message="no alerts"))
    dispatcher.notify(notice(message="own alerts", alerts=(route("chat"),)))
    dispatcher.close(timeout=10)
    assert sorted(hooks.calls, key=lambda call: call[0]) == [
        ("/chat", SERVICES["generic"].build(notice(message="own alerts", alerts=(route("chat"),)))),
        ("/default", slack_payload(notice(message="no alerts"))),
    ]


def test_canaries_without_alerts_go_to_the_default_alert_provider(make: Make, hooks: Hooks) -> None:
    dispatcher = make(provider("everything", "msteams", namespace="canary-system", address=hooks.url("/teams")),
                      default_provider=ProviderRef(name="everything", namespace="canary-system"))
    dispatcher.notify(notice(severity="info"))
    dispatcher.close(timeout=10)
    [(path, body)] = hooks.calls
    assert path == "/teams"
    assert body["type"] == "message"


def test_with_no_destination_at_all_the_notice_is_logged(make: Make) -> None:
    dispatcher = make()
    with capture_logs() as logs:
        dispatcher.notify(notice())
    assert [(line["event"], line["canary"]) for line in logs] == [("alert", "web")]


def _dropped_lines(logs: Sequence[Mapping[str, Any]]) -> list[str]:
    return [line["problem"] for line in logs if line["event"] == "alert dropped"]


def test_a_missing_provider_is_counted_every_time_and_logged_once(make: Make) -> None:
    dispatcher = make()
    before = dropped("unresolved")
    the_notice = notice(alerts=(route("chat"),))
    with capture_logs() as logs:
        dispatcher.notify(the_notice)
        dispatcher.notify(the_notice)
    assert dropped("unresolved") == before + 2
    assert _dropped_lines(logs) == [
        "Canary shop/web: spec.analysis.alerts[to-chat].providerRef: AlertProvider shop/chat not found"]


@pytest.mark.parametrize(("objects", "problem"), [
    ([provider("chat", secretRef={"name": "chat-hook"})],
     "AlertProvider shop/chat: spec.secretRef: Secret shop/chat-hook not found"),
    ([provider("chat")],
     "AlertProvider shop/chat: spec.address (or key address of the Secret of spec.secretRef) must be set"),
    ([provider("chat", "teams", address="http://127.0.0.1:9/")],
     "AlertProvider shop/chat: spec.type must be one of slack, msteams, discord, rocket, gchat, generic, got 'teams'"),
    ([provider("chat", address="http://127.0.0.1:9/", colour="red")],
     "AlertProvider shop/chat: spec.colour: Extra inputs are not permitted"),
    ([provider("chat", secretRef={"name": "chat-hook"}), secret("chat-hook", address="hooks.example.com/T0K3N")],
     "AlertProvider shop/chat: the address must be an http or https URL"),
])
def test_a_provider_that_cannot_be_used_is_dropped_with_a_message_naming_the_field(
        make: Make, objects: list[Obj], problem: str) -> None:
    dispatcher = make(*objects)
    before = dropped("unresolved")
    with capture_logs() as logs:
        dispatcher.notify(notice(alerts=(route("chat"),)))
    assert dropped("unresolved") == before + 1
    assert _dropped_lines(logs) == [problem]


def test_a_secret_value_that_is_not_base64_is_named_without_its_value(make: Make) -> None:
    broken = {**secret("chat-hook"), "data": {"address": "not base64!"}}
    dispatcher = make(provider("chat", secretRef={"name": "chat-hook"}), broken)
    with capture_logs() as logs:
        dispatcher.notify(notice(alerts=(route("chat"),)))
    assert _dropped_lines(logs) == ["Secret shop/chat-hook: data.address is not base64-encoded UTF-8"]


def test_an_unreachable_destination_is_retried_then_dropped_and_the_log_holds_no_secret(make: Make) -> None:
    dispatcher = make(provider("chat", secretRef={"name": "chat-hook"}),
                      secret("chat-hook", address=UNREACHABLE, token=BEARER), attempts=3)
    before = dropped("undeliverable")
    with capture_logs() as logs:
        dispatcher.notify(notice(alerts=(route("chat"),)))
        dispatcher.close(timeout=10)
    assert dropped("undeliverable") == before + 1
    [line] = [line for line in logs if line["event"] == "alert not delivered"]
    assert line["destination"] == "AlertProvider shop/chat"
    assert line["problem"] == "ConnectionError"
    assert "127.0.0.1:9" not in str(logs)
    assert BEARER not in str(logs)


def test_a_server_error_is_retried_until_the_attempts_run_out(make: Make, hooks: Hooks) -> None:
    hooks.answer("/hook", 503)
    dispatcher = make(provider("chat", address=hooks.url("/hook")), attempts=3)
    before = dropped("undeliverable")
    dispatcher.notify(notice(alerts=(route("chat"),)))
    dispatcher.close(timeout=10)
    assert hooks.paths() == ["/hook"] * 3
    assert dropped("undeliverable") == before + 1


def test_a_refusal_is_not_retried(make: Make, hooks: Hooks) -> None:
    hooks.answer("/hook", 404)
    dispatcher = make(provider("chat", address=hooks.url("/hook")), attempts=3)
    before = dropped("undeliverable")
    with capture_logs() as logs:
        dispatcher.notify(notice(alerts=(route("chat"),)))
        dispatcher.close(timeout=10)
    assert hooks.paths() == ["/hook"]
    assert dropped("undeliverable") == before + 1
    assert [line["problem"] for line in logs if line["event"] == "alert not delivered"] == ["HTTP 404"]


def test_when_the_queue_is_full_new_alerts_are_dropped_and_notify_does_not_wait(make: Make) -> None:
    with socket.create_server(("127.0.0.1", 0)) as silent:  # accepts connections, never answers
        silent.settimeout(10)
        address = f"http://127.0.0.1:{silent.getsockname()[1]}/hook"
        dispatcher = make(provider("chat", address=address), capacity=1, attempts=1, timeout=0.3)
        the_notice: Notice = notice(alerts=(route("chat"),))
        full, undeliverable = dropped("queue-full"), dropped("undeliverable")
        dispatcher.notify(the_notice)
        connection, _ = silent.accept()  # the delivery thread has taken the first alert and waits on it
        dispatcher.notify(the_notice)  # queued
        dispatcher.notify(the_notice)  # no room
        assert dropped("queue-full") == full + 1
        connection.close()
        dispatcher.close(timeout=10)
    # the first broke off, the second timed out: both counted
    assert dropped("undeliverable") == undeliverable + 2


def test_a_destination_that_hangs_holds_only_its_own_alerts(make: Make, hooks: Hooks) -> None:
    with socket.create_server(("127.0.0.1", 0)) as silent:  # accepts connections, never answers
        hung = f"http://127.0.0.1:{silent.getsockname()[1]}/hook"
        dispatcher = make(provider("stuck", address=hung), provider("chat", address=hooks.url("/hook")),
                          attempts=1, timeout=5)
        for _ in range(3):
            dispatcher.notify(notice(alerts=(route("stuck"),)))
        dispatcher.notify(notice(canary="other", alerts=(route("chat"),)))
        wait_until(hooks.paths, lambda paths: paths == ["/hook"], what="the other destination's alert, at once",
                   timeout=2)


def test_notices_after_close_are_dropped(make: Make) -> None:
    dispatcher = make(provider("chat", address=UNREACHABLE))
    dispatcher.close(timeout=10)
    before = dropped("closed")
    dispatcher.notify(notice(alerts=(route("chat"),)))
    assert dropped("closed") == before + 1


def test_a_proxy_that_is_not_a_url_is_named_without_its_value(make: Make) -> None:
    dispatcher = make(provider("chat", address=UNREACHABLE, proxy="proxy.internal:3128"))
    with capture_logs() as logs:
        dispatcher.notify(notice(alerts=(route("chat"),)))
    assert _dropped_lines(logs) == ["AlertProvider shop/chat: spec.proxy: Value error, not a URL: a scheme and a "
                                    "host are required, as in https://host/path"]


def test_a_provider_whose_address_cannot_be_parsed_is_named_and_the_others_still_hear(
    make: Make, hooks: Hooks
) -> None:
    dispatcher = make(provider("broken", address="http://[::1"),
                      provider("hidden", secretRef={"name": "hook"}), secret("hook", address="http://[::1/x"),
                      provider("chat", address=hooks.url("/chat")))
    with capture_logs() as logs:
        dispatcher.notify(notice(alerts=(route("broken"), route("hidden"), route("chat"))))
    assert _dropped_lines(logs) == [
        "AlertProvider shop/broken: spec.address: Value error, not a URL (Invalid IPv6 URL)",
        "AlertProvider shop/hidden: the address must be an http or https URL"]
    wait_until(hooks.paths, lambda paths: paths == ["/chat"], what="the good provider's delivery", timeout=10)


@pytest.mark.parametrize(("capacity", "attempts"), [(0, 3), (100, 0)])
def test_an_unbounded_queue_or_no_attempt_at_all_is_refused(capacity: int, attempts: int) -> None:
    with pytest.raises(ValueError, match="capacity and attempts must be at least 1"):
        AlertDispatcher(Objects([]), Objects([]), capacity=capacity, attempts=attempts)


class Outcomes:
    """What ``settled`` was told, per notice."""

    def __init__(self) -> None:
        self.heard: list[bool] = []

    def __call__(self, final: bool) -> None:
        self.heard.append(final)


def test_a_notice_is_settled_once_when_all_its_deliveries_ended_refused_ones_included(
    make: Make, hooks: Hooks
) -> None:
    hooks.answer("/gone", 404)
    dispatcher = make(provider("chat", address=hooks.url("/chat")), provider("gone", address=hooks.url("/gone")),
                      provider("typo", address="http://[::1"))
    outcome = Outcomes()
    dispatcher.notify(notice(alerts=(route("chat"), route("gone"), route("typo"))), outcome)
    wait_until(lambda: outcome.heard, lambda heard: heard == [True], what="the notice settled", timeout=10)
    assert sorted(hooks.paths()) == ["/chat", "/gone"]


def test_a_notice_that_could_not_be_queued_is_settled_as_worth_sending_again(make: Make) -> None:
    dispatcher = make(provider("chat", address=UNREACHABLE))
    dispatcher.close(timeout=10)
    outcome = Outcomes()
    dispatcher.notify(notice(alerts=(route("chat"),)), outcome)
    assert outcome.heard == [False]


def test_a_notice_with_nowhere_to_go_is_settled_at_once(make: Make) -> None:
    outcome = Outcomes()
    make().notify(notice(alerts=()), outcome)
    assert outcome.heard == [True]
