"""Fetch one Git source into a local cache folder with the git CLI, optionally verifying signatures.

The sync loop and ``canary sync`` call :func:`fetch` to get a checked-out commit and
:func:`ls_remote_head` to poll cheaply; the ``revert`` rollback policy calls :func:`push`.

Every git call is an argument list (never a shell string) run in its own process group with a
hard timeout, so a hung remote cannot hang the controller. Secrets never reach a command line:
an HTTPS token is served by a ``GIT_ASKPASS`` script that reads it from a private file, and an
SSH key lives in a private file named by ``GIT_SSH_COMMAND``. Both files sit in a private
temporary folder (mode 0700) that exists only for the duration of one operation.

A fetch lands in the object store first (``refs/gitsync/fetched``); the working tree moves only
after the commit passed verification, so an unverified commit leaves the previous checkout in
place.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import os
import re
import shlex
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Literal, get_args

from canary.defaults import GIT_BRANCH
from canary.errors import PermanentError, TemporaryError
from canary.gitsync.helm import HelmChart
from canary.locks import exclusive

FETCHED_REF = "refs/gitsync/fetched"
# The username sent with an HTTPS token when the URL names none: GitHub App tokens need exactly
# this one, and personal access tokens on the common forges accept any username.
HTTPS_USERNAME = "x-access-token"

_FULL_SHA = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")
# A conservative subset of `git check-ref-format`: refuses what would be ambiguous or unsafe
# as an argument, without a subprocess in the constructor.
_REF_NAME = re.compile(r"[A-Za-z0-9._/+-]+")
_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)[^/@\s]*@")
_AUTHOR = re.compile(r"(?P<name>[^<>]+?)\s*<(?P<email>[^<>\s]+)>")
_STDERR_LINES = 3
RollbackPolicy = Literal["none", "pin", "revert"]
ROLLBACK_POLICIES: tuple[str, ...] = get_args(RollbackPolicy)
# After a kill, the pipes close when the last process of the group is gone; this bounds the wait
# in case a descendant escaped into a session of its own.
_REAP_SECONDS = 5.0


class GitError(TemporaryError):
    """A git operation failed (remote unreachable, unknown ref, timeout, refused push)."""


class InvalidGitSource(PermanentError):
    """A Git source is configured wrongly; the message names the source and the field."""


class UnverifiedCommit(PermanentError):
    """The fetched commit failed signature verification and was not checked out."""

    def __init__(self, message: str, *, commit: str, reason: str) -> None:
        super().__init__(message)
        self.commit = commit
        self.reason = reason


@dataclass(frozen=True)
class GitCredentials:
    """Read (and, for ``revert``, write) access to a remote. Secrets are kept out of ``repr``."""

    https_token: str | None = field(default=None, repr=False)
    ssh_private_key: str | None = field(default=None, repr=False)
    known_hosts: str | None = None


@dataclass(frozen=True)
class SignatureCheck:
    """Which commit signatures to trust.

    ``kind="ssh"``: ``keys`` is the content of an OpenSSH allowed_signers file.
    ``kind="gpg"``: ``keys`` is one or more ASCII-armored OpenPGP public keys.
    """

    kind: Literal["gpg", "ssh"]
    keys: str


@dataclass(frozen=True)
class GitSource:
    """One repository and ref to sync. ``commit`` pins, else ``tag``, else ``branch``."""

    name: str
    url: str
    branch: str | None = GIT_BRANCH
    tag: str | None = None
    commit: str | None = None
    paths: tuple[str, ...] = (".",)
    timeout: float = 60.0
    credentials: GitCredentials | None = None
    verify: SignatureCheck | None = None
    # What the sync does after the engine rolls back a release from this source: none, pin or
    # revert (see canary.gitsync.rollbacks); ``readonly`` never pushes.
    rollback: RollbackPolicy = "pin"
    readonly: bool = False
    # How the Helm charts under the paths are rendered (release, namespace, values), by chart folder.
    charts: tuple[HelmChart, ...] = ()

    def __post_init__(self) -> None:
        _validate(self)

    @property
    def ref(self) -> str:
        """What is fetched: ``refs/heads/<branch>``, ``refs/tags/<tag>`` or the pinned commit."""
        if self.commit is not None:
            return self.commit
        if self.tag is not None:
            return f"refs/tags/{self.tag}"
        return f"refs/heads/{self.branch}"

    def describe(self) -> str:
        """The name and URL (without userinfo) for messages."""
        return f"git source {self.name} ({scrub_url(self.url)})"


@dataclass(frozen=True)
class Checkout:
    """A commit checked out in the source's cache folder."""

    path: Path
    commit: str
    ref: str
    message: str
    author: str
    time: datetime
    source: GitSource = field(repr=False)


