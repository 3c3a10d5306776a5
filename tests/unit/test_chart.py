"""The Helm chart charts/canary-delivery, linted and rendered by the pinned helm (built by `canary local
build`) with the value sets its users reach for: what it grants, what the controller is told, and what
it refuses. tests/e2e/test_chart.py applies the same renders to a real API server."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import typer.main
import yaml
from typer.core import TyperGroup

from canary import cli
from canary.gitsync import helm

ROOT = Path(__file__).parents[2]
CHART = ROOT / "charts" / "canary-delivery"
MANIFESTS = ROOT / "manifests"
Obj = dict[str, Any]

DEFAULT: tuple[str, ...] = ()
NAMESPACED = ("--set", "namespace=apps", "--set", "crds.create=false")
FLUX_GIT = ("--set", "git.url=git@github.com:org/fleet", "--set", "git.path=k8s", "--set", "git.branch=main",
            "--set", "git.secretName=flux-git-deploy", "--set", "sync.state=secret")
MONITORS = ("--set", "podMonitor.enabled=true", "--set", "serviceMonitor.enabled=true")
DASHBOARD = ("--set", "dashboard.enabled=true", "--set", "dashboard.actions.enabled=true",
             "--set", "dashboard.actions.tokensSecret=dashboard-tokens")
VALUE_SETS = {"default": DEFAULT, "namespaced": NAMESPACED, "git sync with Flux's names": FLUX_GIT,
              "monitors on": MONITORS, "dashboard with actions": DASHBOARD}


def helm_binary() -> str:
    found = helm.locate()
    if found is None:
        pytest.fail("helm is not built: run `canary local build` (or `make setup`), or set CANARY_HELM")
    return str(found)


def run_helm(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([helm_binary(), *args], capture_output=True, text=True, check=False, timeout=60)


def template(*values: str, namespace: str = "canary-system") -> list[Obj]:
    done = run_helm("template", "rel", str(CHART), "--namespace", namespace, *values)
    assert done.returncode == 0, done.stderr
    return [d for d in yaml.safe_load_all(done.stdout) if d]


def only(objects: list[Obj], kind: str, name: str | None = None) -> Obj:
    (found,) = [o for o in objects if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]
    return found


def manifest(path: str, kind: str, name: str) -> Obj:
    return only([d for d in yaml.safe_load_all((MANIFESTS / path).read_text()) if d], kind, name)


def container(objects: list[Obj]) -> Obj:
    (found,) = only(objects, "Deployment")["spec"]["template"]["spec"]["containers"]
    return dict(found)


def controller_params(args: list[str], tmp_path: Path) -> dict[str, Any]:
    """The Deployment's arguments as `canary controller` parses them (files it must find made in tmp_path)."""
    assert args[0] == "controller"
    sources = tmp_path / "sources.yaml"
    sources.write_text("sources: []\n")
    local = [f"--git-config={sources}" if arg.startswith("--git-config=") else arg for arg in args[1:]]
    command = typer.main.get_command(cli.app)
    assert isinstance(command, TyperGroup)
    return dict(command.commands["controller"].make_context("controller", local).params)


@pytest.mark.parametrize("values", VALUE_SETS.values(), ids=VALUE_SETS.keys())
def test_helm_lint_passes_strictly_with_every_value_set(values: tuple[str, ...]) -> None:
    done = run_helm("lint", "--strict", str(CHART), *values)
    assert done.returncode == 0, done.stdout + done.stderr


