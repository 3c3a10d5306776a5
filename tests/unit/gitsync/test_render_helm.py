"""Helm charts kept in Git: rendered by the pinned helm (built by `canary local build`) with the settings
of the sources file, each object named by its template, and every problem named by its file."""

from __future__ import annotations

from pathlib import Path

import pytest

from canary.gitsync import helm
from canary.gitsync.helm import HelmChart
from canary.gitsync.render import RenderError, render
from tests.unit.gitsync.test_render import write

CHART = "apiVersion: v2\nname: web\nversion: 0.1.0\n"
VALUES = "replicas: 1\nimage: {tag: '1.0'}\ngreeting: hello\n"
DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Release.Name }}
spec:
  replicas: {{ .Values.replicas }}
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: "web:{{ required "image.tag is required" .Values.image.tag }}"}]
"""
CONFIGMAP = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-greeting
  namespace: {{ .Release.Namespace }}
data:
  greeting: {{ .Values.greeting | quote }}
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-second
data: {}
"""
CRD = """\
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: things.example.com}
spec:
  group: example.com
  names: {kind: Thing, plural: things}
  scope: Namespaced
  versions: [{name: v1, served: true, storage: true, schema: {openAPIV3Schema: {type: object}}}]
"""
TEST_HOOK = """\
apiVersion: v1
kind: Pod
metadata:
  name: {{ .Release.Name }}-test
  annotations: {"helm.sh/hook": test}
spec: {containers: [{name: t, image: busybox}]}
"""


@pytest.fixture(autouse=True)
def _helm() -> None:
    if helm.locate() is None:
        pytest.fail("helm is not built: run `canary local build` (or `make setup`), or set CANARY_HELM")


def chart(root: Path, folder: str = "k8s/web", *, deployment: str = DEPLOYMENT) -> None:
    write(root, f"{folder}/Chart.yaml", CHART)
    write(root, f"{folder}/values.yaml", VALUES)
    write(root, f"{folder}/templates/deployment.yaml", deployment)
    write(root, f"{folder}/templates/configmap.yaml", CONFIGMAP)
    write(root, f"{folder}/templates/tests/test-connection.yaml", TEST_HOOK)
    write(root, f"{folder}/templates/NOTES.txt", "{{ .Release.Name }} is installed\n")
    write(root, f"{folder}/crds/things.yaml", CRD)


def by_name(root: Path, paths: list[str], charts: list[HelmChart]) -> dict[str, tuple[dict, str]]:  # type: ignore[type-arg]
    rendered = render(root, paths, charts=charts)
    return {o.body["metadata"]["name"]: (o.body, str(o.source)) for o in rendered.objects}


def test_a_chart_renders_with_the_release_namespace_and_values_merged_as_helm_merges_them(tmp_path: Path) -> None:
    chart(tmp_path)
    write(tmp_path, "k8s/plain.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: plain\n")
    write(tmp_path, "envs/prod/web.yaml", "image: {tag: '2.0'}\ngreeting: from-file\nreplicas: 3\n")
    settings = HelmChart(path="k8s/web", release_name="shop", namespace="apps", values_files=("envs/prod/web.yaml",),
                         values={"greeting": "inline"})

    objects = by_name(tmp_path, ["k8s"], [settings])

    assert set(objects) == {"plain", "shop", "shop-greeting", "shop-second", "things.example.com"}, \
        "templates are rendered, not read as manifests; the test hook and NOTES.txt are left out"
    deployment, source = objects["shop"]
    assert source == "k8s/web/templates/deployment.yaml (helm template), document 1"
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == "web:2.0", "the values file"
    assert deployment["spec"]["replicas"] == 3
    assert objects["shop-greeting"][0]["data"] == {"greeting": "inline"}, "inline values are merged last"
    assert objects["shop-second"][1] == "k8s/web/templates/configmap.yaml (helm template), document 2"
    assert {body["metadata"].get("namespace") for name, (body, _) in objects.items() if name != "plain"} == {"apps"}, \
        "objects without one get the release's namespace (the sync drops it again from cluster-scoped kinds)"
    assert "namespace" not in objects["plain"][0]["metadata"]
    assert objects["things.example.com"][1] == "k8s/web/crds/things.yaml (helm template), document 1"


def test_a_chart_without_settings_is_released_under_its_own_name_in_the_default_namespace(tmp_path: Path) -> None:
    chart(tmp_path, "web")
    objects = by_name(tmp_path, ["."], [])
    assert objects["web"][0]["metadata"]["namespace"] == "default"
    assert objects["web"][1] == "web/templates/deployment.yaml (helm template), document 1"


