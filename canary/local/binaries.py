"""Locate, and build when missing, the pinned upstream binaries of the local stack.

The versions are pinned in the Go modules under tools/controlplane/ (one module each for
Kubernetes, etcd and kwok, whose dependencies clash). Binaries land in a cache folder named
after those pins and a hash of the modules, so a changed pin builds afresh and an unchanged one
costs nothing. ``CANARY_CONTROLPLANE_BIN`` points at a folder of ready binaries instead.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from canary.errors import LocalStackError
from canary.locks import exclusive

REPO_ROOT = Path(__file__).resolve().parents[2]
MODULES_DIR = REPO_ROOT / "tools" / "controlplane"


@dataclass(frozen=True)
class Binary:
    """One upstream program: the module folder that pins it and its Go package."""

    name: str
    module: str
    package: str
    version_flags: bool = False


BINARIES = (
    Binary("etcd", "etcd", "go.etcd.io/etcd/server/v3"),
    Binary("kube-apiserver", "kubernetes", "k8s.io/kubernetes/cmd/kube-apiserver", version_flags=True),
    Binary("kube-controller-manager", "kubernetes", "k8s.io/kubernetes/cmd/kube-controller-manager",
           version_flags=True),
    Binary("kube-scheduler", "kubernetes", "k8s.io/kubernetes/cmd/kube-scheduler", version_flags=True),
    Binary("kwok", "kwok", "sigs.k8s.io/kwok/cmd/kwok"),
)

_PINS = {"kubernetes": "k8s.io/kubernetes", "etcd": "go.etcd.io/etcd/server/v3", "kwok": "sigs.k8s.io/kwok"}


def pinned_version(module: str, go_mod_text: str) -> str:
    """The version that a go.mod requires of ``module``, e.g. ``v1.34.4``."""
    match = re.search(rf"^\s*(?:require\s+)?{re.escape(module)}\s+(v\S+)", go_mod_text, re.MULTILINE)
    if match is None:
        raise LocalStackError(f"tools/controlplane: no pinned version of {module} in go.mod")
    return match.group(1)


def pins(modules_dir: Path = MODULES_DIR) -> dict[str, str]:
    """The pinned version of each upstream component, read from the wrapper modules."""
    return {
        folder: pinned_version(module, (modules_dir / folder / "go.mod").read_text())
        for folder, module in _PINS.items()
    }


def version_ldflags(kubernetes_version: str) -> list[str]:
    """Linker flags that make Kubernetes binaries report their real version, not v0.0.0."""
    major, minor = kubernetes_version.lstrip("v").split(".")[:2]
    pkg = "k8s.io/component-base/version"
    return [f"-X {pkg}.gitVersion={kubernetes_version}", f"-X {pkg}.gitMajor={major}",
            f"-X {pkg}.gitMinor={minor}", f"-X {pkg}.gitTreeState=clean"]


def cache_key(modules_dir: Path = MODULES_DIR) -> str:
    """A folder name that changes whenever a pin or a module's go.sum changes."""
    digest = hashlib.sha256()
    for folder in sorted(_PINS):
        for name in ("go.mod", "go.sum"):
            digest.update((modules_dir / folder / name).read_bytes())
    versions = pins(modules_dir)
    return (f"k8s-{versions['kubernetes']}_etcd-{versions['etcd']}_kwok-{versions['kwok']}"
            f"_{digest.hexdigest()[:10]}")


def cache_root() -> Path:
    """Where built binaries and local stacks keep their files (``CANARY_CACHE_DIR``)."""
    return Path(os.environ.get("CANARY_CACHE_DIR", REPO_ROOT / ".cache"))


def bin_dir() -> Path:
    """The folder that holds (or will hold) the binaries for the current pins."""
    override = os.environ.get("CANARY_CONTROLPLANE_BIN")
    if override:
        return Path(override)
    return cache_root() / "controlplane" / cache_key() / "bin"


def missing(directory: Path) -> list[str]:
    """Names of the binaries not yet present in ``directory``."""
    return [b.name for b in BINARIES if not (directory / b.name).is_file()]


def ensure_built(*, verbose: bool = True) -> Path:
    """Return the binaries folder, building whatever is missing first.

    Safe to call from several processes at once: one builds, the others wait on a file lock.
    """
    directory = bin_dir()
    if not missing(directory):
        return directory
    if os.environ.get("CANARY_CONTROLPLANE_BIN"):
        raise LocalStackError(f"CANARY_CONTROLPLANE_BIN={directory} lacks {', '.join(missing(directory))}")
    with exclusive(directory.parent / ".build.lock"):
        versions = pins()
        for binary in BINARIES:
            target = directory / binary.name
            if target.is_file():
                continue
            go_build(binary, target, kubernetes_version=versions["kubernetes"], verbose=verbose)
    return directory


def go_build(binary: Binary, target: Path, *, verbose: bool, kubernetes_version: str = "",
             modules_dir: Path = MODULES_DIR, ldflags: Sequence[str] = (),
             env: Mapping[str, str] | None = None) -> None:
    """Build ``binary`` from its wrapper module (a folder of ``modules_dir``) into ``target``, atomically, with
    ``ldflags`` after the usual ones and ``env`` over ours (``CGO_ENABLED``, ``GOOS``, ``GOARCH``)."""
    flags = ["-s", "-w"]
    if binary.version_flags:
        flags += version_ldflags(kubernetes_version)
    flags += ldflags
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".partial")
    argv = ["go", "build", "-trimpath", "-ldflags", " ".join(flags), "-o", str(partial), binary.package]
    if verbose:
        platform = f" for {env['GOOS']}/{env['GOARCH']}" if env and "GOOS" in env and "GOARCH" in env else ""
        print(f"building {binary.name} ({binary.package}){platform}", file=sys.stderr, flush=True)
    try:
        result = subprocess.run(argv, cwd=modules_dir / binary.module, capture_output=True, text=True,
                                check=False, env={**os.environ, **env} if env else None)
    except FileNotFoundError as exc:
        raise LocalStackError("the Go toolchain (`go`) is not on PATH; install Go 1.24 or newer") from exc
    if result.returncode != 0:
        raise LocalStackError(f"building {binary.name} failed:\n{result.stderr[-4000:]}")
    partial.rename(target)


def ensure_static(binary: Binary, target: Path, *, modules_dir: Path, ldflags: Sequence[str] = (),
                  platform: str | None = None, verbose: bool = True) -> Path:
    """``target``, building ``binary`` there first when missing: static (``CGO_ENABLED=0``, as helm's and
    kustomize's own releases are built, so it runs on any Linux), for ``platform`` (``linux/arm64``) or
    this machine (None). One process builds, the others wait."""
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with exclusive(target.parent / ".build.lock"):
        if not target.is_file():
            env = {"CGO_ENABLED": "0"}
            if platform is not None:
                env["GOOS"], _, env["GOARCH"] = platform.partition("/")
            go_build(binary, target, verbose=verbose, modules_dir=modules_dir, ldflags=ldflags, env=env)
    return target


def go_env(*names: str) -> list[str]:
    """``go env NAME...``: the values the Go toolchain would build with (GOARCH, GOHOSTOS...), one each."""
    try:
        done = subprocess.run(["go", "env", *names], capture_output=True, text=True, check=False)
    except FileNotFoundError as exc:
        raise LocalStackError("the Go toolchain (`go`) is not on PATH; install Go 1.24 or newer") from exc
    if done.returncode != 0:
        raise LocalStackError(f"`go env` failed: {done.stderr.strip()}")
    return done.stdout.splitlines()
