"""Installing CRDs from YAML files into a cluster and waiting until they are served."""

from __future__ import annotations

from pathlib import Path

import yaml

from canary.errors import PermanentError
from canary.kube.client import Kube
from canary.kube.conditions import is_true
from canary.local.binaries import REPO_ROOT
from canary.waiting import wait_until

CANARY_CRDS = REPO_ROOT / "manifests" / "crds"
VENDOR = REPO_ROOT / "manifests" / "vendor"
STANDIN = REPO_ROOT / "manifests" / "standin"
"""Hand-written stand-ins for CRDs whose upstream module cannot be fetched (each folder's README says why)."""
GATEWAY_API_CRDS = VENDOR / "gateway-api"
FIELD_MANAGER = "canary-install"


def crd_folder(name: str) -> Path:
    """Where the CRDs called ``name`` are: ``canary`` (ours), a project vendored under manifests/vendor,
    else its stand-in under manifests/standin."""
    if name == "canary":
        return CANARY_CRDS
    for root in (VENDOR, STANDIN):
        if (root / name).is_dir():
            return root / name
    known = sorted({p.name for root in (VENDOR, STANDIN) for p in root.iterdir() if p.is_dir()})
    raise PermanentError(f"--with-crds: no CRDs called {name!r}; known: canary, {', '.join(known)}")


def install_crds(kube: Kube, folder: Path, *, timeout: float = 30) -> list[str]:
    """Apply every CRD in ``folder`` and wait until each is Established; returns their names."""
    names = []
    for path in sorted(folder.glob("*.yaml")):
        for crd in yaml.safe_load_all(path.read_text()):
            if (crd or {}).get("kind") != "CustomResourceDefinition":
                continue  # kustomization.yaml and the like
            kube.apply(crd, field_manager=FIELD_MANAGER)
            names.append(crd["metadata"]["name"])

    def established() -> list[str]:
        return [n for n in names
                if is_true(kube.get("apiextensions.k8s.io/v1", "CustomResourceDefinition", n), "Established")]

    wait_until(established, lambda done: len(done) == len(names), what=f"CRDs in {folder} to be Established",
               timeout=timeout)
    return names
