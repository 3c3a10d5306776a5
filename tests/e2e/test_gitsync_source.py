"""Fetching, polling, pushing and verifying a real repository over git:// (git daemon) and file://.

No Kubernetes here: the remote is a bare repository in the test's folder, served by a real
``git daemon`` on a loopback port where the transport is git://.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from canary.gitsync.source import (
    GitCredentials,
    GitError,
    GitSource,
    InvalidGitSource,
    SignatureCheck,
    UnverifiedCommit,
    fetch,
    ls_remote_head,
    push,
)
from canary.local.ports import free_ports
from tests.e2e.gitrepos import Upstream, git, have_ssh_signing, signed_by, ssh_key

TEST_CREDENTIAL = "glpat-very-s3cret-t0ken"


@pytest.fixture(params=["git", "file"])
def url(request: pytest.FixtureRequest, upstream: Upstream) -> str:
    """The upstream's URL over git:// (through git daemon) or file://."""
    if request.param == "git":
        port: int = request.getfixturevalue("daemon")
        return f"git://127.0.0.1:{port}/app.git"
    return upstream.bare.as_uri()


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    return tmp_path / "cache"


def test_the_first_fetch_checks_out_the_branch_head(upstream: Upstream, url: str, cache: Path) -> None:
    checkout = fetch(GitSource("app", url, timeout=10), cache)

    assert checkout.commit == upstream.head()
    assert checkout.ref == "refs/heads/main"
    assert checkout.message == "seed"
    assert checkout.author == "Dev <dev@example.com>"
    assert checkout.time.tzinfo is not None
    assert (checkout.path / "k8s/app/deployment.yaml").read_text() == "image: podinfo:6.0.0\n"
    assert checkout.path.is_relative_to(cache / "gitsync")
    assert git("rev-parse", "--is-shallow-repository", cwd=checkout.path) == "true"


def test_a_new_commit_is_picked_up_and_local_drift_is_discarded(upstream: Upstream, url: str, cache: Path) -> None:
    source = GitSource("app", url, timeout=10)
    first = fetch(source, cache)
    assert fetch(source, cache) == first

    (first.path / "k8s/app/deployment.yaml").write_text("edited by hand\n")
    (first.path / "stray.yaml").write_text("kind: Stray\n")
    new = upstream.commit({"k8s/app/deployment.yaml": "image: podinfo:6.1.0\n", "k8s/app/service.yaml": None},
                          "release 6.1.0")
    second = fetch(source, cache)

    assert second.commit == new != first.commit
    assert second.path == first.path
    assert second.message == "release 6.1.0"
    assert (second.path / "k8s/app/deployment.yaml").read_text() == "image: podinfo:6.1.0\n"
    assert not (second.path / "k8s/app/service.yaml").exists()
    assert not (second.path / "stray.yaml").exists()


def test_a_tag_and_a_pinned_commit_are_fetched_and_polled(upstream: Upstream, url: str, cache: Path) -> None:
    tagged = upstream.head()
    git("tag", "--annotate", "v1.0.0", "--message", "first release", cwd=upstream.work)
    git("push", "--quiet", "origin", "v1.0.0", cwd=upstream.work)
    upstream.commit({"k8s/app/deployment.yaml": "image: podinfo:7.0.0\n"}, "next")

    by_tag = GitSource("app", url, branch=None, tag="v1.0.0", timeout=10)
    assert ls_remote_head(by_tag) == tagged
    checkout = fetch(by_tag, cache)
    assert (checkout.commit, checkout.ref) == (tagged, "refs/tags/v1.0.0")
    assert (checkout.path / "k8s/app/deployment.yaml").read_text() == "image: podinfo:6.0.0\n"

    pinned = GitSource("app", url, commit=tagged, timeout=10)
    assert ls_remote_head(pinned) == tagged
    checkout = fetch(pinned, cache)
    assert (checkout.commit, checkout.ref) == (tagged, tagged)
    assert (checkout.path / "k8s/app/deployment.yaml").read_text() == "image: podinfo:6.0.0\n"


def test_ls_remote_head_sees_a_new_commit_without_fetching(upstream: Upstream, url: str, cache: Path) -> None:
    source = GitSource("app", url, timeout=10)
    before = fetch(source, cache)
    assert ls_remote_head(source) == before.commit

    new = upstream.commit({"k8s/app/deployment.yaml": "image: podinfo:6.2.0\n"}, "bump")

    assert ls_remote_head(source) == new
    assert git("rev-parse", "HEAD", cwd=before.path) == before.commit


