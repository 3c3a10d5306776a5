"""The controller's image, run as manifests/controller runs it, with exactly the permissions of manifests/rbac.

The image is built once per session by tools/build-image.sh (``make image``; seconds when podman's
cache holds its layers) and run by :class:`tests.e2e.images.ImagePod`: its entrypoint under chroot,
as user 65532 on a read-only root, with the in-cluster environment of a pod and the token of the
ServiceAccount of manifests/rbac, whose objects are applied as they are, moved to the test's namespace.
Its Git sync renders charts and kustomizations with the helm and kustomize the image ships.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from canary import __version__
from canary.errors import WaitTimeout
from canary.gitsync.config import DEFAULT_SOURCE
from canary.gitsync.helm import pinned_version as helm_pin
from canary.gitsync.inventory import KubeInventoryStore, SyncState
from canary.gitsync.kustomize import pinned_version as kustomize_pin
from canary.kube import Obj
from canary.kube.client import Kube
from canary.local import stack
from canary.waiting import wait_until
from tests.builders import make_canary, make_deployment
from tests.e2e import accounts
from tests.e2e.canaries import canary_status, good_then_bad_release, judged_canary, route_weights, wait_phase
from tests.e2e.gitrepos import SEED, Upstream
from tests.e2e.images import (
    REPO,
    Container,
    ImagePod,
    ServiceAccountFiles,
    api_server_of,
    build_image,
    manifest_container,
    remove_image,
)

pytestmark = [
    pytest.mark.usefixtures("gateway_api_crds"),
    pytest.mark.timeout(600),  # the first test may build the image cold: 75 to 110 s, more on a slow mirror
    pytest.mark.skipif(os.geteuid() != 0 or shutil.which("podman") is None,
                       reason="builds with podman --isolation chroot and runs the image under chroot: needs root "
                              "and podman (make setup installs it)"),
]
RBAC = REPO / "manifests" / "rbac" / "rbac.yaml"
GITSYNC_RBAC = REPO / "manifests" / "gitsync" / "rbac.yaml"
ACCOUNT = "canary-controller"
TMP = "/tmp"  # noqa: S108 - the container's emptyDir, not the host's


@pytest.fixture(scope="session")
def controller_image() -> Iterator[str]:
    """The image of the working tree, under a tag of the tests' own, removed at the end of the session."""
    tag = f"localhost/canary-delivery-e2e:{__version__}"
    build_image(tag)
    yield tag
    remove_image(tag)


class Rbac:
    """The objects of RBAC manifests in one namespace: namespaced ones moved there, as kustomize's
    ``namespace:`` would, and cluster-scoped ones renamed after it, so that tests do not share them."""

    def __init__(self, kube: Kube, namespace: str, *files: Path) -> None:
        self.kube, self.namespace = kube, namespace
        self.objects: list[Obj] = []
        for file in files:
            for doc in yaml.safe_load_all(file.read_text()):
                if doc["kind"].startswith("Cluster"):
                    doc["metadata"]["name"] = self._renamed(doc["metadata"]["name"])
                else:
                    doc["metadata"]["namespace"] = namespace
                if doc["kind"] == "ClusterRoleBinding":
                    doc["roleRef"]["name"] = self._renamed(doc["roleRef"]["name"])
                for subject in doc.get("subjects") or []:
                    subject["namespace"] = namespace
                self.objects.append(doc)

    def _renamed(self, name: str) -> str:
        return f"{name}-{self.namespace}"

    @property
    def cluster_role(self) -> Obj:
        """The controller's ClusterRole."""
        return next(doc for doc in self.objects if doc["kind"] == "ClusterRole"
                    and doc["metadata"]["name"] == self._renamed(ACCOUNT))

    def apply(self, *docs: Obj) -> None:
        for doc in docs or self.objects:
            self.kube.apply(doc, field_manager="test-image")

    def without(self, resource: str, verb: str) -> Obj:
        """The ClusterRole with ``verb`` taken away from the rule that grants it on ``resource``."""
        role = copy.deepcopy(self.cluster_role)
        rule = next(r for r in role["rules"] if resource in r["resources"] and verb in r["verbs"])
        rule["verbs"].remove(verb)
        return role

    def delete_cluster_objects(self) -> None:
        for doc in self.objects:
            if doc["kind"].startswith("Cluster"):
                self.kube.delete(doc["apiVersion"], doc["kind"], doc["metadata"]["name"])