def test_by_default_the_controller_gets_the_clusterrole_and_crds_of_manifests_and_no_git_sync(tmp_path: Path) -> None:
    objects = template()
    assert only(objects, "ClusterRole")["rules"] == manifest("rbac/rbac.yaml", "ClusterRole", "canary-controller")[
        "rules"]
    binding = only(objects, "ClusterRoleBinding")
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "rel-canary-delivery",
                                    "namespace": "canary-system"}]
    crds = {o["metadata"]["name"]: o for o in objects if o["kind"] == "CustomResourceDefinition"}
    files = yaml.safe_load((MANIFESTS / "crds" / "kustomization.yaml").read_text())["resources"]
    assert sorted(p.name for p in (CHART / "files" / "crds").iterdir()) == sorted(files)
    for name in files:
        path = MANIFESTS / "crds" / name
        assert (CHART / "files" / "crds" / name).read_text() == path.read_text(), f"{name}: run `make crds`"
        crd = yaml.safe_load(path.read_text())
        assert crds[crd["metadata"]["name"]] == crd
    assert {o["kind"] for o in objects} == {"ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Deployment",
                                           "CustomResourceDefinition"}, "no Role for leases with one replica"
    main = container(objects)
    params = controller_params(main["args"], tmp_path)
    assert (params["git_url"], params["enable_leader_election"], params["namespace"]) == (None, False, None)
    assert (params["mesh_provider"], params["metrics_server"]) == ("kubernetes", "http://prometheus:9090")
    assert main["image"] == "canary-delivery:0.1.0"
    assert main["securityContext"]["readOnlyRootFilesystem"] is True
    assert {"name": "tmp", "mountPath": "/tmp"} in main["volumeMounts"], "git and helm need scratch space"  # noqa: S108


def test_a_namespaced_install_holds_the_role_of_manifests_rbac_namespaced_and_nothing_cluster_scoped(
        tmp_path: Path) -> None:
    objects = template(*NAMESPACED, "--set", "replicas=2")
    role = only(objects, "Role", "rel-canary-delivery")
    assert role["metadata"]["namespace"] == "apps"
    assert role["rules"] == manifest("rbac-namespaced/rbac.yaml", "Role", "canary-controller")["rules"]
    assert only(objects, "RoleBinding", "rel-canary-delivery")["metadata"]["namespace"] == "apps"
    leases = only(objects, "Role", "rel-canary-delivery-leader-election")
    assert leases["metadata"]["namespace"] == "canary-system"
    assert leases["rules"] == manifest("rbac/rbac.yaml", "Role", "canary-controller-leader-election")["rules"]
    assert not [o for o in objects if o["kind"].startswith("Cluster") or o["kind"] == "CustomResourceDefinition"]
    params = controller_params(container(objects)["args"], tmp_path)
    assert (params["namespace"], params["enable_leader_election"]) == ("apps", True)
    assert only(objects, "Deployment")["spec"]["replicas"] == 2


def test_fluxs_git_values_give_the_git_sync_a_mounted_secret_and_state_in_secrets_only(tmp_path: Path) -> None:
    objects = template(*FLUX_GIT, "--set", "ssh.known_hosts=github.com ssh-ed25519 AAAA")
    main = container(objects)
    params = controller_params(main["args"], tmp_path)
    assert (params["git_url"], params["git_path"], params["git_branch"]) == ("git@github.com:org/fleet", ["k8s"],
                                                                            "main")
    assert (params["git_sync_state"], params["git_secret"]) == ("secret", "/etc/canary/git")
    env = {e["name"]: e for e in main["env"]}
    assert env["CANARY_GIT_INVENTORY_NAMESPACE"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}
    mounts = {m["mountPath"]: m["name"] for m in main["volumeMounts"]}
    volumes = {v["name"]: v for v in only(objects, "Deployment")["spec"]["template"]["spec"]["volumes"]}
    sources = volumes[mounts["/etc/canary/git"]]["projected"]["sources"]
    assert sources[0] == {"secret": {"name": "flux-git-deploy"}}
    assert sources[1]["configMap"]["items"] == [{"key": "known_hosts", "path": "known_hosts"}]
    assert "emptyDir" in volumes[mounts[env["CANARY_CACHE_DIR"]["value"]]]
    assert not any("flux-git-deploy" in arg for arg in main["args"]), "credentials never on the command line"

    assert only(objects, "ClusterRole", "rel-canary-delivery-gitsync")["rules"] == manifest(
        "gitsync/rbac.yaml", "ClusterRole", "canary-gitsync")["rules"]
    state = only(objects, "Role", "rel-canary-delivery-gitsync-state")
    assert state["metadata"]["namespace"] == "canary-system"
    assert state["rules"] == [
        {"apiGroups": [""], "resources": ["secrets"], "verbs": ["create"]},
        {"apiGroups": [""], "resources": ["secrets"], "resourceNames": ["canary-gitsync-default"],
         "verbs": ["get", "patch"]},
        {"apiGroups": [""], "resources": ["events"], "verbs": ["create"]},
    ], "only its own state objects: no list, no other Secret"