def test_an_unknown_branch_is_reported_by_name(upstream: Upstream, url: str, cache: Path) -> None:
    source = GitSource("app", url, branch="no-such-branch", timeout=10)
    with pytest.raises(GitError, match=r"git source app \(.*\): branch 'no-such-branch' not found on the remote"):
        fetch(source, cache)
    with pytest.raises(GitError, match=r"branch 'no-such-branch' not found on the remote"):
        ls_remote_head(source)


def test_an_unreachable_remote_is_a_git_error(cache: Path) -> None:
    (port,) = free_ports(1)
    source = GitSource("app", f"git://127.0.0.1:{port}/app.git", timeout=10)
    with pytest.raises(GitError, match=rf"git source app \(git://127.0.0.1:{port}/app.git\): fetch of refs/heads/main"):
        fetch(source, cache)


def test_a_silent_remote_is_cut_off_at_the_timeout(cache: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as silent:
        # Listening without ever answering: the kernel completes the handshake, git waits for a reply.
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        source = GitSource("app", f"git://127.0.0.1:{port}/app.git", timeout=1.0)
        started = time.monotonic()
        with pytest.raises(GitError, match=r"git source app .*: fetch of refs/heads/main timed out after 1s"):
            fetch(source, cache)
        assert time.monotonic() - started < 4
        with pytest.raises(GitError, match=r"ls-remote of refs/heads/main timed out after 1s"):
            ls_remote_head(source)


def test_a_push_through_git_daemon_lands_on_the_branch_and_a_stale_push_is_refused(
    upstream: Upstream, daemon: int, cache: Path
) -> None:
    source = GitSource("app", f"git://127.0.0.1:{daemon}/app.git", timeout=10)
    checkout = fetch(source, cache)
    assert push(checkout, "nothing to do", "Canary <canary@example.com>") == checkout.commit

    (checkout.path / "k8s/app/deployment.yaml").write_text("image: podinfo:5.9.0\n")
    pushed = push(checkout, "Revert podinfo to 5.9.0: canary test/podinfo failed", "Canary <canary@example.com>")

    assert upstream.head() == pushed != checkout.commit
    assert git("log", "-1", "--format=%an <%ae>|%s", pushed, cwd=upstream.bare) == (
        "Canary <canary@example.com>|Revert podinfo to 5.9.0: canary test/podinfo failed"
    )
    assert git("show", f"{pushed}:k8s/app/deployment.yaml", cwd=upstream.bare) == "image: podinfo:5.9.0"
    assert fetch(source, cache).commit == pushed

    upstream.commit({"k8s/app/service.yaml": "kind: Service # moved on\n"}, "someone else was faster")
    (checkout.path / "k8s/app/deployment.yaml").write_text("image: podinfo:5.8.0\n")
    refused = r"git source app .*: push of [0-9a-f]{40} to branch 'main' was refused: .*rejected"
    with pytest.raises(GitError, match=refused):
        push(checkout, "stale", "Canary <canary@example.com>")


def test_credentials_stay_off_every_command_line(upstream: Upstream, cache: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[list[str], dict[str, str]]] = []
    real_popen = subprocess.Popen

    def recording_popen(argv: list[str], **kwargs: object) -> subprocess.Popen[bytes]:
        env = kwargs.get("env")
        assert isinstance(env, dict)
        seen.append((list(argv), dict(env)))
        return real_popen(argv, **kwargs)  # type: ignore[call-overload, no-any-return]

    monkeypatch.setattr(subprocess, "Popen", recording_popen)
    credentials = GitCredentials(https_token=TEST_CREDENTIAL, ssh_private_key="-----BEGIN KEY-----\nsecret-key\n",
                                 known_hosts="h ssh-ed25519 AAAA")
    source = GitSource("app", upstream.bare.as_uri(), credentials=credentials, timeout=10)

    fetch(source, cache)
    ls_remote_head(source)

    assert seen
    for argv, env in seen:
        assert not any(TEST_CREDENTIAL in part or "secret-key" in part for part in argv)
        assert not any(TEST_CREDENTIAL in value or "secret-key" in value for value in env.values())
        assert env["GIT_TERMINAL_PROMPT"] == "0"
        assert not Path(env["GIT_ASKPASS"]).exists(), "the private credential folder outlives the operation"


@pytest.mark.skipif(not have_ssh_signing(), reason="ssh-keygen cannot sign (OpenSSH 8.2 or later is needed)")
def test_ssh_signed_commits_are_verified_and_an_unsigned_one_keeps_the_last_verified_checkout(
    upstream: Upstream, url: str, cache: Path, tmp_path: Path
) -> None:
    trusted, trusted_public = ssh_key(tmp_path, "trusted")
    stranger, _ = ssh_key(tmp_path, "stranger")
    source = GitSource("app", url, timeout=10,
                       verify=SignatureCheck(kind="ssh", keys=f"dev@example.com {trusted_public}\n"))

    signed = upstream.commit({"k8s/app/deployment.yaml": "image: podinfo:6.1.0\n"}, "signed", *signed_by(trusted))
    checkout = fetch(source, cache)
    assert checkout.commit == signed

    unsigned = upstream.commit({"k8s/app/deployment.yaml": "image: evil:1\n"}, "unsigned")
    with pytest.raises(UnverifiedCommit, match=rf"commit {unsigned} of refs/heads/main failed ssh signature "
                                               rf"verification: it is not signed; the checkout stays at {signed}"):
        fetch(source, cache)
    assert git("rev-parse", "HEAD", cwd=checkout.path) == signed
    assert (checkout.path / "k8s/app/deployment.yaml").read_text() == "image: podinfo:6.1.0\n"

    foreign = upstream.commit({"k8s/app/deployment.yaml": "image: evil:2\n"}, "foreign", *signed_by(stranger))
    with pytest.raises(UnverifiedCommit, match=rf"commit {foreign} .* failed ssh signature verification") as caught:
        fetch(source, cache)
    assert caught.value.commit == foreign
    assert caught.value.reason != "it is not signed"
    assert git("rev-parse", "HEAD", cwd=checkout.path) == signed

    resigned = upstream.commit({"k8s/app/deployment.yaml": "image: podinfo:6.2.0\n"}, "good", *signed_by(trusted))
    assert fetch(source, cache).commit == resigned
    assert fetch(replace(source, verify=None), cache).commit == resigned


@pytest.fixture
def gnupg_home(tmp_path: Path) -> Iterator[Path]:
    """A throwaway keyring with one unprotected signing key; its gpg-agent is stopped after the test."""
    if shutil.which("gpg") is None or shutil.which("gpgconf") is None:
        pytest.skip("gpg is not installed")
    home = tmp_path / "gpg"
    home.mkdir(mode=0o700)
    env = dict(os.environ, GNUPGHOME=str(home))
    batch = ("%no-protection\nKey-Type: eddsa\nKey-Curve: ed25519\nName-Real: Dev\n"
             "Name-Email: dev@example.com\nExpire-Date: 0\n%commit\n")
    try:
        subprocess.run(["gpg", "--batch", "--quiet", "--gen-key"], input=batch, env=env, check=True,
                       capture_output=True, text=True, timeout=30)
        yield home
    finally:
        subprocess.run(["gpgconf", "--kill", "all"], env=env, check=False, capture_output=True, timeout=30)


def test_gpg_signed_commits_are_verified_and_an_unsigned_one_is_refused(
    upstream: Upstream, daemon: int, cache: Path, gnupg_home: Path
) -> None:
    env = {"GNUPGHOME": str(gnupg_home)}
    public = subprocess.run(["gpg", "--armor", "--export", "dev@example.com"], env=dict(os.environ, **env),
                            check=True, capture_output=True, text=True, timeout=30).stdout
    source = GitSource("app", f"git://127.0.0.1:{daemon}/app.git", timeout=10,
                       verify=SignatureCheck(kind="gpg", keys=public))
    sign = ("-c", "user.signingkey=dev@example.com", "-c", "commit.gpgsign=true")

    signed = upstream.commit({"k8s/app/deployment.yaml": "image: podinfo:6.1.0\n"}, "signed", *sign, env=env)
    assert fetch(source, cache).commit == signed

    unsigned = upstream.commit({"k8s/app/deployment.yaml": "image: evil:1\n"}, "unsigned")
    with pytest.raises(UnverifiedCommit, match=rf"commit {unsigned} .* failed gpg signature verification: "
                                               rf"it is not signed; the checkout stays at {signed}"):
        fetch(source, cache)

    broken = replace(source, verify=SignatureCheck(kind="gpg", keys="-----BEGIN PGP PUBLIC KEY BLOCK-----\nnope\n"))
    with pytest.raises(InvalidGitSource, match=r"git source app .*: verify.keys holds no OpenPGP public key"):
        fetch(broken, cache)