@pytest.fixture
def rbac(kube: Kube, namespace: str) -> Iterator[Rbac]:
    """manifests/rbac, applied for the test's namespace; its cluster-scoped objects deleted after the test."""
    installed = Rbac(kube, namespace, RBAC)
    installed.apply()
    yield installed
    installed.delete_cluster_objects()


@pytest.fixture
def gitsync_rbac(kube: Kube, namespace: str) -> Iterator[Rbac]:
    """manifests/rbac and the Git sync's manifests/gitsync/rbac.yaml, as ``rbac``."""
    installed = Rbac(kube, namespace, RBAC, GITSYNC_RBAC)
    installed.apply()
    yield installed
    installed.delete_cluster_objects()


def _gitsync_container(local_stack: stack.StackState, namespace: str, daemon: int) -> Container:
    """The manifest's container syncing the git daemon's app.git (path k8s) into ``namespace``."""
    return manifest_container(namespace, args=("--namespace", namespace), env={
        "CANARY_METRICS_SERVER": local_stack.prometheus_url, "CANARY_GIT_URL": f"git://127.0.0.1:{daemon}/app.git",
        "CANARY_GIT_PATH": "k8s", "CANARY_GIT_INVENTORY_NAMESPACE": namespace, "CANARY_GIT_POLL_INTERVAL": "1s"})


def _pod(local_stack: stack.StackState, namespace: str, image: str, folder: Path, container: Container) -> ImagePod:
    host, port, ca = api_server_of(Path(local_stack.kubeconfig))
    account = ServiceAccountFiles(token=accounts.token(local_stack.kubeconfig, namespace, ACCOUNT), ca_crt=ca,
                                  namespace=namespace)
    return ImagePod(image, container, account, api_server=(host, port), folder=folder)


def _ready_condition(kube: Kube, namespace: str, name: str) -> Obj | None:
    return next((c for c in canary_status(kube, namespace, name).get("conditions") or [] if c["type"] == "Ready"),
                None)


def _log_records(pod: ImagePod) -> list[Obj]:
    """The container's log, one JSON object a line (structlog off a terminal)."""
    records = []
    for line in pod.log.read_text(errors="replace").splitlines():
        if line.startswith("{"):
            records.append(json.loads(line))
    return records


