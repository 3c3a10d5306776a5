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

from pathlib import Path

from canary.local.binaries import (
    REPO_ROOT,
    Binary,
    build_missing,
    cached_bin_dir,
    missing_in,
    modules_digest,
    pinned_versions,
)

MODULES_DIR = REPO_ROOT / "tools" / "loadtester"
BINARIES = (
    Binary("loadtester", "flagger", "github.com/fluxcd/flagger/cmd/loadtester"),
    Binary("hey", "hey", "github.com/rakyll/hey"),
)
_PINS = {"flagger": "github.com/fluxcd/flagger", "hey": "github.com/rakyll/hey"}
OVERRIDE = "CANARY_LOADTESTER_BIN"


def pins(modules_dir: Path = MODULES_DIR) -> dict[str, str]:
    """The pinned version of Flagger (whose load tester we build) and of hey, read from their modules."""
    return pinned_versions(modules_dir, _PINS)


def cache_key(modules_dir: Path = MODULES_DIR) -> str:
    """A folder name that changes whenever a pin or a module's go.sum changes."""
    versions = pins(modules_dir)
    return f"flagger-{versions['flagger']}_hey-{versions['hey']}_{modules_digest(modules_dir, list(_PINS))}"


def bin_dir() -> Path:
    """The folder that holds (or will hold) ``loadtester`` and ``hey`` for the current pins."""
    return cached_bin_dir("loadtester", cache_key(), override=OVERRIDE)


def missing(directory: Path) -> list[str]:
    """Names of the binaries not yet present in ``directory``."""
    return missing_in(directory, BINARIES)


def ensure_built(*, verbose: bool = True) -> Path:
    """Return the binaries folder, building whatever is missing first (one process builds, others wait)."""
    return build_missing(bin_dir(), BINARIES, modules_dir=MODULES_DIR, override=OVERRIDE, verbose=verbose)
