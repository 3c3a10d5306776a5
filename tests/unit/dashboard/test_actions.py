"""Who may use the dashboard's controls, and cross-site requests refused before anything else."""

from __future__ import annotations

from pathlib import Path
from typing import cast

import pytest
from pydantic import ValidationError

from canary.dashboard.actions import (
    CSRF_COOKIE,
    CSRF_HEADER,
    FolderTokens,
    Guard,
    Mode,
    Refused,
    cross_site,
    tokens_from,
)
from canary.errors import PermanentError
from canary.kube.client import Kube
from canary.settings import DashboardSettings

HOST = "127.0.0.1:3100"
COOKIES = {CSRF_COOKIE: "session-token"}


def _headers(**extra: str) -> dict[str, str]:
    return {"host": HOST, "origin": f"http://{HOST}", "sec-fetch-site": "same-origin", CSRF_HEADER: "session-token",
            **extra}


def test_a_request_from_the_page_itself_is_not_cross_site() -> None:
    assert cross_site(_headers(), COOKIES, host=HOST) is None
    # curl and other clients that are not browsers send neither header: the token still has to match
    assert cross_site({CSRF_HEADER: "session-token"}, COOKIES, host=HOST) is None


@pytest.mark.parametrize(("headers", "why"), [
    (_headers(**{"sec-fetch-site": "cross-site"}), "Sec-Fetch-Site: cross-site"),
    (_headers(**{"sec-fetch-site": "same-site"}), "Sec-Fetch-Site: same-site"),  # another port of this host
    (_headers(origin="http://127.0.0.1:8000"), "Origin http://127.0.0.1:8000"),
    (_headers(**{CSRF_HEADER: "guessed"}), CSRF_HEADER),
    ({k: v for k, v in _headers().items() if k != CSRF_HEADER}, CSRF_HEADER),
])
def test_cross_site_requests_are_refused_and_say_why(headers: dict[str, str], why: str) -> None:
    refusal = cross_site(headers, COOKIES, host=HOST)
    assert refusal is not None
    assert why in refusal


def test_without_a_session_cookie_nothing_matches() -> None:
    assert cross_site(_headers(), {}, host=HOST) is not None


class _Tokens:
    def holders(self) -> dict[str, str]:
        return {"alice": "a-token", "ci": "ci-token"}


def test_token_mode_names_the_holder_of_the_token() -> None:
    guard = Guard(Mode.TOKEN, _Tokens())
    assert guard.check(_headers(authorization="Bearer ci-token"), COOKIES, host=HOST) == "ci"


@pytest.mark.parametrize(("guard", "authorization", "status"), [
    (Guard(Mode.TOKEN, _Tokens()), "", 401),
    (Guard(Mode.TOKEN, _Tokens()), "Bearer nope", 401),
    (Guard(Mode.TOKEN, _Tokens()), "Basic a-token", 401),
    (Guard(Mode.OFF), "Bearer a-token", 403),
])
def test_controls_are_refused_without_a_known_token_or_when_off(guard: Guard, authorization: str,
                                                                status: int) -> None:
    with pytest.raises(Refused) as refused:
        guard.check(_headers(authorization=authorization), COOKIES, host=HOST)
    assert refused.value.status == status


def test_cross_site_is_refused_even_with_a_good_token() -> None:
    with pytest.raises(Refused, match="cross-site"):
        Guard(Mode.TOKEN, _Tokens()).check(_headers(authorization="Bearer a-token", origin="http://evil.example"),
                                           COOKIES, host=HOST)


def test_a_mounted_secret_folder_gives_one_token_per_file(tmp_path: Path) -> None:
    (tmp_path / "alice").write_text("a-token\n")
    (tmp_path / "..data").mkdir()  # how Kubernetes mounts a Secret: its own links are not tokens
    assert FolderTokens(tmp_path).holders() == {"alice": "a-token"}
    assert isinstance(tokens_from(str(tmp_path), cast(Kube, None)), FolderTokens)


def test_a_tokens_flag_that_names_neither_a_secret_nor_a_folder_is_refused() -> None:
    with pytest.raises(PermanentError, match="--dashboard-tokens must be namespace/name"):
        tokens_from("just-a-name", cast(Kube, None))


@pytest.mark.parametrize(("settings", "message"), [
    ({"actions": True, "tokens": "ns/tokens"}, "--dashboard-actions needs --dashboard"),
    ({"enabled": True, "actions": True}, "--dashboard-actions needs --dashboard-tokens"),
    ({"enabled": True, "tokens": "ns/tokens"}, "--dashboard-tokens is only read with --dashboard-actions"),
])
def test_dashboard_flags_that_would_be_ignored_are_refused(settings: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        DashboardSettings.model_validate(settings)
