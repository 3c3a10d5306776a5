"""The dashboard's manual controls: who may use them, cross-site refusal, and the same API calls as the CLI.

``app`` asks ``Guard.check`` about every POST and then calls ``perform``. Promote, abort and retry write
the request annotation (``canary.controls.request``); pause and resume set spec.suspend
(``canary.controls.set_suspended``), exactly as ``canary promote|abort|retry|pause|resume`` do.

Who may act:
- ``canary dashboard`` (loopback, the user's own kubeconfig): whoever can open the page on this machine,
  as that user; the cluster's RBAC has the last word.
- ``canary controller --dashboard``: nobody, unless ``--dashboard-actions``; then a bearer token from a
  Secret (or the folder it is mounted in) whose keys name who holds each token. The name is logged.

Cross-site requests are refused before anything else: a POST must come from the page's own origin
(``Sec-Fetch-Site`` and ``Origin``, which browsers set and scripts cannot forge) and carry the session's
CSRF token in a header equal to its cookie (double submit: another site can neither read the cookie nor
send the header without a CORS preflight, which is never granted).
"""

from __future__ import annotations

import base64
import getpass
import hmac
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit

from canary import controls
from canary.engine.decide import Request
from canary.errors import PermanentError
from canary.kube.client import Kube

CSRF_COOKIE = "canary_csrf"
CSRF_HEADER = "x-canary-csrf"
SAME_SITE = ("same-origin", "none")  # "none": typed or bookmarked by the user, not another site


class Action(StrEnum):
    """The controls a page offers."""

    PROMOTE = "promote"
    ABORT = "abort"
    RETRY = "retry"
    PAUSE = "pause"
    RESUME = "resume"


class Mode(StrEnum):
    """Who may use the controls: the local user, holders of a token, or nobody (read-only)."""

    LOCAL = "local"
    TOKEN = "token"  # noqa: S105 - the name of a mode, not a password
    OFF = "off"


@dataclass(frozen=True)
class Refused(Exception):
    """A request the guard turns away; ``status`` is the HTTP answer."""

    status: int
    reason: str


def new_csrf_token() -> str:
    """A fresh session token for the CSRF cookie."""
    return secrets.token_urlsafe(24)


def cross_site(headers: Mapping[str, str], cookies: Mapping[str, str], *, host: str) -> str | None:
    """Why a state-changing request looks cross-site, or None when it comes from our own page: ``host`` is
    the Host it was sent to (the scheme is not compared, so that a proxy may end TLS in front)."""
    site = headers.get("sec-fetch-site")
    if site is not None and site not in SAME_SITE:
        return f"cross-site request refused (Sec-Fetch-Site: {site})"
    sent = headers.get("origin")
    if sent is not None and urlsplit(sent).netloc != host:
        return f"cross-site request refused (Origin {sent} is not this dashboard's, {host})"
    cookie, header = cookies.get(CSRF_COOKIE, ""), headers.get(CSRF_HEADER, "")
    if not cookie or not header or not hmac.compare_digest(cookie, header):
        return f"cross-site request refused (the {CSRF_HEADER} header must equal the page's {CSRF_COOKIE} cookie)"
    return None


class Tokens(Protocol):
    """Bearer tokens and who holds each."""

    def holders(self) -> dict[str, str]:
        """Who holds each token, by holder; read at each request, so a rotated Secret takes effect at once."""


@dataclass(frozen=True)
class SecretTokens:
    """Tokens in a Secret: each key names who holds the token in its value."""

    kube: Kube
    namespace: str
    name: str

    def holders(self) -> dict[str, str]:
        """The Secret's keys and decoded values (none when the Secret is missing)."""
        found = self.kube.get("v1", "Secret", self.name, namespace=self.namespace) or {}
        return {k: base64.b64decode(v).decode().strip() for k, v in (found.get("data") or {}).items()}


@dataclass(frozen=True)
class FolderTokens:
    """Tokens in a folder where such a Secret is mounted: one file per holder."""

    folder: Path

    def holders(self) -> dict[str, str]:
        """Each file's name and content (Kubernetes' own ``..data`` links are skipped)."""
        return {p.name: p.read_text().strip() for p in sorted(self.folder.iterdir())
                if not p.name.startswith(".") and p.is_file()}


def tokens_from(where: str, kube: Kube) -> Tokens:
    """``--dashboard-tokens``: a folder, or ``namespace/name`` of a Secret."""
    if Path(where).is_dir():
        return FolderTokens(Path(where))
    namespace, slash, name = where.partition("/")
    if not slash or not namespace or not name or "/" in name:
        raise PermanentError(f"--dashboard-tokens must be namespace/name of a Secret or an existing folder, "
                             f"got {where!r}")
    return SecretTokens(kube, namespace, name)


@dataclass(frozen=True)
class Guard:
    """Decides whether a control request may go ahead, and names who asked."""

    mode: Mode
    tokens: Tokens | None = None

    def check(self, headers: Mapping[str, str], cookies: Mapping[str, str], *, host: str) -> str:
        """Who asked, or ``Refused``: cross-site first, then whether controls are on, then the token."""
        why = cross_site(headers, cookies, host=host)
        if why is not None:
            raise Refused(403, why)
        if self.mode is Mode.OFF:
            raise Refused(403, "actions are off: this dashboard is read-only (canary controller --dashboard-actions "
                          "turns them on)")
        if self.mode is Mode.LOCAL:
            return f"{getpass.getuser()} (local dashboard)"
        return self._holder(headers.get("authorization", ""))

    def _holder(self, authorization: str) -> str:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Refused(401, "actions need a bearer token (Authorization: Bearer <token>)")
        if self.tokens is None:
            raise Refused(403, "actions need tokens, and none are configured (--dashboard-tokens)")
        for holder, expected in self.tokens.holders().items():
            if expected and hmac.compare_digest(expected.encode(), token.strip().encode()):
                return holder
        raise Refused(401, "the bearer token is not one of the dashboard's tokens")


def perform(kube: Kube, namespace: str, name: str, action: Action) -> str | None:
    """Carry out ``action`` as the CLI does; returns the request's value for promote, abort and retry
    (the controller records it in status.handledRequest once it acted)."""
    if action is Action.PAUSE or action is Action.RESUME:
        controls.set_suspended(kube, namespace, name, suspended=action is Action.PAUSE)
        return None
    return controls.request(kube, namespace, name, Request(action.value))
