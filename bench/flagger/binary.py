"""Build Flagger (``cmd/flagger``) at the pinned version, and find its CRDs: for the side-by-side benchmark.

The version is pinned in the Go module tools/flagger (Flagger's own dependencies, unchanged), built as
the control plane and Flagger's load tester are (``canary.local.binaries``) into
.cache/flagger/<pin>_<hash>/bin, so a changed pin builds afresh and an unchanged one costs nothing.
Only ``make bench-flagger`` builds it (about 4 minutes once on 2 cores): ``make setup`` and CI do not.
``CANARY_FLAGGER_BIN`` points at a folder holding a ready ``flagger`` instead.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from canary.errors import LocalStackError
from canary.local.binaries import (
    REPO_ROOT,
    Binary,
    build_missing,
    cached_bin_dir,
    modules_digest,
    pinned_versions,
)

MODULES_DIR = REPO_ROOT / "tools"
FOLDER = "flagger"
MODULE = "github.com/fluxcd/flagger"
BINARY = Binary("flagger", FOLDER, f"{MODULE}/cmd/flagger")
OVERRIDE = "CANARY_FLAGGER_BIN"
CRDS = "artifacts/flagger/crd.yaml"


def pin(modules_dir: Path = MODULES_DIR) -> str:
    """The Flagger version tools/flagger/go.mod requires, e.g. ``v1.36.1``."""
    return pinned_versions(modules_dir, {FOLDER: MODULE})[FOLDER]


def cache_key(modules_dir: Path = MODULES_DIR) -> str:
    """A folder name that changes whenever the pin or the module's go.sum changes."""
    return f"flagger-{pin(modules_dir)}_{modules_digest(modules_dir, [FOLDER])}"


def bin_dir() -> Path:
    """The folder that holds (or will hold) ``flagger`` for the current pin."""
    return cached_bin_dir("flagger", cache_key(), override=OVERRIDE)


def ensure_built(*, verbose: bool = True) -> Path:
    """The ``flagger`` executable, built first when missing (one process builds, the others wait)."""
    return build_missing(bin_dir(), [BINARY], modules_dir=MODULES_DIR, override=OVERRIDE, verbose=verbose) / "flagger"


def module_dir(modules_dir: Path = MODULES_DIR) -> Path:
    """Where the Go toolchain keeps Flagger's module source (downloaded by the build)."""
    try:
        done = subprocess.run(["go", "list", "-m", "-f", "{{.Dir}}", MODULE], cwd=modules_dir / FOLDER,
                              capture_output=True, text=True, check=False)
    except FileNotFoundError as exc:
        raise LocalStackError("the Go toolchain (`go`) is not on PATH; install Go 1.24 or newer") from exc
    found = done.stdout.strip()
    if done.returncode != 0 or not found:
        raise LocalStackError(f"tools/{FOLDER}: cannot find the source of {MODULE}: {done.stderr.strip()}")
    return Path(found)


def crds_file(modules_dir: Path = MODULES_DIR) -> Path:
    """Flagger's CustomResourceDefinitions (Canary, MetricTemplate, AlertProvider) from its module."""
    path = module_dir(modules_dir) / CRDS
    if not path.is_file():
        raise LocalStackError(f"{MODULE} {pin(modules_dir)} has no {CRDS}")
    return path
