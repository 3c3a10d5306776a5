"""The kustomize bases build, and the Git sync component wires what the controller reads."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from canary.gitsync.config import GitSettings
from canary.routers.registry import plugin_for

MANIFESTS = Path(__file__).parents[2] / "manifests"
KUSTOMIZE = shutil.which("kustomize") or shutil.which("kubectl")
pytestmark = pytest.mark.skipif(KUSTOMIZE is None, reason="neither kustomize nor kubectl is on PATH")


def _build(tmp_path: Path, kustomization: str) -> list[dict[str, Any]]:
    copy = tmp_path / "manifests"
    shutil.copytree(MANIFESTS, copy)
    (copy / "overlay").mkdir()
    (copy / "overlay" / "kustomization.yaml").write_text(kustomization)
    argv = [KUSTOMIZE or "", "build" if KUSTOMIZE and KUSTOMIZE.endswith("kustomize") else "kustomize",
            str(copy / "overlay")]
    done = subprocess.run(argv, capture_output=True, text=True, check=True, timeout=60)
    return [d for d in yaml.safe_load_all(done.stdout) if d]


def test_the_git_sync_component_mounts_credentials_and_a_cache_and_grants_only_listed_kinds(tmp_path: Path) -> None:
    objects = _build(tmp_path, "resources: [../controller]\ncomponents: [../gitsync]\n")
    (deploy,) = [o for o in objects if o["kind"] == "Deployment"]
    pod = deploy["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}

    assert env["CANARY_GIT_SECRET"] in mounts, "credentials are read from the mounted Secret"
    assert env["CANARY_CACHE_DIR"] in mounts, "checkouts go to a writable volume"
    assert GitSettings(url=env["CANARY_GIT_URL"], secret=env["CANARY_GIT_SECRET"],
                       rollback=env["CANARY_GIT_ROLLBACK"]).enabled
    assert not any("git" in arg for arg in container["args"]), "nothing about Git on the command line"
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    (role,) = [o for o in objects if o["kind"] == "ClusterRole" and o["metadata"]["name"] == "canary-gitsync"]
    assert all("*" not in rule["resources"] and "*" not in rule["verbs"] for rule in role["rules"])


def test_the_controller_base_builds_alone(tmp_path: Path) -> None:
    objects = _build(tmp_path, "resources: [../controller]\n")
    assert {"Namespace", "CustomResourceDefinition", "ClusterRole", "Deployment"} <= {o["kind"] for o in objects}
    assert "canary-gitsync" not in {o["metadata"]["name"] for o in objects}, "Git sync rights only with the component"


OVERLAYS = sorted(p.name for p in (MANIFESTS / "overlays").iterdir() if p.is_dir())


@pytest.mark.parametrize("router", OVERLAYS)
def test_each_router_overlay_sets_a_known_router_and_its_prometheus_over_the_base(router: str, tmp_path: Path) -> None:
    objects = _build(tmp_path, f"resources: [../overlays/{router}]\n")
    (deploy,) = [o for o in objects if o["kind"] == "Deployment"]
    (container,) = deploy["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["CANARY_MESH_PROVIDER"] == router
    assert plugin_for(router, default="", where="overlay").name == router, "a router the controller has"
    assert env["CANARY_METRICS_SERVER"].startswith("http://prometheus.")
    assert "CANARY_LEADER_ELECTION_NAMESPACE" in env, "the base's settings are kept"
    assert {"CustomResourceDefinition", "ClusterRole", "Namespace"} <= {o["kind"] for o in objects}


def test_the_overlays_cover_the_main_routers() -> None:
    assert {"gatewayapi", "istio", "linkerd", "nginx"} <= set(OVERLAYS)
