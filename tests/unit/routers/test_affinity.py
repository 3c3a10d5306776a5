"""Session-affinity cookies through a run, as Flagger keeps them."""

from __future__ import annotations

from collections.abc import Callable
from itertools import count

from canary.models.canary import SessionAffinity
from canary.routers.affinity import Cookies, next_cookies, set_cookie


def _tokens() -> Callable[[], str]:
    numbers = count(1)
    return lambda: f"t{next(numbers)}"


def test_the_cookies_are_made_when_the_canary_first_takes_traffic_and_kept_until_it_stops() -> None:
    affinity = SessionAffinity.model_validate({"cookieName": "c", "primaryCookieName": "p"})
    token = _tokens()
    assert next_cookies(affinity, Cookies(), canary_weight=0, token=token) == Cookies()
    first = next_cookies(affinity, Cookies(), canary_weight=10, token=token)
    assert first == Cookies(canary="c=t1", primary="p=t2")
    assert next_cookies(affinity, first, canary_weight=20, token=token) == first
    ended = next_cookies(affinity, first, canary_weight=0, token=token)
    assert ended == Cookies(canary=None, primary="p=t2", previous="c=t1")
    again = next_cookies(affinity, ended, canary_weight=10, token=token)
    assert again == Cookies(canary="c=t3", primary="p=t2", previous="c=t1"), "a new run gets a new canary cookie"


def test_without_a_primary_cookie_name_there_is_no_primary_cookie() -> None:
    affinity = SessionAffinity.model_validate({"cookieName": "c"})
    assert next_cookies(affinity, Cookies(), canary_weight=5, token=lambda: "x") == Cookies(canary="c=x")


def test_the_set_cookie_header_carries_the_attributes_asked_for() -> None:
    affinity = SessionAffinity.model_validate({"cookieName": "c", "domain": "example.com", "httpOnly": True,
                                               "partitioned": True, "path": "/app", "sameSite": "Strict",
                                               "secure": True})
    assert set_cookie(affinity, "c=x", 60) == \
        "c=x; Max-Age=60; Domain=example.com; HttpOnly; Partitioned; Path=/app; SameSite=Strict; Secure"