def _validate(source: GitSource) -> None:
    problem = next(itertools.chain(_url_problems(source), _ref_problems(source), _other_problems(source)), None)
    if problem is not None:
        raise InvalidGitSource(f"git source {source.name or '(unnamed)'}: {problem}")


def _url_problems(source: GitSource) -> Iterator[str]:
    if not source.name:
        yield "name must not be empty"
    if not source.url:
        yield "url must not be empty"
    if source.url.startswith("-"):
        yield f"url must not start with '-', got {scrub_url(source.url)!r}"
    if re.search(r"://[^/@\s]*:[^/@\s]*@", source.url):
        yield "url must not contain a password; put the token in credentials.https_token"


def _ref_problems(source: GitSource) -> Iterator[str]:
    if source.commit is None and source.tag is None and source.branch is None:
        yield "one of branch, tag or commit is required"
    if source.commit is not None and not _FULL_SHA.fullmatch(source.commit):
        yield f"commit must be a full hexadecimal commit id (40 or 64 digits), got {source.commit!r}"
    for field_name, value in (("branch", source.branch), ("tag", source.tag)):
        if value is not None and not _is_ref_name(value):
            yield f"{field_name} {value!r} is not a valid Git ref name"


def _other_problems(source: GitSource) -> Iterator[str]:
    if not source.paths:
        yield "paths must list at least one folder (use '.' for the whole repository)"
    for index, path in enumerate(source.paths):
        pure = PurePosixPath(path)
        if not path or pure.is_absolute() or ".." in pure.parts:
            yield f"paths[{index}] {path!r} must be a relative path inside the repository"
    if not source.timeout > 0:
        yield f"timeout must be positive, got {source.timeout}"
    if source.rollback not in ROLLBACK_POLICIES:
        yield f"gitRollback must be one of {', '.join(ROLLBACK_POLICIES)}, got {source.rollback!r}"
    credentials = source.credentials
    if credentials is not None and credentials.ssh_private_key is not None and not credentials.known_hosts:
        yield "credentials.known_hosts is required with credentials.ssh_private_key (host keys are checked strictly)"
    if source.verify is not None:
        if source.verify.kind not in ("gpg", "ssh"):
            yield f"verify.kind must be 'gpg' or 'ssh', got {source.verify.kind!r}"
        if not source.verify.keys.strip():
            yield "verify.keys must not be empty"


def _is_ref_name(name: str) -> bool:
    return (
        _REF_NAME.fullmatch(name) is not None
        and not name.startswith(("-", "/", "."))
        and not name.endswith(("/", ".", ".lock"))
        and ".." not in name
        and "//" not in name
        and "/." not in name
    )


def scrub_url(text: str) -> str:
    """``text`` with the userinfo (``user:password@``) of every URL in it removed."""
    return _USERINFO.sub(r"\g<scheme>", text)


def cache_path(source: GitSource, cache_root: Path) -> Path:
    """The cache folder of ``source``: one per URL and ref, shared by sources that agree on both."""
    digest = hashlib.sha256(f"{source.url}\n{source.ref}".encode()).hexdigest()[:16]
    return cache_root / "gitsync" / digest


def write_credentials(credentials: GitCredentials | None, directory: Path) -> dict[str, str]:
    """Write the credential files into the private ``directory``; return the environment naming them.

    The values of the returned environment hold file paths only, never a secret.
    """
    env: dict[str, str] = {}
    if credentials is None:
        credentials = GitCredentials()
    if credentials.https_token is not None:
        token_file = _write_private(directory / "token", credentials.https_token, mode=0o600)
        askpass = _write_private(directory / "askpass", _askpass_script(token_file), mode=0o700)
        env["GIT_ASKPASS"] = str(askpass)
    # Without a key of its own, ssh keeps the user's configuration and agent (``canary sync`` on a
    # laptop); BatchMode makes it fail instead of prompting either way.
    ssh = ["ssh", "-o", "BatchMode=yes"]
    if credentials.ssh_private_key is not None:
        key = credentials.ssh_private_key
        # OpenSSH refuses a private key whose last line is not terminated.
        key_file = _write_private(directory / "ssh_key", key if key.endswith("\n") else key + "\n", mode=0o600)
        known_hosts = _write_private(directory / "known_hosts", credentials.known_hosts or "", mode=0o600)
        ssh += [
            "-F", os.devnull, "-i", str(key_file), "-o", "IdentitiesOnly=yes",
            "-o", f"UserKnownHostsFile={known_hosts}", "-o", f"GlobalKnownHostsFile={os.devnull}",
            "-o", "StrictHostKeyChecking=yes",
        ]
    # git hands GIT_SSH_COMMAND to a shell, hence the quoting.
    env["GIT_SSH_COMMAND"] = shlex.join(ssh)
    return env