def test_a_chart_at_the_root_of_the_repository_renders_with_paths_relative_to_it(tmp_path: Path) -> None:
    chart(tmp_path, ".")
    objects = by_name(tmp_path, ["."], [HelmChart(path=".", release_name="root")])
    assert objects["root"][1] == "templates/deployment.yaml (helm template), document 1"


def test_a_chart_that_fails_to_render_is_a_problem_naming_its_template_and_the_rest_still_reported(
        tmp_path: Path) -> None:
    chart(tmp_path)
    write(tmp_path, "k8s/broken.yaml", "a: [1, 2\n")
    with pytest.raises(RenderError) as caught:
        render(tmp_path, ["k8s"], charts=[HelmChart(path="k8s/web", values={"image": {"tag": None}})])
    problems = caught.value.problems
    assert len(problems) == 2, problems
    assert problems[0].startswith("k8s/broken.yaml, document 1: YAML error")
    assert problems[1].startswith("k8s/web: `helm template` failed: ")
    assert "k8s/web/templates/deployment.yaml" in problems[1], "the template, by its path in the repository"
    assert "image.tag is required" in problems[1]
    assert str(tmp_path) not in problems[1]


def test_a_template_that_is_not_yaml_names_its_file(tmp_path: Path) -> None:
    chart(tmp_path, deployment="kind: Deployment\nmetadata: {name: [unclosed\n")
    with pytest.raises(RenderError, match=r"k8s/web: `helm template` failed: .*k8s/web/templates/deployment.yaml"):
        render(tmp_path, ["k8s"])


@pytest.mark.parametrize(("settings", "files", "problem"), [
    (HelmChart(path="k8s/web", values_files=("envs/missing.yaml",)), {},
     "k8s/web: values file envs/missing.yaml: no such file in the repository"),
    (HelmChart(path="k8s/web", values_files=("envs/outside.yaml",)), {"envs/outside.yaml": "/etc/hostname"},
     "k8s/web: values file envs/outside.yaml resolves outside the repository"),
    (HelmChart(path="k8s/web"), {"k8s/web/files/secret.txt": "/etc/hostname"},
     "k8s/web/files/secret.txt: a symlink to /etc/hostname, outside the repository"),
    (HelmChart(path="k8s/gone"), {}, "k8s/gone: the source's charts name it, but there is no chart"),
    (HelmChart(path="k8s/web", release_name="Web_Shop"), {}, "release name 'Web_Shop' is not a valid Helm release"),
])
def test_a_chart_setting_or_file_that_would_read_outside_or_nothing_is_refused_by_name(
        tmp_path: Path, settings: HelmChart, files: dict[str, str], problem: str) -> None:
    chart(tmp_path)
    for name, target in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).symlink_to(target)
    with pytest.raises(RenderError) as caught:
        render(tmp_path, ["k8s"], charts=[settings])
    assert any(problem in p for p in caught.value.problems), caught.value.problems


def test_a_folder_with_a_chart_and_a_kustomization_is_refused_as_ambiguous(tmp_path: Path) -> None:
    chart(tmp_path)
    write(tmp_path, "k8s/web/kustomization.yaml", "resources: []\n")
    with pytest.raises(RenderError, match=r"k8s/web: has both a Chart\.yaml and a kustomization"):
        render(tmp_path, ["k8s"])


def test_without_helm_a_chart_is_a_problem_that_says_where_helm_is_looked_for(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    chart(tmp_path)
    monkeypatch.setenv(helm.HELM_ENV, str(tmp_path / "no-helm"))
    with pytest.raises(RenderError, match=f"k8s/web: {helm.HELM_ENV}=.*/no-helm is not an executable file"):
        render(tmp_path, ["k8s"])


def test_helm_is_found_by_variable_then_the_pinned_build_then_path(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    fake = tmp_path / "bin" / "helm"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    monkeypatch.setenv(helm.HELM_ENV, str(fake))
    assert helm.locate() == fake
    monkeypatch.delenv(helm.HELM_ENV)
    monkeypatch.setenv("CANARY_CACHE_DIR", str(tmp_path / "empty-cache"))
    monkeypatch.setenv("PATH", str(fake.parent))
    assert helm.locate() == fake, "no pinned build in this cache: helm on PATH"
    monkeypatch.setenv("PATH", str(tmp_path))
    assert helm.locate() is None
