"""Session affinity (spec.analysis.sessionAffinity), as Flagger's istio and gatewayapi routers do it.

While the canary takes traffic, its answers set a cookie ``<cookieName>=<token>`` and requests
that carry that cookie go to the canary whatever the weights say, so a user who reached the new
version stays on it. With ``primaryCookieName`` the primary's answers set their own cookie (for
one analysis interval) and requests carrying it stay on the primary. When the weight goes back to
0 the canary cookie becomes the previous one: its holders are routed like everyone else (to the
primary) and told to drop it (Max-Age=-1).

The cookies live in the Canary's status; ``next_cookies`` is pure (the token comes from the caller).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from canary.models.base import seconds_of
from canary.models.canary import Canary, CanaryStatus, SessionAffinity

DEFAULT_MAX_AGE = 86400
COOKIE_HEADER = "Cookie"
SET_COOKIE_HEADER = "Set-Cookie"


@dataclass(frozen=True)
class Cookies:
    """The session cookies (``name=token``) of a run: the canary's, the primary's, and the previous run's."""

    canary: str | None = None
    primary: str | None = None
    previous: str | None = None

    @classmethod
    def of(cls, status: CanaryStatus) -> Cookies:
        """The cookies recorded in ``status``."""
        return cls(canary=status.session_affinity_cookie or None,
                   primary=status.primary_session_affinity_cookie or None,
                   previous=status.previous_session_affinity_cookie or None)


def next_cookies(affinity: SessionAffinity, current: Cookies, *, canary_weight: int,
                 token: Callable[[], str]) -> Cookies:
    """The cookies once the canary's weight is ``canary_weight``: new ones when the canary first takes
    traffic, the canary's kept as the previous one when it stops."""
    if canary_weight > 0:
        canary = current.canary or f"{affinity.cookie_name}={token()}"
        primary = current.primary
        if affinity.primary_cookie_name and primary is None:
            primary = f"{affinity.primary_cookie_name}={token()}"
        return Cookies(canary=canary, primary=primary, previous=current.previous)
    return Cookies(canary=None, primary=current.primary, previous=current.canary or current.previous)


def set_cookie(affinity: SessionAffinity, cookie: str, max_age: int) -> str:
    """The Set-Cookie value for ``cookie`` with the attributes spec.analysis.sessionAffinity asks for."""
    parts = [cookie, f"Max-Age={max_age}"]
    if affinity.domain:
        parts.append(f"Domain={affinity.domain}")
    if affinity.http_only:
        parts.append("HttpOnly")
    if affinity.partitioned:
        parts.append("Partitioned")
    if affinity.path:
        parts.append(f"Path={affinity.path}")
    if affinity.same_site:
        parts.append(f"SameSite={affinity.same_site}")
    if affinity.secure:
        parts.append("Secure")
    return "; ".join(parts)


def cookie_regex(cookie: str) -> str:
    """The Cookie header regex that matches requests carrying ``cookie`` (``name=token``)."""
    name, _, value = cookie.partition("=")
    return f".*{name}.*{value}.*"


@dataclass(frozen=True)
class StickyHeaders:
    """What a router writes for session affinity, given the canary's weight."""

    canary_set_cookie: str | None
    """Set-Cookie added to the canary's answers on the weighted route."""
    primary_set_cookie: str | None
    """Set-Cookie added to the primary's answers on the weighted route."""
    to_canary: str | None
    """Cookie regex of the route that sends its holders to the canary."""
    to_primary: str | None
    """Cookie regex of the route that keeps its holders on the primary."""
    expire: tuple[str, str] | None
    """(Cookie regex, Set-Cookie) of the route that tells the previous run's cookie holders to drop
    it; they are otherwise routed by the weights."""


def sticky_headers(canary: Canary, canary_weight: int) -> StickyHeaders | None:
    """The sticky routes of ``canary`` at ``canary_weight`` from the cookies in its status; None
    without spec.analysis.sessionAffinity."""
    affinity = canary.spec.analysis.session_affinity
    if affinity is None:
        return None
    cookies = Cookies.of(canary.status)
    if canary_weight > 0 and cookies.canary:
        interval = int(seconds_of(canary.spec.analysis.interval))
        return StickyHeaders(
            canary_set_cookie=set_cookie(affinity, cookies.canary, affinity.max_age or DEFAULT_MAX_AGE),
            primary_set_cookie=set_cookie(affinity, cookies.primary, interval)
            if affinity.primary_cookie_name and cookies.primary else None,
            to_canary=cookie_regex(cookies.canary),
            to_primary=cookie_regex(cookies.primary) if affinity.primary_cookie_name and cookies.primary else None,
            expire=None)
    previous = cookies.previous
    return StickyHeaders(canary_set_cookie=None, primary_set_cookie=None, to_canary=None, to_primary=None,
                         expire=(cookie_regex(previous), f"{previous}; Max-Age=-1") if previous else None)
