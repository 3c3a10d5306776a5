"""Every duration flag takes Go durations ("90s", "5m", "1h30m"), and a bare number still means seconds."""

from __future__ import annotations

from typing import Any

import pytest
from typer.testing import CliRunner

from canary import cli, controller
from canary.gitsync.config import GitSettings, SourceEntry


def _parsed(*args: str) -> dict[str, Any]:
    """The values the controller command would run with, without running it."""
    seen: dict[str, Any] = {}
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(controller, "run", lambda settings, stop, **wiring: seen.update(settings=settings))
        seen["result"] = CliRunner().invoke(cli.app, ["controller", *args], env={"COLUMNS": "300"})
    return seen


@pytest.mark.parametrize(("flag", "value", "seconds"), [
    ("--git-poll-interval", "2s", 2.0), ("--git-poll-interval", "1m30s", 90.0), ("--git-poll-interval", "5", 5.0),
    ("--git-sync-interval", "5m", 300.0), ("--git-sync-interval", "1.5h", 5400.0), ("--git-timeout", "90s", 90.0),
])
def test_git_duration_flags_take_go_durations_and_bare_seconds(flag: str, value: str, seconds: float) -> None:
    seen = _parsed("--git-url", "file:///repo", flag, value)
    assert seen["result"].exit_code == 0, seen["result"].output
    git = seen["settings"].git
    field = {"--git-poll-interval": "poll_interval", "--git-sync-interval": "sync_interval",
             "--git-timeout": "timeout"}[flag]
    assert getattr(git, field) == seconds


@pytest.mark.parametrize(("args", "seconds"), [
    (("--leader-election-lease-duration", "30s"), 30), (("--leader-election-lease-seconds", "20"), 20), ((), 15),
    (("--leader-election-lease-duration", "1m", "--leader-election-lease-seconds", "60"), 60),
])
def test_the_lease_takes_seconds_or_a_duration(args: tuple[str, ...], seconds: int) -> None:
    seen = _parsed(*args)
    assert seen["result"].exit_code == 0, seen["result"].output
    assert seen["settings"].leader_election_lease_seconds == seconds


@pytest.mark.parametrize(("args", "words"), [
    (("--git-poll-interval", "soon"), "'soon' is not a duration such as 30s, 1m or 1m30s"),
    (("--git-timeout", "0s"), "must be more than zero"),
    (("--leader-election-lease-duration", "1.5s"), "must be whole seconds"),
    (("--leader-election-lease-duration", "30s", "--leader-election-lease-seconds", "20"), "give one of them"),
])
def test_a_value_that_is_not_a_duration_is_refused_naming_the_flag(args: tuple[str, ...], words: str) -> None:
    result = _parsed("--git-url", "file:///repo", *args)["result"]
    assert result.exit_code == 2
    text = " ".join(result.output.replace("│", " ").split())
    assert words in text
    assert args[-2] in text or args[0] in text


def test_settings_files_take_durations_too() -> None:
    assert SourceEntry.model_validate({"name": "apps", "url": "file:///x", "timeout": "2m"}).timeout == 120.0
    assert GitSettings.model_validate({"poll_interval": "500ms"}).poll_interval == 0.5
    with pytest.raises(ValueError, match="is not a duration"):
        GitSettings.model_validate({"poll_interval": "later"})