def test_the_image_releases_and_rolls_back_with_only_its_rbac_and_names_a_missing_permission(
    kube: Kube, namespace: str, local_stack: stack.StackState, canary_crds: list[str], controller_image: str,
    rbac: Rbac, tmp_path: Path,
) -> None:
    # The Deployment's container as it is, but for Prometheus's address, one namespace (the stack is
    # shared) and, in the launcher, a free --port instead of 8080.
    container = manifest_container(namespace, env={"CANARY_METRICS_SERVER": local_stack.prometheus_url},
                                   args=("--namespace", namespace))
    assert container.read_only_root
    assert container.run_as == "65532:65532"
    assert container.empty_dirs == (TMP,)
    pod = _pod(local_stack, namespace, controller_image, tmp_path, container)
    pod.start()
    try:
        # What `kubectl exec` shows: the image's user, a read-only root, and /tmp to write in.
        assert pod.exec("id", "-u").stdout.strip() == "65532"
        written = pod.exec("touch", "/opt/canary/written")
        assert written.returncode != 0
        assert "Read-only file system" in written.stderr
        assert pod.exec("touch", f"{TMP}/written").returncode == 0

        kube.create(make_deployment("web", namespace, replicas=2, image="web:1"))
        kube.create(judged_canary(namespace, "gatewayapi", stepWeight=25, maxWeight=50))
        wait_phase(kube, namespace, "web", "Initialized")
        good_then_bad_release(kube, namespace, lambda: route_weights(kube, namespace, "web"),
                              counted="the pods' requests", prometheus=local_stack.prometheus_url)

        # Without services patch, a new Canary cannot get its Services: a condition and a log line
        # that name the permission, and the controller keeps running and answers its liveness probe.
        rbac.apply(rbac.without("services", "patch"))
        kube.create(make_deployment("api", namespace, replicas=1, image="api:1"))
        kube.create(make_canary("api", namespace))
        refused = wait_until(lambda: _ready_condition(kube, namespace, "api"),
                             lambda c: c is not None and c["reason"] == "Forbidden",
                             what="the Ready condition of Canary api to say Forbidden", timeout=30)
        assert refused is not None
        assert refused["status"] == "False"
        who = f"system:serviceaccount:{namespace}:{ACCOUNT}"
        assert f'User "{who}" cannot patch resource "services"' in refused["message"], refused["message"]
        logged = [r for r in _log_records(pod) if r.get("reason") == "Forbidden" and r.get("canary") == "api"]
        assert logged, pod.log_tail()
        assert logged[0]["level"] == "warning"
        assert logged[0]["message"] == refused["message"]
        assert pod.running()
        assert pod.healthz() == 200
        assert canary_status(kube, namespace, "web")["phase"] == "Failed"

        # The permission back, the same Canary is initialised, without a restart.
        rbac.apply(rbac.cluster_role)
        wait_phase(kube, namespace, "api", "Initialized", timeout=60)
        ready = _ready_condition(kube, namespace, "api")
        assert ready is not None
        assert ready["status"] == "True"
    finally:
        code = pod.stop()
    assert code == 0, pod.log_tail()
    # Nothing else was refused: manifests/rbac grants everything else the run needed.
    refused_lines = [r for r in _log_records(pod) if "forbidden" in json.dumps(r).lower()
                     and r.get("canary") != "api"]
    assert refused_lines == [], refused_lines


def _settings(namespace: str, color: str) -> str:
    return yaml.safe_dump({"apiVersion": "v1", "kind": "ConfigMap", "data": {"color": color},
                           "metadata": {"name": "settings", "namespace": namespace}})


def _color(kube: Kube, namespace: str) -> str | None:
    found = kube.get("v1", "ConfigMap", "settings", namespace=namespace)
    return None if found is None else str(found["data"]["color"])


def test_the_image_syncs_git_commits_with_checkouts_in_tmp_under_its_read_only_root(
    kube: Kube, namespace: str, local_stack: stack.StackState, canary_crds: list[str], controller_image: str,
    gitsync_rbac: Rbac, upstream: Upstream, daemon: int, tmp_path: Path,
) -> None:
    upstream.commit({**dict.fromkeys(SEED), "k8s/settings.yaml": _settings(namespace, "blue")}, "settings")
    # The Git sync's settings as manifests/gitsync sets them, without CANARY_CACHE_DIR: checkouts go
    # to $HOME/.cache, on the emptyDir at /tmp.
    container = _gitsync_container(local_stack, namespace, daemon)
    pod = _pod(local_stack, namespace, controller_image, tmp_path / "pod", container)
    pod.start()
    try:
        wait_until(lambda: _color(kube, namespace), lambda color: color == "blue",
                   what="ConfigMap settings from the first commit", timeout=30)
        head = upstream.commit({"k8s/settings.yaml": _settings(namespace, "green")}, "greener")
        wait_until(lambda: _color(kube, namespace), lambda color: color == "green",
                   what="ConfigMap settings from the second commit", timeout=30)
        checkout = pod.exec("sh", "-c", f"git -C {TMP}/.cache/canary-delivery/gitsync/*/repo rev-parse HEAD")
        assert checkout.stdout.strip() == head, checkout.stderr
    finally:
        code = pod.stop()
    assert code == 0, pod.log_tail()


CHART = {"apiVersion": "v2", "name": "web", "version": "1.0.0"}
CHART_TEMPLATES = {
    "deployment.yaml": """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: {{ .Release.Name }}, namespace: {{ .Values.namespace }}}
spec:
  replicas: 1
  selector: {matchLabels: {app: {{ .Release.Name }}}}
  template:
    metadata: {labels: {app: {{ .Release.Name }}}}
    spec: {containers: [{name: web, image: "web:{{ .Values.tag }}"}]}
""",
    "greeting.yaml": """\
apiVersion: v1
kind: ConfigMap
metadata: {name: {{ .Release.Name }}-greeting, namespace: {{ .Values.namespace }}}
data: {greeting: {{ .Values.greeting | quote }}}
""",
}