def test_git_sources_from_values_become_a_mounted_sources_file_with_a_state_object_each(tmp_path: Path) -> None:
    objects = template("--set", "sync.state=configmap", "--set-json", 'git.sources=[{"name": "apps", "url": '
                       '"git://git.example.com/apps.git", "paths": ["charts"], "charts": [{"path": "charts/podinfo", '
                       '"releaseName": "podinfo", "namespace": "shop", "values": {"replicas": 2}}]}]')
    config = only(objects, "ConfigMap", "rel-canary-delivery-git")
    assert yaml.safe_load(config["data"]["sources.yaml"])["sources"][0]["charts"][0]["values"] == {"replicas": 2}
    params = controller_params(container(objects)["args"], tmp_path)
    assert params["git_config"] is not None
    assert params["git_url"] is None
    state = only(objects, "Role", "rel-canary-delivery-gitsync-state")
    assert state["rules"][1] == {"apiGroups": [""], "resources": ["configmaps"],
                                 "resourceNames": ["canary-gitsync-apps"], "verbs": ["get", "patch"]}


def test_monitors_are_off_by_default_and_scrape_the_controllers_pods_when_on() -> None:
    assert not [o for o in template() if o["kind"] in ("PodMonitor", "ServiceMonitor", "Service")]
    objects = template(*MONITORS, "--set", "podMonitor.additionalLabels.release=kube-prometheus")
    pods = only(objects, "Deployment")["spec"]["template"]["metadata"]["labels"]
    pod_monitor, service_monitor = only(objects, "PodMonitor"), only(objects, "ServiceMonitor")
    assert pod_monitor["spec"]["selector"]["matchLabels"].items() <= pods.items()
    assert pod_monitor["spec"]["podMetricsEndpoints"] == [{"port": "http", "path": "/metrics", "interval": "15s"}]
    assert pod_monitor["metadata"]["labels"]["release"] == "kube-prometheus"
    service = only(objects, "Service")
    assert service["spec"]["selector"].items() <= pods.items()
    assert service_monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert service_monitor["spec"]["endpoints"][0]["port"] == service["spec"]["ports"][0]["name"]


def test_slack_alerts_take_the_url_from_a_secret_and_the_cluster_name_from_values(tmp_path: Path) -> None:
    objects = template("--set", "slack.url=https://hooks.slack.com/services/T/B/x", "--set", "clusterName=prod-eu")
    secret = only(objects, "Secret")
    assert secret["metadata"]["name"] == "rel-canary-delivery-slack"
    main = container(objects)
    env = {e["name"]: e for e in main["env"]}
    assert env["CANARY_SLACK_URL"]["valueFrom"] == {"secretKeyRef": {"name": "rel-canary-delivery-slack",
                                                                     "key": "url"}}
    assert not any("hooks.slack.com" in arg for arg in main["args"])
    assert controller_params(main["args"], tmp_path)["cluster_name"] == "prod-eu"
    existing = template("--set", "slack.secretName=team-slack", "--set", "slack.secretKey=webhook")
    assert not [o for o in existing if o["kind"] == "Secret"]
    assert {e["name"]: e for e in container(existing)["env"]}["CANARY_SLACK_URL"]["valueFrom"] == {
        "secretKeyRef": {"name": "team-slack", "key": "webhook"}}


def test_image_resources_selector_labels_and_extra_args_reach_the_controller(tmp_path: Path) -> None:
    objects = template("--set", "image.repository=registry.example.com/canary", "--set", "image.tag=0.2.0",
                       "--set", "image.pullPolicy=Always", "--set", "selectorLabels=app.kubernetes.io/name",
                       "--set", "resources.limits.memory=1Gi", "--set", "meshProvider=istio",
                       "--set", "extraArgs={--workers=20,--stall-after=10m}")
    main = container(objects)
    assert (main["image"], main["imagePullPolicy"]) == ("registry.example.com/canary:0.2.0", "Always")
    assert main["resources"]["limits"] == {"memory": "1Gi"}
    params = controller_params(main["args"], tmp_path)
    assert (params["selector_labels"], params["mesh_provider"], params["workers"]) == (
        "app.kubernetes.io/name", "istio", 20)
    assert params["stall_after"] == 600


