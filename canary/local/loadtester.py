"""Locate, and build when missing, Flagger's load tester and hey: the tools Flagger's Canaries call.

Most of Flagger's Canaries point their webhooks at flagger-loadtester (its ``/`` command endpoint
and its manual gates) and have it run ``hey``. Both are pinned in Go modules under tools/loadtester
(``flagger``: github.com/fluxcd/flagger's cmd/loadtester with exactly the dependencies Flagger's
go.mod requires; ``hey``: github.com/rakyll/hey), and built as the control plane is
(``canary.local.binaries``), into a cache folder named after the pins and a hash of the modules.
``canary local build`` (so ``make setup``) builds them; the end-to-end tests run them.
``CANARY_LOADTESTER_BIN`` points at a folder of ready binaries instead.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from canary.errors import LocalStackError
from canary.local.binaries import REPO_ROOT, Binary, cache_root, go_build, pinned_version
from canary.locks import exclusive

MODULES_DIR = REPO_ROOT / "tools" / "loadtester"
BINARIES = (
    Binary("loadtester", "flagger", "github.com/fluxcd/flagger/cmd/loadtester"),
    Binary("hey", "hey", "github.com/rakyll/hey"),
)
_PINS = {"flagger": "github.com/fluxcd/flagger", "hey": "github.com/rakyll/hey"}


def pins(modules_dir: Path = MODULES_DIR) -> dict[str, str]:
    """The pinned version of Flagger (whose load tester we build) and of hey, read from their modules."""
    return {folder: pinned_version(module, (modules_dir / folder / "go.mod").read_text())
            for folder, module in _PINS.items()}


def cache_key(modules_dir: Path = MODULES_DIR) -> str:
    """A folder name that changes whenever a pin or a module's go.sum changes."""
    digest = hashlib.sha256()
    for folder in sorted(_PINS):
        for name in ("go.mod", "go.sum"):
            digest.update((modules_dir / folder / name).read_bytes())
    versions = pins(modules_dir)
    return f"flagger-{versions['flagger']}_hey-{versions['hey']}_{digest.hexdigest()[:10]}"


def bin_dir() -> Path:
    """The folder that holds (or will hold) ``loadtester`` and ``hey`` for the current pins."""
    override = os.environ.get("CANARY_LOADTESTER_BIN")
    if override:
        return Path(override)
    return cache_root() / "loadtester" / cache_key() / "bin"


def missing(directory: Path) -> list[str]:
    """Names of the binaries not yet present in ``directory``."""
    return [b.name for b in BINARIES if not (directory / b.name).is_file()]


def ensure_built(*, verbose: bool = True) -> Path:
    """Return the binaries folder, building whatever is missing first (one process builds, others wait)."""
    directory = bin_dir()
    if not missing(directory):
        return directory
    if os.environ.get("CANARY_LOADTESTER_BIN"):
        raise LocalStackError(f"CANARY_LOADTESTER_BIN={directory} lacks {', '.join(missing(directory))}")
    with exclusive(directory.parent / ".build.lock"):
        for binary in BINARIES:
            target = directory / binary.name
            if not target.is_file():
                go_build(binary, target, verbose=verbose, modules_dir=MODULES_DIR)
    return directory