def _askpass_script(token_file: Path) -> str:
    token = shlex.quote(str(token_file))
    return (
        "#!/bin/sh\n"
        "# git asks for the username first unless the URL carries one, then for the password.\n"
        'case "$1" in\n'
        f"  Username*) echo {HTTPS_USERNAME} ;;\n"
        f"  *) cat {token} ;;\n"
        "esac\n"
    )


def _write_private(path: Path, content: str, *, mode: int) -> Path:
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(content)
    os.chmod(path, mode)  # the umask may have narrowed the mode given to open()
    return path


def git_env(
    credential_env: Mapping[str, str],
    *,
    config: Sequence[tuple[str, str]] = (),
    base: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The environment of a git process: ``base`` without git's own variables, plus ours.

    Settings go through ``GIT_CONFIG_COUNT``/``GIT_CONFIG_KEY_n``/``GIT_CONFIG_VALUE_n`` rather
    than ``-c``, so that nothing about them shows up in ``ps``. User and system git configuration
    is ignored, so that the sync behaves the same on a laptop and in a Pod.
    """
    inherited = os.environ if base is None else base
    env = {key: value for key, value in inherited.items() if not key.startswith("GIT_")}
    env.update(
        GIT_TERMINAL_PROMPT="0",
        GIT_CONFIG_NOSYSTEM="1",
        GIT_CONFIG_GLOBAL=os.devnull,
        # English messages, which _describe_failure recognises.
        LC_ALL="C",
    )
    env.update(credential_env)
    env["GIT_CONFIG_COUNT"] = str(len(config))
    for index, (key, value) in enumerate(config):
        env[f"GIT_CONFIG_KEY_{index}"] = key
        env[f"GIT_CONFIG_VALUE_{index}"] = value
    return env


@dataclass(frozen=True)
class _Result:
    returncode: int
    stdout: str
    stderr: str


@dataclass(frozen=True)
class _Runner:
    """Runs commands for one source with its environment, timeout and error wording."""

    source: GitSource
    credential_env: Mapping[str, str]

    def git(
        self,
        *args: str,
        cwd: Path,
        what: str,
        config: Sequence[tuple[str, str]] = (),
        extra_env: Mapping[str, str] | None = None,
        check: bool = True,
    ) -> _Result:
        env = git_env(self.credential_env, config=config)
        env.update(extra_env or {})
        return self.run(["git", *args], cwd=cwd, env=env, what=what, check=check)

    def run(
        self,
        argv: Sequence[str],
        *,
        cwd: Path,
        env: Mapping[str, str],
        what: str,
        stdin: str | None = None,
        check: bool = True,
    ) -> _Result:
        timeout = self.source.timeout
        try:
            process = subprocess.Popen(
                list(argv), cwd=cwd, env=dict(env), start_new_session=True,
                stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            )
        except FileNotFoundError as exc:
            raise GitError(f"{self.source.describe()}: {what} failed: {argv[0]} is not installed") from exc
        try:
            stdout, stderr = process.communicate(stdin.encode() if stdin is not None else None, timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_group(process)
            raise GitError(f"{self.source.describe()}: {what} timed out after {timeout:g}s") from None
        result = _Result(process.returncode, stdout.decode(errors="replace"), stderr.decode(errors="replace"))
        if check and result.returncode != 0:
            raise GitError(f"{self.source.describe()}: {what} failed: {self.failure_detail(result)}")
        return result

    def failure_detail(self, result: _Result) -> str:
        """The last lines git wrote, without userinfo or secrets."""
        # git's "hint:" lines advise a person at a terminal and would crowd out the error itself.
        lines = [line.strip() for line in (result.stderr or result.stdout).splitlines()
                 if line.strip() and not line.startswith("hint:")]
        text = "; ".join(lines[-_STDERR_LINES:]) or f"exit status {result.returncode}"
        text = scrub_url(text)
        credentials = self.source.credentials
        for secret in (credentials.https_token, credentials.ssh_private_key) if credentials else ():
            if secret:
                text = text.replace(secret, "***")
        return text


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    try:
        process.communicate(timeout=_REAP_SECONDS)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextlib.contextmanager
def _session(source: GitSource) -> Iterator[_Runner]:
    """A runner whose credential files live in a private folder for the duration of the block."""
    # mkdtemp makes the folder 0700, readable by this user only.
    with tempfile.TemporaryDirectory(prefix="canary-git-") as private:
        yield _Runner(source, write_credentials(source.credentials, Path(private)))


def fetch(source: GitSource, cache_root: Path) -> Checkout:
    """Shallow-fetch ``source``'s ref into its cache folder, verify it, and check it out.

    Idempotent: when nothing changed, it contacts the remote, finds nothing new and leaves the
    tree as it was (local changes to the tree are discarded either way).
    """
    folder = cache_path(source, cache_root)
    repo = folder / "repo"
    with exclusive(folder / "lock"), _session(source) as runner:
        if not (repo / ".git" / "HEAD").is_file():
            shutil.rmtree(repo, ignore_errors=True)
            runner.git("init", "--quiet", str(repo), cwd=folder, what="git init of the cache folder")
        destination = f"+{source.ref}:{FETCHED_REF}"
        result = runner.git(
            "fetch", "--quiet", "--depth", "1", "--no-tags", "--no-recurse-submodules", source.url, destination,
            cwd=repo, what=f"fetch of {source.ref}", check=False,
        )
        if result.returncode != 0:
            raise GitError(f"{source.describe()}: {_describe_failure(source, runner.failure_detail(result))}")
        commit = runner.git("rev-parse", "--verify", f"{FETCHED_REF}^{{commit}}", cwd=repo,
                            what="reading the fetched commit").stdout.strip()
        if source.verify is not None:
            _verify(runner, source.verify, folder=folder, repo=repo, commit=commit)
        runner.git("checkout", "--quiet", "--force", "--detach", commit, cwd=repo, what=f"checkout of {commit}")
        runner.git("clean", "-ffdxq", cwd=repo, what="removing untracked files")
        return _describe_commit(runner, repo=repo, commit=commit)


def _describe_failure(source: GitSource, detail: str) -> str:
    if "couldn't find remote ref" in detail:
        kind = "commit" if source.commit else "tag" if source.tag else "branch"
        wanted = source.commit or source.tag or source.branch
        return f"{kind} {wanted!r} not found on the remote ({detail})"
    return f"fetch of {source.ref} failed: {detail}"


def _describe_commit(runner: _Runner, *, repo: Path, commit: str) -> Checkout:
    fields = runner.git("show", "--no-patch", "--format=%H%x00%an <%ae>%x00%cI%x00%B", commit,
                        cwd=repo, what=f"reading commit {commit}").stdout
    sha, author, when, message = fields.split("\0", 3)
    return Checkout(
        path=repo, commit=sha, ref=runner.source.ref, message=message.strip(), author=author,
        time=datetime.fromisoformat(when), source=runner.source,
    )


def _verify(runner: _Runner, check: SignatureCheck, *, folder: Path, repo: Path, commit: str) -> None:
    extra_env: dict[str, str] = {}
    if check.kind == "ssh":
        signers = folder / "allowed_signers"
        signers.write_text(check.keys if check.keys.endswith("\n") else check.keys + "\n")
        config = [("gpg.format", "ssh"), ("gpg.ssh.allowedSignersFile", str(signers))]
    else:
        extra_env["GNUPGHOME"] = str(_gnupg_home(runner, check.keys, folder=folder))
        config = [("gpg.format", "openpgp")]
    result = runner.git("verify-commit", commit, cwd=repo, what=f"verification of {commit}",
                        config=config, extra_env=extra_env, check=False)
    if result.returncode == 0:
        return
    reason = runner.failure_detail(result) if (result.stderr or result.stdout).strip() else "it is not signed"
    head = runner.git("rev-parse", "--verify", "--quiet", "HEAD", cwd=repo, what="reading HEAD", check=False)
    staying = f"the checkout stays at {head.stdout.strip()}" if head.returncode == 0 else "nothing is checked out"
    raise UnverifiedCommit(
        f"{runner.source.describe()}: commit {commit} of {runner.source.ref} failed {check.kind} signature "
        f"verification: {reason}; {staying}",
        commit=commit, reason=reason,
    )


def _gnupg_home(runner: _Runner, keys: str, *, folder: Path) -> Path:
    """A keyring holding exactly ``keys``, rebuilt when they change."""
    home = folder / "gnupg"
    stamp = folder / "gnupg.sha256"
    digest = hashlib.sha256(keys.encode()).hexdigest()
    if home.is_dir() and stamp.is_file() and stamp.read_text() == digest:
        return home
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(mode=0o700)
    # Checking signatures needs no gpg-agent; without this, gpg starts one per keyring and leaves
    # it running (or fails to, when the socket path is longer than a Unix socket allows).
    (home / "gpg.conf").write_text("no-autostart\n")
    env = dict(os.environ, GNUPGHOME=str(home))
    result = runner.run(["gpg", "--batch", "--quiet", "--status-fd", "1", "--import"], cwd=folder, env=env,
                        stdin=keys, what="importing verify.keys into a keyring", check=False)
    # gpg exits non-zero after a good import when it finds no agent to ask about secret keys, so
    # success is read from its status lines instead.
    if "[GNUPG:] IMPORT_OK" not in result.stdout:
        raise InvalidGitSource(f"{runner.source.describe()}: verify.keys holds no OpenPGP public key that gpg "
                               f"could import: {runner.failure_detail(result)}")
    stamp.write_text(digest)
    return home


def ls_remote_head(source: GitSource) -> str:
    """The commit the remote has for ``source``'s ref, without fetching (a pinned commit is itself)."""
    if source.commit is not None:
        return source.commit
    # An annotated tag is listed twice: the tag object, and the commit it points to with ^{}.
    wanted = [source.ref, f"{source.ref}^{{}}"]
    with _session(source) as runner, tempfile.TemporaryDirectory(prefix="canary-ls-remote-") as cwd:
        output = runner.git("ls-remote", "--quiet", source.url, *wanted, cwd=Path(cwd),
                            what=f"ls-remote of {source.ref}").stdout
    found: dict[str, str] = {}
    for line in output.splitlines():
        sha, _, ref = line.partition("\t")
        found[ref] = sha
    for ref in reversed(wanted):
        if ref in found:
            return found[ref]
    kind = "tag" if source.tag is not None else "branch"
    raise GitError(f"{source.describe()}: {kind} {source.tag or source.branch!r} not found on the remote")


def push(checkout: Checkout, message: str, author: str) -> str:
    """Commit every change in ``checkout``'s tree and push it to the source's branch; return the commit.

    ``author`` is ``"Name <email>"``. With nothing to commit, nothing is pushed and the checked-out
    commit is returned. A refused push (the branch moved, no write access) raises GitError and
    leaves the local commit behind; the next :func:`fetch` discards it.
    """
    source = checkout.source
    if source.readonly:
        raise InvalidGitSource(f"{source.describe()}: the source is read-only (--git-readonly); nothing is pushed")
    if source.commit is not None or source.tag is not None or source.branch is None:
        raise InvalidGitSource(f"{source.describe()}: can only push to a branch, but the source follows "
                               f"{source.ref}")
    parsed = _AUTHOR.fullmatch(author.strip())
    if parsed is None:
        raise InvalidGitSource(f"{source.describe()}: commit author must look like 'Name <email>', got {author!r}")
    identity = {
        "GIT_AUTHOR_NAME": parsed["name"], "GIT_AUTHOR_EMAIL": parsed["email"],
        "GIT_COMMITTER_NAME": parsed["name"], "GIT_COMMITTER_EMAIL": parsed["email"],
    }
    repo = checkout.path
    with exclusive(repo.parent / "lock"), _session(source) as runner:
        runner.git("add", "--all", cwd=repo, what="staging changes")
        staged = runner.git("diff", "--cached", "--quiet", cwd=repo, what="looking for changes", check=False)
        if staged.returncode == 0:
            return runner.git("rev-parse", "HEAD", cwd=repo, what="reading HEAD").stdout.strip()
        runner.git("commit", "--quiet", "--no-verify", "--no-gpg-sign", "--message", message,
                   cwd=repo, what="committing changes", extra_env=identity)
        commit = runner.git("rev-parse", "HEAD", cwd=repo, what="reading the new commit").stdout.strip()
        result = runner.git("push", "--quiet", source.url, f"HEAD:refs/heads/{source.branch}",
                            cwd=repo, what=f"push to branch {source.branch}", check=False)
        if result.returncode != 0:
            raise GitError(f"{source.describe()}: push of {commit} to branch {source.branch!r} was refused: "
                           f"{runner.failure_detail(result)}")
        return commit
