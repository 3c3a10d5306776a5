"""Build the pinned Helm (the Go module in tools/helm) into its cache folder, when it is missing.

``canary local build`` (and so ``make setup``) calls :func:`ensure_built`; the Git sync finds the
result through ``canary.gitsync.helm.locate``, which owns the folder's name: the pin and a hash of
the module, so a changed pin builds afresh and an unchanged one costs nothing. It is built as Helm's
releases are (static, with its Makefile's version flags), so the image can ship the same binary
(``canary.local.imagetools``).
"""

from __future__ import annotations

from pathlib import Path

from canary.gitsync import helm
from canary.local.binaries import Binary, ensure_static

BINARY = Binary("helm", "helm", helm.HELM_PACKAGE)


def version_ldflags(module_dir: Path = helm.MODULE_DIR) -> list[str]:
    """The flags of Helm's own Makefile: its version, and the Kubernetes version its templates assume
    (``.Capabilities.KubeVersion``, the deprecation lint), taken from its client-go."""
    minor = helm.kubernetes_minor(module_dir)
    return [f"-X {helm.HELM_MODULE}/internal/version.version={helm.pinned_version(module_dir)}",
            *(f"-X {helm.HELM_MODULE}/pkg/{package}.k8sVersion{part}={value}"
              for package in ("chartutil", "lint/rules") for part, value in (("Major", "1"), ("Minor", minor)))]


def ensure_built(*, platform: str | None = None, verbose: bool = True) -> Path:
    """The built helm, building it first when missing (one process builds, the others wait); for
    ``platform`` (``linux/arm64``) instead of this machine when given."""
    return ensure_static(BINARY, helm.built_path(platform=platform), modules_dir=helm.MODULE_DIR.parent,
                         ldflags=version_ldflags(), platform=platform, verbose=verbose)
