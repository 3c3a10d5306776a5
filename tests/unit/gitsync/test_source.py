from __future__ import annotations

import re
import shlex
import stat
import subprocess
from pathlib import Path

import pytest

from canary.errors import PermanentError
from canary.gitsync.source import (
    HTTPS_USERNAME,
    GitCredentials,
    GitSource,
    InvalidGitSource,
    SignatureCheck,
    cache_path,
    git_env,
    scrub_url,
    write_credentials,
)

TEST_CREDENTIAL = "ghp_s3cr3t-token-value"
SHA = "0123456789abcdef0123456789abcdef01234567"


def test_the_ref_is_the_pinned_commit_else_the_tag_else_the_branch() -> None:
    assert GitSource("s", "git://h/r").ref == "refs/heads/main"
    assert GitSource("s", "git://h/r", branch="release/1.x").ref == "refs/heads/release/1.x"
    assert GitSource("s", "git://h/r", tag="v1.2.0").ref == "refs/tags/v1.2.0"
    assert GitSource("s", "git://h/r", tag="v1", commit=SHA).ref == SHA


def test_the_cache_folder_is_stable_and_differs_per_url_and_ref(tmp_path: Path) -> None:
    folder = cache_path(GitSource("a", "git://h/r"), tmp_path)
    assert folder.parent == tmp_path / "gitsync"
    assert re.fullmatch(r"[0-9a-f]{16}", folder.name)
    assert cache_path(GitSource("other-name", "git://h/r", paths=("k8s",)), tmp_path) == folder
    assert cache_path(GitSource("a", "git://h/r", branch="dev"), tmp_path) != folder
    assert cache_path(GitSource("a", "git://h/other"), tmp_path) != folder


def test_scrubbing_removes_userinfo_from_every_url_in_a_text() -> None:
    assert scrub_url("https://user:pw@example.com/org/repo.git") == "https://example.com/org/repo.git"
    assert scrub_url("unable to access 'https://tok@h.io/r/': 403") == "unable to access 'https://h.io/r/': 403"
    assert scrub_url("ssh://git@h.io:22/r.git and git://h.io/r") == "ssh://h.io:22/r.git and git://h.io/r"
    assert scrub_url("git@github.com:org/repo.git") == "git@github.com:org/repo.git"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"url": ""}, "git source demo: url must not be empty"),
        ({"url": "--upload-pack=evil"}, "url must not start with '-'"),
        ({"url": "https://me:hunter2@h.io/r"}, "url must not contain a password; put the token in credentials."),
        ({"branch": None}, "one of branch, tag or commit is required"),
        ({"commit": "abc123"}, "commit must be a full hexadecimal commit id (40 or 64 digits), got 'abc123'"),
        ({"branch": "-x"}, "branch '-x' is not a valid Git ref name"),
        ({"branch": "a..b"}, "branch 'a..b' is not a valid Git ref name"),
        ({"tag": "v 1"}, "tag 'v 1' is not a valid Git ref name"),
        ({"paths": ()}, "paths must list at least one folder"),
        ({"paths": (".", "../up")}, "paths[1] '../up' must be a relative path inside the repository"),
        ({"paths": ("/etc",)}, "paths[0] '/etc' must be a relative path inside the repository"),
        ({"timeout": 0.0}, "timeout must be positive, got 0.0"),
        ({"credentials": GitCredentials(ssh_private_key="k")}, "credentials.known_hosts is required"),
        ({"verify": SignatureCheck(kind="ssh", keys="  ")}, "verify.keys must not be empty"),
    ],
)
def test_a_bad_source_is_refused_naming_the_source_and_the_field(overrides: dict[str, object], message: str) -> None:
    arguments: dict[str, object] = {"name": "demo", "url": "git://h/r", **overrides}
    with pytest.raises(InvalidGitSource, match=re.escape(message)) as caught:
        GitSource(**arguments)  # type: ignore[arg-type]
    assert str(caught.value).startswith("git source demo: ")
    assert isinstance(caught.value, PermanentError)


