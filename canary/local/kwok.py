"""kwok's side of the local stack: its configuration and the fake nodes it manages.

kwok creates no nodes; we create them, annotated so kwok takes them over, and kwok keeps their
leases and status fresh and makes the pods bound to them run and become ready.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

NODE_ANNOTATION = "kwok.x-k8s.io/node"


def node(name: str) -> dict[str, Any]:
    """A Node object for kwok to manage, with room for plenty of pods."""
    resources = {"cpu": "32", "memory": "256Gi", "pods": "110"}
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {NODE_ANNOTATION: "fake"},
            "labels": {"type": "kwok", "kubernetes.io/hostname": name, "kubernetes.io/os": "linux",
                       "kubernetes.io/arch": "amd64", "node-role.kubernetes.io/agent": ""},
        },
        "status": {"allocatable": resources, "capacity": resources},
    }


def write_config(path: Path) -> None:
    """Write kwok's configuration file (so it never reads the user's ~/.kwok/kwok.yaml)."""
    config = {"apiVersion": "config.kwok.x-k8s.io/v1alpha1", "kind": "KwokConfiguration", "options": {}}
    path.write_text(yaml.safe_dump(config, sort_keys=False))


def argv(*, binary: str, kubeconfig: Path, config: Path) -> list[str]:
    """The command line of kwok managing every node annotated as fake."""
    return [
        binary,
        f"--kubeconfig={kubeconfig}",
        f"--config={config}",
        f"--manage-nodes-with-annotation-selector={NODE_ANNOTATION}=fake",
        "--node-lease-duration-seconds=40",
        "--server-address=",
    ]
