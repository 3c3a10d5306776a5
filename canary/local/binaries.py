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
    return pinned_versions(modules_dir, _PINS)


def pinned_versions(modules_dir: Path, modules: Mapping[str, str]) -> dict[str, str]:
    """The version each wrapper module (folder -> Go module it pins) of ``modules_dir`` requires."""
    return {folder: pinned_version(module, (modules_dir / folder / "go.mod").read_text())
            for folder, module in modules.items()}


def modules_digest(modules_dir: Path, folders: Sequence[str]) -> str:
    """A short digest of the wrapper modules' go.mod and go.sum: a changed pin or dependency changes it."""
    digest = hashlib.sha256()
    for folder in sorted(folders):
        for name in ("go.mod", "go.sum"):
            digest.update((modules_dir / folder / name).read_bytes())
    return digest.hexdigest()[:10]


def cached_bin_dir(kind: str, key: str, *, override: str) -> Path:
    """The cache folder of one set of built binaries, or the folder the environment variable ``override``
    names instead."""
    named = os.environ.get(override)
    return Path(named) if named else cache_root() / kind / key / "bin"


def missing_in(directory: Path, binaries: Sequence[Binary]) -> list[str]:
    """Names of ``binaries`` not yet present in ``directory``."""
    return [b.name for b in binaries if not (directory / b.name).is_file()]


def build_missing(directory: Path, binaries: Sequence[Binary], *, modules_dir: Path, override: str,
                  verbose: bool, kubernetes_version: str = "") -> Path:
    """``directory``, after building the ``binaries`` missing there (one process builds, the others wait
    on a file lock); a folder given by the environment variable ``override`` is never built into."""
    absent = missing_in(directory, binaries)
    if not absent:
        return directory
    if os.environ.get(override):
        raise LocalStackError(f"{override}={directory} lacks {', '.join(absent)}")
    with exclusive(directory.parent / ".build.lock"):
        for binary in binaries:
            target = directory / binary.name
            if not target.is_file():
                go_build(binary, target, kubernetes_version=kubernetes_version, verbose=verbose,
                         modules_dir=modules_dir)
    return directory


def version_ldflags(kubernetes_version: str) -> list[str]:
    """Linker flags that make Kubernetes binaries report their real version, not v0.0.0."""
    major, minor = kubernetes_version.lstrip("v").split(".")[:2]
    pkg = "k8s.io/component-base/version"
    return [f"-X {pkg}.gitVersion={kubernetes_version}", f"-X {pkg}.gitMajor={major}",
            f"-X {pkg}.gitMinor={minor}", f"-X {pkg}.gitTreeState=clean"]


def cache_key(modules_dir: Path = MODULES_DIR) -> str:
    """A folder name that changes whenever a pin or a module's go.sum changes."""
    versions = pins(modules_dir)
    return (f"k8s-{versions['kubernetes']}_etcd-{versions['etcd']}_kwok-{versions['kwok']}"
            f"_{modules_digest(modules_dir, list(_PINS))}")


def cache_root() -> Path:
    """Where built binaries and local stacks keep their files (``CANARY_CACHE_DIR``)."""
    return Path(os.environ.get("CANARY_CACHE_DIR", REPO_ROOT / ".cache"))


def bin_dir() -> Path:
    """The folder that holds (or will hold) the binaries for the current pins."""
    return cached_bin_dir("controlplane", cache_key(), override="CANARY_CONTROLPLANE_BIN")


def missing(directory: Path) -> list[str]:
    """Names of the binaries not yet present in ``directory``."""
    return missing_in(directory, BINARIES)


def ensure_built(*, verbose: bool = True) -> Path:
    """Return the binaries folder, building whatever is missing first.

    Safe to call from several processes at once: one builds, the others wait on a file lock.
    """
    return build_missing(bin_dir(), BINARIES, modules_dir=MODULES_DIR, override="CANARY_CONTROLPLANE_BIN",
                         verbose=verbose, kubernetes_version=pins()["kubernetes"])


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
