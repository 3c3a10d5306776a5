"""The helm and kustomize of the controller's image: built here, staged into the image's build context.

The Git sync runs helm (charts kept in Git) and kustomize (kustomizations) at run time, so the image
ships both, the same pinned builds as ``canary local build`` makes (``canary.local.helm``,
``canary.local.kustomize``). ``canary local build --image-tools`` (which tools/build-image.sh runs)
builds them for Linux on the architecture Go builds for (``go env GOARCH``: this machine's, or
``GOARCH``'s), and copies them into ``.cache/image-tools/`` of the checkout, which the
Containerfile copies to /usr/local/bin. A copy is replaced only when its content changes, so podman's
layer cache keeps the image's tools layer.
"""

from __future__ import annotations

import filecmp
import shutil
from pathlib import Path

from canary.local import helm, kustomize
from canary.local.binaries import REPO_ROOT, go_env

STAGING_DIR = REPO_ROOT / ".cache" / "image-tools"  # in the build context, whatever CANARY_CACHE_DIR says
TOOLS = ("helm", "kustomize")


def image_platform() -> str | None:
    """The platform the image's tools are built for, as ``linux/<arch>``; None when it is this machine's
    (so the builds of ``canary local build`` serve)."""
    goarch, hostos, hostarch = go_env("GOARCH", "GOHOSTOS", "GOHOSTARCH")
    return None if (hostos, hostarch) == ("linux", goarch) else f"linux/{goarch}"


def stage(directory: Path = STAGING_DIR, *, verbose: bool = True) -> dict[str, Path]:
    """Build helm and kustomize for the image when missing, and copy them into ``directory``; their staged paths."""
    platform = image_platform()
    built = {"helm": helm.ensure_built(platform=platform, verbose=verbose),
             "kustomize": kustomize.ensure_built(platform=platform, verbose=verbose)}
    directory.mkdir(parents=True, exist_ok=True)
    staged = {}
    for name, source in built.items():
        target = directory / name
        if not (target.is_file() and filecmp.cmp(source, target, shallow=False)):
            partial = directory / f".{name}.partial"
            shutil.copyfile(source, partial)
            partial.chmod(0o755)
            partial.replace(target)
        staged[name] = target
    return staged
