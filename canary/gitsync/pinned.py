"""The upstream programs the Git sync runs, helm and kustomize: where their pinned builds live, and which
binary a sync runs.

Each is pinned by a Go module under tools/ (``tools/helm``, ``tools/kustomize``) and built by ``canary
local build`` (``canary.local.helm``, ``canary.local.kustomize``) into a cache folder named after the
pin, a hash of the module and the build's recipe, so a changed pin or recipe builds afresh and an
unchanged one costs nothing. A build for another platform than this machine's (the image's Linux,
from a Mac, say) gets a folder of its own beside it. The sync runs the program named by its
variable, else that build (in a checkout of this project), else the one on PATH.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path

from canary.errors import PermanentError

REPO_ROOT = Path(__file__).resolve().parents[2]
# How the programs are built, part of the folder's name: static (CGO_ENABLED=0, as helm's and kustomize's
# own releases are), so the same binary runs on this machine and in any Linux image.
RECIPE = b"CGO_ENABLED=0"


def cache_root() -> Path:
    """The same root as the control plane's binaries (``canary.local.binaries.cache_root``)."""
    return Path(os.environ.get("CANARY_CACHE_DIR", REPO_ROOT / ".cache"))


def required_version(module_dir: Path, module: str) -> str | None:
    """The version of ``module`` that ``module_dir``/go.mod requires, e.g. ``v3.22.0``; None if it requires none."""
    text = (module_dir / "go.mod").read_text()
    match = re.search(rf"^\s*(?:require\s+)?{re.escape(module)}\s+(v\S+)", text, re.MULTILINE)
    return None if match is None else match.group(1)


def built_path(program: str, module_dir: Path, pin: str, platform: str | None = None) -> Path:
    """Where ``canary local build`` puts ``program`` built from ``module_dir`` (which pins it at ``pin``):
    ``<cache>/<program>/<pin>_<hash>/<program>``, or under ``<os>-<arch>/`` there for another platform
    (``platform`` as ``linux/arm64``; None for this machine's)."""
    digest = hashlib.sha256(RECIPE)
    for name in ("go.mod", "go.sum"):
        digest.update((module_dir / name).read_bytes())
    folder = cache_root() / program / f"{pin}_{digest.hexdigest()[:10]}"
    if platform is not None:
        folder /= platform.replace("/", "-")
    return folder / program


def locate(variable: str, program: str, built: Callable[[], Path | None],
           error: type[PermanentError]) -> Path | None:
    """The ``program`` to run: the path in the environment variable ``variable`` (``error`` if it is not an
    executable file), else ``built()`` when that file exists, else ``program`` on PATH; None without any."""
    override = os.environ.get(variable)
    if override:
        path = Path(override)
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise error(f"{variable}={override} is not an executable file")
        return path
    found = built()
    if found is not None and found.is_file():
        return found
    on_path = shutil.which(program)
    return Path(on_path) if on_path is not None else None
