"""Real Git repositories for the sync tests: a bare repository, a working clone that pushes to it,
and a git daemon serving it on loopback."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from canary.local import procs, stack
from canary.local.ports import free_ports, is_listening
from canary.waiting import wait_until


def _env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("GIT_")}
    env.update(
        GIT_CONFIG_GLOBAL=os.devnull, GIT_CONFIG_NOSYSTEM="1", LC_ALL="C",
        GIT_AUTHOR_NAME="Dev", GIT_AUTHOR_EMAIL="dev@example.com",
        GIT_COMMITTER_NAME="Dev", GIT_COMMITTER_EMAIL="dev@example.com",
    )
    env.update(extra or {})
    return env


def git(*args: str, cwd: Path, env: Mapping[str, str] | None = None) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, env=_env(env), check=True, capture_output=True, text=True,
                          timeout=30)
    return done.stdout.strip()


SEED = {"k8s/app/deployment.yaml": "image: podinfo:6.0.0\n", "k8s/app/service.yaml": "kind: Service\n"}


@dataclass
class Upstream:
    """A bare repository and a working clone that commits and pushes to it."""

    bare: Path
    work: Path

    def commit(self, files: Mapping[str, str | None], message: str, *flags: str,
               env: Mapping[str, str] | None = None) -> str:
        git("pull", "--quiet", "--ff-only", cwd=self.work)
        for name, content in files.items():
            path = self.work / name
            if content is None:
                path.unlink()
            else:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(content)
        git("add", "--all", cwd=self.work)
        git(*flags, "commit", "--quiet", "--message", message, cwd=self.work, env=env)
        git("push", "--quiet", "origin", "HEAD:refs/heads/main", cwd=self.work)
        return git("rev-parse", "HEAD", cwd=self.work)

    def head(self, ref: str = "refs/heads/main") -> str:
        return git("rev-parse", ref, cwd=self.bare)


@pytest.fixture
def upstream(tmp_path: Path) -> Upstream:
    bare = tmp_path / "served" / "app.git"
    git("init", "--quiet", "--bare", "--initial-branch=main", str(bare), cwd=tmp_path)
    work = tmp_path / "work"
    git("clone", "--quiet", str(bare), str(work), cwd=tmp_path)
    git("checkout", "--quiet", "-b", "main", cwd=work)
    files = SEED
    for name, content in files.items():
        (work / name).parent.mkdir(parents=True, exist_ok=True)
        (work / name).write_text(content)
    git("add", "--all", cwd=work)
    git("commit", "--quiet", "--message", "seed", cwd=work)
    git("push", "--quiet", "--set-upstream", "origin", "main", cwd=work)
    return Upstream(bare=bare, work=work)


@dataclass
class GitDaemon:
    """A git daemon serving ``served`` on ``port`` (pushes allowed when ``push``); it can be stopped and
    started again on the same port."""

    served: Path
    port: int
    log: Path
    push: bool = True
    record: procs.ProcessRecord | None = None

    def start(self) -> None:
        enable = ["--enable=receive-pack"] if self.push else []
        self.record = procs.spawn(
            "git-daemon",
            ["git", "daemon", "--reuseaddr", f"--base-path={self.served}", "--export-all", "--listen=127.0.0.1",
             f"--port={self.port}", *enable, str(self.served)],
            log=self.log)
        wait_until(lambda: is_listening(self.port), bool, what=f"git daemon on port {self.port}", timeout=10,
                   interval=0.05)

    def stop(self) -> None:
        if self.record is not None:
            procs.stop(self.record)
            self.record = None
        wait_until(lambda: is_listening(self.port), lambda listening: not listening,
                   what=f"port {self.port} to be free", timeout=10, interval=0.05)


@contextmanager
def serving(tmp_path: Path, *, push: bool = True) -> Iterator[int]:
    """A git daemon serving tmp_path/served on a free loopback port, for the duration of the block."""
    (port,) = free_ports(1)
    server = GitDaemon(served=tmp_path / "served", port=port, log=tmp_path / f"git-daemon-{port}.log", push=push)
    server.start()
    try:
        yield port
    finally:
        server.stop()


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[int]:
    """A git daemon serving tmp_path/served (pushes allowed) on a free loopback port."""
    with serving(tmp_path) as port:
        yield port


def sync_status(local_stack: stack.StackState, namespace: str, *extra: str) -> str:
    """What ``canary sync status`` prints for the sync state kept in ``namespace``."""
    done = subprocess.run([sys.executable, "-m", "canary", "sync", "status", "--git-inventory-namespace", namespace,
                           "--kubeconfig", local_stack.kubeconfig, *extra], capture_output=True, text=True,
                          check=False, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def have_ssh_signing() -> bool:
    """ssh-keygen can sign (OpenSSH 8.2 or later)."""
    if shutil.which("ssh-keygen") is None:
        return False
    probe = subprocess.run(["ssh-keygen", "-Y", "sign"], capture_output=True, text=True, check=False)
    return "unknown option" not in probe.stderr and "illegal option" not in probe.stderr


def ssh_key(folder: Path, name: str) -> tuple[Path, str]:
    """A new ed25519 key pair: the private key's path and the public key's line."""
    key = folder / name
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", str(key)], check=True)
    return key, key.with_suffix(".pub").read_text().strip()


def signed_by(key: Path) -> tuple[str, ...]:
    """git flags that SSH-sign a commit with ``key``."""
    return ("-c", "gpg.format=ssh", "-c", f"user.signingkey={key}", "-c", "commit.gpgsign=true")
