"""kustomize for the Git sync: which command builds a kustomization kept in Git.

``canary.gitsync.render`` runs :func:`command` on every folder with a kustomization under a source's
paths. kustomize is found by :func:`locate`: the ``CANARY_KUSTOMIZE`` variable, else the binary that
``canary local build`` builds from the pinned module in tools/kustomize (in a checkout of this
project), else ``kustomize`` on PATH; without any, ``kubectl kustomize`` (kubectl's own copy of
kustomize, of whatever version that kubectl carries).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from canary.errors import PermanentError
from canary.gitsync import pinned

KUSTOMIZE_ENV = "CANARY_KUSTOMIZE"
MODULE_DIR = pinned.REPO_ROOT / "tools" / "kustomize"
KUSTOMIZE_MODULE = "sigs.k8s.io/kustomize/kustomize/v5"
KUSTOMIZE_PACKAGE = KUSTOMIZE_MODULE  # the module's root package is the command
# The package whose variables kustomize's own builds set with -ldflags -X (its Makefile and Dockerfile).
PROVENANCE_PACKAGE = "sigs.k8s.io/kustomize/api/provenance"


class KustomizeError(PermanentError):
    """kustomize cannot be run as configured; the message says why."""


def pinned_version(module_dir: Path = MODULE_DIR) -> str:
    """The version of kustomize that tools/kustomize/go.mod pins, e.g. ``v5.8.2``."""
    version = pinned.required_version(module_dir, KUSTOMIZE_MODULE)
    if version is None:
        raise KustomizeError(f"{module_dir / 'go.mod'}: no version of {KUSTOMIZE_MODULE}")
    return version


def built_path(module_dir: Path = MODULE_DIR, platform: str | None = None) -> Path:
    """Where ``canary local build`` puts kustomize: a folder named after the pin and a hash of the module
    (``canary.gitsync.pinned.built_path``; ``platform`` such as ``linux/arm64`` for another machine's)."""
    return pinned.built_path("kustomize", module_dir, pinned_version(module_dir), platform)


def locate() -> Path | None:
    """The kustomize to run: ``CANARY_KUSTOMIZE``, else the one built from tools/kustomize, else ``kustomize``
    on PATH; None without any."""
    return pinned.locate(KUSTOMIZE_ENV, "kustomize",
                         lambda: built_path() if (MODULE_DIR / "go.mod").is_file() else None, KustomizeError)


def command() -> list[str] | None:
    """The command that builds a kustomization (its folder appended): ``kustomize build`` with the kustomize
    of :func:`locate`, else ``kubectl kustomize``; None when there is neither."""
    if (kustomize := locate()) is not None:
        return [str(kustomize), "build"]
    if (kubectl := shutil.which("kubectl")) is not None:
        return [kubectl, "kustomize"]
    return None
