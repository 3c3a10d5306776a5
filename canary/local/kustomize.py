"""Build the pinned kustomize (the Go module in tools/kustomize) into its cache folder, when it is missing.

``canary local build`` (and so ``make setup``) calls :func:`ensure_built`; the Git sync finds the
result through ``canary.gitsync.kustomize.locate``, which owns the folder's name (the pin and a hash
of the module), as for helm (``canary.local.helm``). It is built as kustomize's releases are: static,
with the version its Makefile and Dockerfile set (``provenance.version``). Their build date is left
out, so that a rebuild of the same pin gives the same binary; ``kustomize version`` says the pin.
"""

from __future__ import annotations

from pathlib import Path

from canary.gitsync import kustomize
from canary.local.binaries import Binary, ensure_static

BINARY = Binary("kustomize", "kustomize", kustomize.KUSTOMIZE_PACKAGE)


def version_ldflags(module_dir: Path = kustomize.MODULE_DIR) -> list[str]:
    """The version flag of kustomize's own builds."""
    return [f"-X {kustomize.PROVENANCE_PACKAGE}.version={kustomize.pinned_version(module_dir)}"]


def ensure_built(*, platform: str | None = None, verbose: bool = True) -> Path:
    """The built kustomize, building it first when missing (one process builds, the others wait); for
    ``platform`` (``linux/arm64``) instead of this machine when given."""
    return ensure_static(BINARY, kustomize.built_path(platform=platform), modules_dir=kustomize.MODULE_DIR.parent,
                         ldflags=version_ldflags(), platform=platform, verbose=verbose)
