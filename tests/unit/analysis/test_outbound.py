"""The outbound policy: which destinations metric queries, webhooks and alerts may reach."""

from __future__ import annotations

import ipaddress
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from analysis import outbound
from analysis.outbound import GuardedSession, OutboundPolicy, OutboundRefused, Rule
from analysis.providers.base import Outcome
from analysis.providers.transport import HttpClient, QueryFailed
from canary.controller import outbound_policy
from canary.settings import ControllerSettings

LOCAL = frozenset({ipaddress.ip_address("10.1.2.3")})


def _resolver(table: dict[str, list[str]]) -> outbound.Resolver:
    def resolve(host: str, port: int) -> list[str]:
        if host not in table:
            raise OSError(f"{host}: no such host")
        return table[host]
    return resolve


def test_by_default_metadata_addresses_and_the_controllers_own_port_are_refused() -> None:
    policy = OutboundPolicy.of(own_ports=(8080,))
    policy = OutboundPolicy(allow=policy.allow, deny=policy.deny, own_ports=policy.own_ports, local=LOCAL)
    resolve = _resolver({"metadata.google.internal": ["169.254.169.254"], "prometheus": ["10.9.9.9"],
                         "controller": ["10.1.2.3"]})
    assert policy.refusal("http://169.254.169.254/latest/meta-data/", resolve=resolve) == \
        "169.254.169.254 (169.254.169.254) is a denied destination (169.254.0.0/16)"
    assert policy.refusal("http://metadata.google.internal/", resolve=resolve) is not None, "by name too"
    assert policy.refusal("http://[fd00:ec2::254]/", resolve=resolve) is not None
    assert policy.refusal("http://127.0.0.1:8080/metrics", resolve=resolve) == \
        "127.0.0.1:8080 is the controller's own port"
    assert policy.refusal("http://controller:8080/metrics", resolve=resolve) == \
        "controller:8080 is the controller's own port"
    assert policy.refusal("http://127.0.0.1:9090/api/v1/query", resolve=resolve) is None
    assert policy.refusal("http://prometheus:9090/", resolve=resolve) is None
    assert policy.refusal("http://unknown.example/", resolve=resolve) is None, "the request fails on its own"


def test_a_strict_policy_allows_only_what_it_lists_by_name_or_network() -> None:
    policy = OutboundPolicy.of(allow=("prometheus.monitoring", "*.hooks.example.com", "10.20.0.0/16"), strict=True)
    resolve = _resolver({"prometheus.monitoring": ["10.9.9.9"], "ci.hooks.example.com": ["203.0.113.5"],
                         "grafana": ["10.20.1.1"], "elsewhere": ["10.9.9.10"]})
    assert policy.refusal("http://prometheus.monitoring:9090/", resolve=resolve) is None
    assert policy.refusal("https://ci.hooks.example.com/gate", resolve=resolve) is None
    assert policy.refusal("http://grafana/", resolve=resolve) is None, "by the network its name resolves to"
    assert policy.refusal("http://elsewhere/", resolve=resolve) == \
        "elsewhere (10.9.9.10) is not among the allowed destinations (--outbound-allow)"
    assert policy.refusal("http://nowhere/", resolve=resolve) is not None, "strict: what cannot be vetted is refused"


def test_an_allowed_destination_may_be_in_a_denied_network_and_extra_denials_add_up() -> None:
    policy = OutboundPolicy.of(allow=("169.254.10.0/24",), deny=("10.0.0.0/8", "vault.internal"))
    resolve = _resolver({"vault.internal": ["192.0.2.9"]})
    assert policy.refusal("http://169.254.10.1/", resolve=resolve) is None
    assert policy.refusal("http://10.3.3.3/", resolve=resolve) is not None
    assert policy.refusal("https://vault.internal/", resolve=resolve) is not None


def test_a_rule_may_name_a_port() -> None:
    policy = OutboundPolicy.of(allow=("127.0.0.1:9090", "[::1]:9090", "prometheus:9090"), strict=True)
    resolve = _resolver({"prometheus": ["10.9.9.9"]})
    assert policy.refusal("http://127.0.0.1:9090/", resolve=resolve) is None
    assert policy.refusal("http://[::1]:9090/", resolve=resolve) is None
    assert policy.refusal("http://prometheus:9090/", resolve=resolve) is None
    assert policy.refusal("http://127.0.0.1:8080/", resolve=resolve) is not None, "another port of the same host"
    assert policy.refusal("http://prometheus/", resolve=resolve) is not None


@pytest.mark.parametrize("text", ["10.0.0.0/33", "http://x", "a b", "", "host:port"])
def test_a_rule_that_is_neither_a_host_nor_a_network_is_refused_by_name(text: str) -> None:
    with pytest.raises(ValueError, match=r"host|network"):
        Rule.parse(text)


class _Redirects(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path == "/away":
            self.send_response(302)
            self.send_header("Location", "http://169.254.169.254/latest/meta-data/")
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b'{"ok": true}')

    def log_message(self, format: str, *args: object) -> None:
        """Quiet."""


@pytest.fixture
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Redirects)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def policy() -> Iterator[None]:
    before = outbound.current()
    yield
    outbound.configure(before)


@pytest.mark.usefixtures("policy")
def test_a_guarded_session_refuses_a_denied_destination_and_a_redirect_to_one(server: str) -> None:
    session = GuardedSession()
    assert session.get(f"{server}/", timeout=5).json() == {"ok": True}
    with pytest.raises(OutboundRefused, match=r"169\.254\.169\.254 .* is a denied destination"):
        session.get(f"{server}/away", timeout=5)
    port = int(server.rsplit(":", 1)[1])
    outbound.configure(OutboundPolicy.of(own_ports=(port,)))
    with pytest.raises(OutboundRefused, match="the controller's own port"):
        session.get(f"{server}/", timeout=5)


@pytest.mark.usefixtures("policy")
def test_a_metric_query_to_a_refused_destination_is_rejected_at_once(server: str) -> None:
    outbound.configure(OutboundPolicy.of(deny=("127.0.0.0/8",)))
    with pytest.raises(QueryFailed) as failure:
        HttpClient(attempts=3).send("GET", f"{server}/api/v1/query")
    assert failure.value.outcome is Outcome.REJECTED
    assert "the outbound policy refuses 127.0.0.1 (127.0.0.1) is a denied destination (127.0.0.0/8)" in \
        failure.value.detail


def test_the_controllers_own_destinations_pass_a_strict_policy_and_its_port_does_not() -> None:
    settings = ControllerSettings(metrics_server="http://127.0.0.1:9090", event_webhook="https://events.example.com/x",
                                  outbound_strict=True, outbound_allow=("10.0.0.0/8",), port=8080)
    policy = outbound_policy(settings)
    resolve = _resolver({"events.example.com": ["203.0.113.7"]})
    assert policy.refusal("http://127.0.0.1:9090/api/v1/query", resolve=resolve) is None
    assert policy.refusal("https://events.example.com/x", resolve=resolve) is None
    assert policy.refusal("http://10.1.1.1/", resolve=resolve) is None
    assert policy.refusal("http://127.0.0.1:8080/metrics", resolve=resolve) is not None
    assert policy.refusal("https://events.example.com:8443/", resolve=resolve) is not None