EVENTS_RULE = {"apiGroups": [""], "resources": ["events"], "verbs": ["list", "watch"]}


def test_the_dashboard_is_off_by_default(tmp_path: Path) -> None:
    objects = template()
    params = controller_params(container(objects)["args"], tmp_path)
    assert (params["dashboard"], params["dashboard_actions"], params["dashboard_tokens"]) == (False, False, None)
    assert not [o for o in objects if o["kind"] == "Service"]
    assert EVENTS_RULE not in only(objects, "ClusterRole")["rules"]


def test_a_read_only_dashboard_is_served_on_the_controllers_port_behind_a_service_of_its_own(tmp_path: Path) -> None:
    objects = template("--set", "dashboard.enabled=true")
    main = container(objects)
    params = controller_params(main["args"], tmp_path)
    assert (params["dashboard"], params["dashboard_actions"], params["dashboard_tokens"]) == (True, False, None)
    assert cli._dashboard_settings(True, False, None).enabled
    service = only(objects, "Service", "rel-canary-delivery-dashboard")
    (port,) = service["spec"]["ports"]
    (served,) = [p for p in main["ports"] if p["name"] == port["targetPort"]]
    assert served["containerPort"] == params["port"] == 8080, "the Service reaches the controller's --port"
    pods = only(objects, "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pods.items()
    assert EVENTS_RULE in only(objects, "ClusterRole")["rules"], "the canary pages list and watch Events"
    namespaced = template(*NAMESPACED, "--set", "dashboard.enabled=true")
    assert EVENTS_RULE in only(namespaced, "Role", "rel-canary-delivery")["rules"]
    assert not [o for o in template("--set", "dashboard.enabled=true", "--set", "dashboard.service.enabled=false")
                if o["kind"] == "Service"]


def test_dashboard_actions_read_their_tokens_from_a_mounted_secret_never_from_values(tmp_path: Path) -> None:
    objects = template(*DASHBOARD)
    main = container(objects)
    params = controller_params(main["args"], tmp_path)
    assert (params["dashboard"], params["dashboard_actions"]) == (True, True)
    settings = cli._dashboard_settings(params["dashboard"], params["dashboard_actions"], params["dashboard_tokens"])
    assert settings.tokens == "/etc/canary/dashboard-tokens"
    mounts = {m["mountPath"]: m for m in main["volumeMounts"]}
    assert mounts[settings.tokens]["readOnly"] is True
    volumes = {v["name"]: v for v in only(objects, "Deployment")["spec"]["template"]["spec"]["volumes"]}
    assert volumes[mounts[settings.tokens]["name"]]["secret"]["secretName"] == "dashboard-tokens"
    assert not [o for o in objects if o["kind"] == "Secret"], "the chart makes no token"


@pytest.mark.parametrize(("values", "message"), [
    (("--set", "dashboard.enabled=true", "--set", "dashboard.actions.enabled=true"),
     "dashboard.actions.enabled: set dashboard.actions.tokensSecret"),
    (("--set", "dashboard.actions.enabled=true", "--set", "dashboard.actions.tokensSecret=t"),
     "dashboard.actions.enabled: set dashboard.enabled too"),
    (("--set", "dashboard.enabled=true", "--set", "dashboard.actions.tokensSecret=t"),
     "dashboard.actions.tokensSecret: only read with dashboard.actions.enabled=true"),
    (("--set", "dashboard.token=abc"), "at '/dashboard': additional properties 'token' not allowed"),
    (("--set", "sync.state=git"), "at '/sync/state': value must be one of 'configmap', 'secret'"),
    (("--set", "git.label=flux-sync"), "at '/git': additional properties 'label' not allowed"),
    (("--set", "meshProvider=nginxx"), "at '/meshProvider': value must be one of"),
    (("--set", "git.url=git@h:o/r", "--set", "git.user=Flux"), "git.user and git.email: set both"),
    (("--set", "ssh.known_hosts=h ssh-ed25519 A"), "ssh.known_hosts: set git.secretName too"),
])
def test_values_the_chart_cannot_honour_are_refused_naming_the_value(values: tuple[str, ...], message: str) -> None:
    done = run_helm("template", "rel", str(CHART), *values)
    assert done.returncode != 0
    assert message in done.stderr, done.stderr
