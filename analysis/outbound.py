"""Where the controller may send requests that Canaries, MetricTemplates and AlertProviders ask for.

Whoever may write a Canary or a MetricTemplate chooses addresses that the controller then calls
from inside the cluster; in a shared cluster that must not reach what only the controller can
reach. The policy, set once at start (``configure``) from the controller's flags, refuses by
default the link-local and cloud metadata addresses and the controller's own port on its own
addresses; a strict policy allows only the hosts and networks it lists. Every request a
``GuardedSession`` sends (metric queries, webhooks, alerts, and each redirect they follow) is
checked against the addresses its host resolves to.

The host is resolved for the check and again by the connection, so a name whose DNS answer
changes in between (rebinding) could pass; a strict policy that lists addresses, not names,
closes that gap.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import requests

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], list[str]]

METADATA_NETWORKS = ("169.254.0.0/16", "fe80::/10", "fd00:ec2::254/128", "100.100.100.200/32")
"""Link-local (AWS, GCP, Azure, OpenStack metadata at 169.254.169.254), AWS's IPv6 metadata, Alibaba's."""


class OutboundRefused(requests.RequestException):
    """The outbound policy refuses this destination; retrying cannot help."""


def _resolve(host: str, port: int) -> list[str]:
    return sorted({str(info[4][0]) for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)})


def _local_addresses() -> frozenset[Address]:
    """This process's own addresses (loopback aside), from its host name."""
    found: set[Address] = set()
    try:
        for info in socket.getaddrinfo(socket.gethostname(), None):
            found.add(ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]))
    except OSError:
        pass
    return frozenset(found)


@dataclass(frozen=True)
class Rule:
    """A host name (``prometheus.monitoring``, ``*.example.com``) or a network (``10.0.0.0/8``,
    ``192.0.2.7``), optionally with a port (``prometheus.monitoring:9090``, ``[::1]:9090``)."""

    text: str
    network: Network | None = None
    port: int | None = None

    @classmethod
    def parse(cls, text: str) -> Rule:
        """The rule ``text`` writes; a bad one is a ValueError naming it."""
        value = text.strip().lower()
        if not value:
            raise ValueError("an empty host or network")
        port = None
        found = re.fullmatch(r"(\[[0-9a-f:.]+\]|[^:\[\]]+):(\d{1,5})", value)
        if found is not None:
            value, port = found.group(1).strip("[]"), int(found.group(2))
        try:
            return cls(value, ipaddress.ip_network(value, strict=False), port)
        except ValueError:
            if any(c in value for c in "/:[]") or " " in value:
                raise ValueError(f"{text!r} is neither a host name nor a network such as 10.0.0.0/8") from None
            return cls(value, None, port)

    def matches(self, host: str, address: Address | None, port: int) -> bool:
        """Whether the destination ``host:port`` (resolved to ``address``) is this rule's."""
        if self.port is not None and port != self.port:
            return False
        if self.network is not None:
            return address is not None and address.version == self.network.version and address in self.network
        name = host.lower().rstrip(".")
        if self.text.startswith("*."):
            return name.endswith(self.text[1:])
        return name == self.text


@dataclass(frozen=True)
class OutboundPolicy:
    """Which destinations requests may go to; ``refusal`` says why one may not."""

    allow: tuple[Rule, ...] = ()
    deny: tuple[Rule, ...] = tuple(Rule.parse(n) for n in METADATA_NETWORKS)
    strict: bool = False
    own_ports: tuple[int, ...] = ()
    """The controller's own listening ports, refused on loopback and on its own addresses."""
    local: frozenset[Address] = field(default_factory=_local_addresses)

    @classmethod
    def of(cls, *, allow: Iterable[str] = (), deny: Iterable[str] = (), strict: bool = False,
           own_ports: Iterable[int] = ()) -> OutboundPolicy:
        """A policy from the controller's flags: extra denied hosts or networks on top of the defaults."""
        return cls(allow=tuple(Rule.parse(a) for a in allow),
                   deny=tuple(Rule.parse(n) for n in (*METADATA_NETWORKS, *deny)),
                   strict=strict, own_ports=tuple(own_ports))

    def refusal(self, url: str, *, resolve: Resolver = _resolve) -> str | None:
        """Why a request to ``url`` may not be sent, or None when it may."""
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        port = parts.port or (443 if parts.scheme == "https" else 80)
        if not host:
            return f"{parts.scheme}://{parts.netloc} names no host"
        try:
            literal: Address | None = ipaddress.ip_address(host)
        except ValueError:
            literal = None
        if literal is not None:
            addresses = [literal]
        else:
            try:
                addresses = [ipaddress.ip_address(a.split("%", 1)[0]) for a in resolve(host, port)]
            except OSError as exc:
                return None if not self.strict else f"{host} does not resolve ({exc.strerror or exc})"
        for address in addresses:
            why = self._refusal(host, address, port)
            if why is not None:
                return why
        return None

    def _refusal(self, host: str, address: Address, port: int) -> str | None:
        if any(rule.matches(host, address, port) for rule in self.allow):
            return None
        if self.strict:
            return f"{host} ({address}) is not among the allowed destinations (--outbound-allow)"
        for rule in self.deny:
            if rule.matches(host, address, port):
                return f"{host} ({address}) is a denied destination ({rule.text})"
        if port in self.own_ports and (address.is_loopback or address.is_unspecified or address in self.local):
            return f"{host}:{port} is the controller's own port"
        return None


_lock = threading.Lock()
_policy = OutboundPolicy()


def configure(policy: OutboundPolicy) -> None:
    """Make ``policy`` the one every ``GuardedSession`` checks (the controller does this at start)."""
    global _policy  # noqa: PLW0603 - one policy per process, set once at start
    with _lock:
        _policy = policy


def current() -> OutboundPolicy:
    """The policy in force."""
    with _lock:
        return _policy


def check(url: str) -> None:
    """Raise ``OutboundRefused`` when the policy in force refuses ``url``."""
    why = current().refusal(url)
    if why is not None:
        raise OutboundRefused(f"the outbound policy refuses {why}")


class GuardedSession(requests.Session):
    """A ``requests`` session that sends nothing the outbound policy refuses, redirects included."""

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # noqa: ANN401 - requests' keywords
        """Check ``request``'s destination, then send it."""
        check(str(request.url))
        return super().send(request, **kwargs)