def _chart_and_kustomization(namespace: str, *, tag: str, greeting: str, color: str) -> dict[str, str | None]:
    """A chart (helm template: its values into a Deployment and a ConfigMap) and a kustomization (kustomize build:
    a generated ConfigMap, a name prefix and the namespace), each a folder under k8s/."""
    return {"k8s/web/Chart.yaml": yaml.safe_dump(CHART),
            "k8s/web/values.yaml": yaml.safe_dump({"namespace": namespace, "tag": tag, "greeting": greeting}),
            **{f"k8s/web/templates/{name}": text for name, text in CHART_TEMPLATES.items()},
            "k8s/settings/kustomization.yaml": yaml.safe_dump({
                "namespace": namespace, "namePrefix": "kustomized-",
                "configMapGenerator": [{"name": "settings", "literals": [f"color={color}"]}],
                "generatorOptions": {"disableNameSuffixHash": True}})}


def _rendered(kube: Kube, namespace: str) -> tuple[str | None, str | None, str | None]:
    """The chart's image tag and greeting, and the kustomization's color, as the cluster has them."""
    web = kube.get("apps/v1", "Deployment", "web", namespace=namespace)
    greeting = kube.get("v1", "ConfigMap", "web-greeting", namespace=namespace)
    settings = kube.get("v1", "ConfigMap", "kustomized-settings", namespace=namespace)
    return (None if web is None else str(web["spec"]["template"]["spec"]["containers"][0]["image"]),
            None if greeting is None else str(greeting["data"]["greeting"]),
            None if settings is None else str(settings["data"]["color"]))


def test_the_image_renders_a_chart_and_a_kustomization_from_git_with_the_helm_and_kustomize_it_ships(
    kube: Kube, namespace: str, local_stack: stack.StackState, canary_crds: list[str], controller_image: str,
    gitsync_rbac: Rbac, upstream: Upstream, daemon: int, tmp_path: Path,
) -> None:
    upstream.commit({**dict.fromkeys(SEED), **_chart_and_kustomization(namespace, tag="1", greeting="hello",
                                                                          color="blue")}, "a chart and a kustomization")
    container = _gitsync_container(local_stack, namespace, daemon)
    pod = _pod(local_stack, namespace, controller_image, tmp_path / "pod", container)
    pod.start()
    try:
        # The pinned builds, on the image's PATH (the image has no kubectl to fall back on).
        found = pod.exec("sh", "-c", "for tool in helm kustomize kubectl; do command -v $tool; done")
        assert found.stdout.split() == ["/usr/local/bin/helm", "/usr/local/bin/kustomize"], found
        assert pod.exec("helm", "version", "--template", "{{.Version}}").stdout == helm_pin()
        assert pod.exec("kustomize", "version").stdout.strip() == kustomize_pin()

        state = KubeInventoryStore(SyncState(kube, namespace))
        try:
            wait_until(lambda: _rendered(kube, namespace), lambda seen: seen == ("web:1", "hello", "blue"),
                       what="the chart's and the kustomization's objects from the first commit", timeout=30)
            head = upstream.commit(_chart_and_kustomization(namespace, tag="2", greeting="bonjour", color="green"),
                                   "new values, a new literal")
            wait_until(lambda: _rendered(kube, namespace), lambda seen: seen == ("web:2", "bonjour", "green"),
                       what="the chart's and the kustomization's objects from the second commit", timeout=30)
            wait_until(lambda: state.load(DEFAULT_SOURCE),
                       lambda inv: inv is not None and inv.revision == head and inv.last_error is None,
                       what="the sync state to record the second commit, without an error", timeout=30)
        except WaitTimeout as exc:
            inventory = state.load(DEFAULT_SOURCE)
            raise AssertionError(f"{exc}\nsync error: {inventory and inventory.last_error}\n{pod.log_tail()}") from exc
    finally:
        code = pod.stop()
    assert code == 0, pod.log_tail()
