"""The kustomize bases build, and the Git sync and dashboard components wire what the controller reads."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import typer.main
import yaml
from typer.core import TyperGroup

from canary import cli
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


def _controller_flags(container: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """What `canary controller` makes of the container's arguments and plain environment variables."""
    for entry in container["env"]:
        if "value" in entry:
            monkeypatch.setenv(entry["name"], entry["value"])
    command = typer.main.get_command(cli.app)
    assert isinstance(command, TyperGroup)
    return dict(command.commands["controller"].make_context("controller", list(container["args"][1:])).params)


def test_the_dashboard_components_serve_it_read_only_or_with_tokens_from_a_mounted_secret(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    base = _build(tmp_path / "base", "resources: [../overlays/gatewayapi]\n")
    (deploy,) = [o for o in base if o["kind"] == "Deployment"]
    (container,) = deploy["spec"]["template"]["spec"]["containers"]
    assert _controller_flags(container, monkeypatch)["dashboard"] is False, "off without the component"
    assert "canary-dashboard" not in {o["metadata"]["name"] for o in base}

    objects = _build(tmp_path / "read-only", "resources: [../overlays/gatewayapi]\ncomponents: [../dashboard]\n")
    (deploy,) = [o for o in objects if o["kind"] == "Deployment"]
    (container,) = deploy["spec"]["template"]["spec"]["containers"]
    flags = _controller_flags(container, monkeypatch)
    assert (flags["dashboard"], flags["dashboard_actions"], flags["mesh_provider"]) == (True, False, "gatewayapi")
    (service,) = [o for o in objects if o["kind"] == "Service" and o["metadata"]["name"] == "canary-dashboard"]
    (port,) = service["spec"]["ports"]
    (served,) = [p for p in container["ports"] if p["name"] == port["targetPort"]]
    assert served["containerPort"] == flags["port"], "the Service reaches the controller's --port"
    assert service["spec"]["selector"].items() <= deploy["spec"]["template"]["metadata"]["labels"].items()
    (role,) = [o for o in objects if o["kind"] == "ClusterRole" and o["metadata"]["name"] == "canary-dashboard"]
    assert role["rules"] == [{"apiGroups": [""], "resources": ["events"], "verbs": ["list", "watch"]}]

    objects = _build(tmp_path / "actions", "resources: [../overlays/gatewayapi]\n"
                     "components: [../dashboard, ../dashboard-actions]\n")
    (deploy,) = [o for o in objects if o["kind"] == "Deployment"]
    pod = deploy["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    flags = _controller_flags(container, monkeypatch)
    settings = cli._dashboard_settings(flags["dashboard"], flags["dashboard_actions"], flags["dashboard_tokens"])
    assert settings.actions
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    assert mounts[settings.tokens or ""]["readOnly"] is True
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes[mounts[settings.tokens or ""]["name"]]["secret"]["secretName"] == "canary-dashboard-tokens"
    assert not [o for o in objects if o["kind"] == "Secret"], "no token shipped"
    assert container["securityContext"]["readOnlyRootFilesystem"] is True, "the base's settings are kept"
