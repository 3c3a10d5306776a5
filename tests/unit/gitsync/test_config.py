from __future__ import annotations

from pathlib import Path

import pytest

from canary.errors import PermanentError
from canary.gitsync.config import GitSettings, sources_from


def _file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "sources.yaml"
    path.write_text(text)
    return path


def test_a_sources_file_adds_sources_beside_the_flag_source(tmp_path: Path) -> None:
    path = _file(tmp_path, """\
sources:
  - name: apps
    url: git://git.example.com/apps.git
    paths: [k8s, shared]
    gitRollback: revert
  - name: infra
    url: file:///srv/infra.git
    tag: v1.2.0
    readonly: true
""")
    sources = sources_from(GitSettings(url="file:///srv/main.git", sources_file=path), None)

    assert [s.name for s in sources] == ["default", "apps", "infra"]
    apps, infra = sources[1], sources[2]
    assert (apps.paths, apps.rollback, apps.branch, apps.readonly) == (("k8s", "shared"), "revert", "main", False)
    assert (infra.tag, infra.rollback, infra.readonly) == ("v1.2.0", "pin", True)
    assert all(s.readonly for s in sources_from(GitSettings(sources_file=path, readonly=True), None)), \
        "--git-readonly applies to every source"


@pytest.mark.parametrize(("text", "message"), [
    ("sources:\n  - name: apps\n    url: file:///a\n    gitRollback: undo\n",
     "sources.0.gitRollback: Input should be 'none', 'pin' or 'revert'"),
    ("sources:\n  - name: Apps\n    url: file:///a\n", "sources.0.name: String should match pattern"),
    ("sources:\n  - name: apps\n    url: file:///a\n    brnach: main\n", "sources.0.brnach: Extra inputs are not"),
    ("sources: []\n", "sources: List should have at least 1 item"),
    ("sources:\n  - name: a\n    url: file:///a\n  - name: a\n    url: file:///b\n", "a is used more than once"),
    ("sources: [\n", "cannot read it"),
])
def test_a_bad_sources_file_is_refused_naming_the_file_and_field(tmp_path: Path, text: str, message: str) -> None:
    path = _file(tmp_path, text)
    with pytest.raises(PermanentError, match=f"--git-config {path}: .*") as caught:
        sources_from(GitSettings(sources_file=path), None)
    assert message in str(caught.value)


def test_the_flag_source_and_a_file_source_cannot_share_the_name_default(tmp_path: Path) -> None:
    path = _file(tmp_path, "sources:\n  - name: default\n    url: file:///b\n")
    with pytest.raises(PermanentError, match="default is used more than once"):
        sources_from(GitSettings(url="file:///a", sources_file=path), None)


def test_credentials_can_come_from_a_mounted_secret_folder(tmp_path: Path) -> None:
    folder = tmp_path / "git-secret"
    folder.mkdir()
    (folder / "token").write_text("s3cret")
    (folder / "allowed_signers").write_text("dev@example.com ssh-ed25519 AAAA\n")
    (source,) = sources_from(GitSettings(url="https://git.example.com/a.git", secret=str(folder)), None)
    assert source.credentials is not None
    assert source.credentials.https_token == "s3cret"  # noqa: S105 - the test's token
    assert source.verify is not None
    assert source.verify.kind == "ssh"
    with pytest.raises(PermanentError, match="Git source default: secret: /nowhere is not a folder"):
        sources_from(GitSettings(url="https://git.example.com/a.git", secret="/nowhere"), None)  # noqa: S106


def test_a_source_lists_the_settings_of_its_helm_charts_with_flux_helmrelease_names(tmp_path: Path) -> None:
    path = _file(tmp_path, """\
sources:
  - name: apps
    url: git://git.example.com/apps.git
    paths: [k8s]
    charts:
      - path: k8s/podinfo/
        releaseName: podinfo
        namespace: shop
        valuesFiles: [envs/prod/podinfo.yaml]
        values: {replicaCount: 3, image: {tag: 6.7.1}}
      - path: k8s/redis
""")
    (apps,) = sources_from(GitSettings(sources_file=path), None)

    podinfo, redis = apps.charts
    assert (podinfo.path, podinfo.release_name, podinfo.namespace) == ("k8s/podinfo/", "podinfo", "shop")
    assert podinfo.values_files == ("envs/prod/podinfo.yaml",)
    assert podinfo.values == {"replicaCount": 3, "image": {"tag": "6.7.1"}}
    assert (redis.release_name, redis.namespace, redis.values, redis.values_files) == (None, "default", {}, ())


@pytest.mark.parametrize(("chart", "message"), [
    ("{path: ../elsewhere}", "sources.0.charts.0.path: Value error, '../elsewhere' must be a relative path"),
    ("{path: k8s/a, valuesFiles: [/etc/passwd]}", "sources.0.charts.0.valuesFiles.0: Value error, '/etc/passwd'"),
    ("{path: k8s/a, releaseName: Shop_1}", "sources.0.charts.0.releaseName: String should match pattern"),
    ("{path: k8s/a, namespace: Apps}", "sources.0.charts.0.namespace: String should match pattern"),
    ("{path: k8s/a, values: [1]}", "sources.0.charts.0.values: Input should be a valid dictionary"),
    ("{path: k8s/a, valueFiles: [a.yaml]}", "sources.0.charts.0.valueFiles: Extra inputs are not permitted"),
    ("{path: k8s/a}, {path: ./k8s/a}", "charts: each chart may be listed once; k8s/a is listed more than once"),
])
def test_bad_chart_settings_are_refused_naming_the_file_and_field(tmp_path: Path, chart: str, message: str) -> None:
    path = _file(tmp_path, f"sources:\n  - name: apps\n    url: file:///a\n    charts: [{chart}]\n")
    with pytest.raises(PermanentError, match=f"--git-config {path}: .*") as caught:
        sources_from(GitSettings(sources_file=path), None)
    assert message in str(caught.value)
