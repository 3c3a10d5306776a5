"""Build the pinned Helm (the Go module in tools/helm) into its cache folder, when it is missing.

``canary local build`` (and so ``make setup``) calls :func:`ensure_built`; the Git sync finds the
result through ``canary.gitsync.helm.locate``, which owns the folder's name: the pin and a hash of
the module, so a changed pin builds afresh and an unchanged one costs nothing.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from canary.errors import LocalStackError
from canary.gitsync import helm
from canary.locks import exclusive


def version_ldflags(module_dir: Path = helm.MODULE_DIR) -> list[str]:
    """The flags of Helm's own Makefile: its version, and the Kubernetes version its templates assume
    (``.Capabilities.KubeVersion``, the deprecation lint), taken from its client-go."""
    minor = helm.kubernetes_minor(module_dir)
    return [f"-X {helm.HELM_MODULE}/internal/version.version={helm.pinned_version(module_dir)}",
            *(f"-X {helm.HELM_MODULE}/pkg/{package}.k8sVersion{part}={value}"
              for package in ("chartutil", "lint/rules") for part, value in (("Major", "1"), ("Minor", minor)))]


def ensure_built(*, verbose: bool = True) -> Path:
    """The built helm, building it first when missing (one process builds, the others wait)."""
    target = helm.built_path()
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with exclusive(target.parent.parent / ".build.lock"):
        if target.is_file():
            return target
        partial = target.with_suffix(".partial")
        argv = ["go", "build", "-trimpath", "-ldflags", " ".join(["-s", "-w", *version_ldflags()]),
                "-o", str(partial), helm.HELM_PACKAGE]
        if verbose:
            print(f"building helm {helm.pinned_version()} ({helm.HELM_PACKAGE})", file=sys.stderr, flush=True)
        try:
            done = subprocess.run(argv, cwd=helm.MODULE_DIR, capture_output=True, text=True, check=False)
        except FileNotFoundError as exc:
            raise LocalStackError("the Go toolchain (`go`) is not on PATH; install Go 1.26 or newer") from exc
        if done.returncode != 0:
            raise LocalStackError(f"building helm failed:\n{done.stderr[-4000:]}")
        partial.rename(target)
    return target