def test_the_repr_of_a_source_shows_no_secret() -> None:
    credentials = GitCredentials(https_token=TEST_CREDENTIAL, ssh_private_key="KEY", known_hosts="h.io ssh-ed25519 A")
    source = GitSource("s", "https://h.io/r", credentials=credentials)
    assert TEST_CREDENTIAL not in repr(source)
    assert "KEY" not in repr(source)


def test_an_https_token_is_written_to_private_files_and_never_put_in_the_environment(tmp_path: Path) -> None:
    env = write_credentials(GitCredentials(https_token=TEST_CREDENTIAL), tmp_path)
    full = git_env(env, base={"PATH": "/usr/bin:/bin", "GIT_DIR": "/elsewhere"})

    assert all(TEST_CREDENTIAL not in value for value in full.values())
    askpass = Path(env["GIT_ASKPASS"])
    assert stat.S_IMODE(askpass.stat().st_mode) == 0o700
    assert TEST_CREDENTIAL not in askpass.read_text()
    assert stat.S_IMODE((tmp_path / "token").stat().st_mode) == 0o600
    assert (tmp_path / "token").read_text() == TEST_CREDENTIAL

    def ask(prompt: str) -> str:
        return subprocess.run([str(askpass), prompt], check=True, capture_output=True, text=True).stdout.strip()

    assert ask("Username for 'https://h.io': ") == HTTPS_USERNAME
    assert ask("Password for 'https://x-access-token@h.io': ") == TEST_CREDENTIAL


def test_an_ssh_key_is_named_by_the_ssh_command_with_strict_host_key_checking(tmp_path: Path) -> None:
    key = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXk=\n-----END OPENSSH PRIVATE KEY-----"
    credentials = GitCredentials(ssh_private_key=key, known_hosts="h.io ssh-ed25519 AAAAC3")
    env = write_credentials(credentials, tmp_path)

    command = shlex.split(env["GIT_SSH_COMMAND"])
    assert command[0] == "ssh"
    assert command[command.index("-i") + 1] == str(tmp_path / "ssh_key")
    assert "StrictHostKeyChecking=yes" in command
    assert f"UserKnownHostsFile={tmp_path / 'known_hosts'}" in command
    assert "BatchMode=yes" in command
    assert all("PRIVATE KEY" not in value for value in env.values())
    assert (tmp_path / "ssh_key").read_text() == key + "\n"
    assert stat.S_IMODE((tmp_path / "ssh_key").stat().st_mode) == 0o600
    assert (tmp_path / "known_hosts").read_text() == "h.io ssh-ed25519 AAAAC3"


def test_without_credentials_ssh_still_never_prompts(tmp_path: Path) -> None:
    env = write_credentials(None, tmp_path)
    assert "GIT_ASKPASS" not in env
    assert "BatchMode=yes" in shlex.split(env["GIT_SSH_COMMAND"])
    assert list(tmp_path.iterdir()) == []


def test_the_git_environment_never_prompts_ignores_user_config_and_passes_settings_by_variables() -> None:
    env = git_env({"GIT_ASKPASS": "/p/askpass"}, config=[("gpg.format", "ssh"), ("gpg.ssh.allowedSignersFile", "/f")],
                  base={"PATH": "/bin", "HOME": "/home/u", "GIT_DIR": "/x", "GIT_TRACE": "1"})
    assert env["GIT_TERMINAL_PROMPT"] == "0"
    assert env["GIT_CONFIG_GLOBAL"] == "/dev/null"
    assert env["GIT_CONFIG_NOSYSTEM"] == "1"
    assert env["GIT_ASKPASS"] == "/p/askpass"
    assert "GIT_DIR" not in env
    assert "GIT_TRACE" not in env
    assert env["PATH"] == "/bin"
    assert env["GIT_CONFIG_COUNT"] == "2"
    assert (env["GIT_CONFIG_KEY_0"], env["GIT_CONFIG_VALUE_0"]) == ("gpg.format", "ssh")
    assert (env["GIT_CONFIG_KEY_1"], env["GIT_CONFIG_VALUE_1"]) == ("gpg.ssh.allowedSignersFile", "/f")
