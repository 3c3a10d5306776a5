"""Rendering a checkout's manifests: files, documents, kustomize folders, and every problem named."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from canary.gitsync import kustomize
from canary.gitsync.render import DocumentCache, RenderError, Source, digest, render

DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
spec:
  replicas: 1
"""


def write(root: Path, relative: str, text: str) -> Path:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def configmap(name: str) -> str:
    return f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n"


def names(root: Path, *paths: str) -> list[str]:
    return [o.body["metadata"]["name"] for o in render(root, paths).objects]


def test_multi_document_files_render_every_document_and_skip_empty_ones(tmp_path: Path) -> None:
    write(tmp_path, "k8s/app.yaml", "---\n" + configmap("a") + "---\n# only a comment\n---\n" + configmap("b"))

    rendered = render(tmp_path, ["k8s"]).objects

    assert [o.body["metadata"]["name"] for o in rendered] == ["a", "b"]
    assert [o.source for o in rendered] == [Source("k8s/app.yaml", 1), Source("k8s/app.yaml", 3)]


def test_files_render_in_sorted_order_of_their_paths_across_folders(tmp_path: Path) -> None:
    write(tmp_path, "k8s/b/z.yaml", configmap("bz"))
    write(tmp_path, "k8s/a.yml", configmap("a"))
    write(tmp_path, "k8s/b/c.json", json.dumps({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "bc"}}))
    write(tmp_path, "k8s/notes.txt", "not a manifest")
    write(tmp_path, "k8s/.hidden/x.yaml", configmap("hidden"))

    assert names(tmp_path, "k8s") == ["a", "bc", "bz"]


def test_several_paths_render_each_file_once(tmp_path: Path) -> None:
    write(tmp_path, "k8s/app/one.yaml", configmap("one"))
    write(tmp_path, "k8s/ns/two.yaml", configmap("two"))

    assert names(tmp_path, "k8s/ns", "k8s", "k8s/app/one.yaml") == ["one", "two"]


def test_documents_without_apiversion_kind_or_name_are_named_by_file_and_index(tmp_path: Path) -> None:
    write(tmp_path, "k8s/bad.yaml", configmap("fine") + "---\nkind: ConfigMap\nmetadata:\n  name: x\n"
          "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {}\n")
    write(tmp_path, "k8s/list.yaml", "- a\n- b\n")

    with pytest.raises(RenderError) as caught:
        render(tmp_path, ["k8s"])

    assert caught.value.problems == (
        "k8s/bad.yaml, document 2: missing apiVersion",
        "k8s/bad.yaml, document 3: missing metadata.name",
        "k8s/list.yaml, document 1: expected a mapping (an object), got list",
    )


def test_a_yaml_error_names_the_file_document_and_line_and_other_files_are_still_checked(tmp_path: Path) -> None:
    write(tmp_path, "k8s/a.yaml", configmap("a") + "---\n" + configmap("b") + "data:\n  key: a: b\n  other: fine\n")
    write(tmp_path, "k8s/b.yaml", "apiVersion: v1\n")

    with pytest.raises(RenderError) as caught:
        render(tmp_path, ["k8s"])

    first, second = caught.value.problems
    assert first == "k8s/a.yaml, document 2: YAML error at line 11: mapping values are not allowed here"
    assert second == "k8s/b.yaml, document 1: missing kind, metadata.name"
    assert "k8s/a.yaml, document 2: YAML error at line 11" in str(caught.value)


def test_a_json_error_names_the_file_and_line(tmp_path: Path) -> None:
    write(tmp_path, "k8s/a.json", '{\n  "apiVersion": "v1",\n  "kind": \n}\n')

    with pytest.raises(RenderError) as caught:
        render(tmp_path, ["k8s"])

    assert caught.value.problems[0].startswith("k8s/a.json, document 1: JSON error at line 4:")


def test_values_the_parsers_cannot_convert_and_deep_nesting_are_problems_naming_the_file(tmp_path: Path) -> None:
    write(tmp_path, "k8s/a-date.yaml", configmap("a") + "  day: 2001-13-45\n")
    write(tmp_path, "k8s/b-digits.json", '{"n": ' + "9" * 5000 + "}")
    write(tmp_path, "k8s/c-deep.yaml", "[" * 600)
    write(tmp_path, "k8s/d-float.yaml", "n: !!float x\n")
    write(tmp_path, "k8s/e-ok.yaml", configmap("e"))
    write(tmp_path, "other/kustomization.yaml", "resources: [2024-02-30]\n")

    with pytest.raises(RenderError) as caught:
        render(tmp_path, ["k8s", "other"])

    problems = caught.value.problems
    assert [p.split(": ", 1)[0] for p in problems] == [
        "k8s/a-date.yaml, document 1", "k8s/b-digits.json, document 1", "k8s/c-deep.yaml, document 1",
        "k8s/d-float.yaml, document 1", "other/kustomization.yaml"]
    assert problems[0].endswith("YAML error: a value that cannot be read: month must be in 1..12")
    assert "JSON error: a value that cannot be read: Exceeds the limit (4300 digits)" in problems[1]
    assert problems[2].endswith("YAML error: nested too deeply")
    assert problems[3].endswith("YAML error: a value that cannot be read: could not convert string to float: 'x'")
    assert problems[4].endswith("YAML error: a value that cannot be read: day is out of range for month")


def test_symlinks_that_escape_the_repository_are_refused(tmp_path: Path) -> None:
    root, outside = tmp_path / "repo", tmp_path / "outside"
    write(outside, "secret.yaml", configmap("stolen"))
    write(root, "k8s/fine.yaml", configmap("fine"))
    (root / "k8s" / "link.yaml").symlink_to(outside / "secret.yaml")
    (root / "k8s" / "dir").symlink_to(outside)

    with pytest.raises(RenderError) as caught:
        render(root, ["k8s"])

    assert caught.value.problems == (
        f"k8s/dir: a symlink to {outside.resolve()}, outside the repository",
        f"k8s/link.yaml: a symlink to {(outside / 'secret.yaml').resolve()}, outside the repository",
    )


def test_a_path_outside_the_repository_or_missing_is_refused(tmp_path: Path) -> None:
    (tmp_path / "repo").mkdir()

    with pytest.raises(RenderError) as caught:
        render(tmp_path / "repo", ["../elsewhere", "k8s"])

    assert caught.value.problems == (
        f"../elsewhere: resolves to {tmp_path.resolve() / 'elsewhere'}, outside the repository",
        "k8s: no such file or folder in the repository",
    )


def test_symlinks_inside_the_repository_are_followed(tmp_path: Path) -> None:
    write(tmp_path, "shared/cm.yaml", configmap("shared"))
    write(tmp_path, "k8s/own.yaml", configmap("own"))
    (tmp_path / "k8s" / "shared").symlink_to(tmp_path / "shared")

    assert names(tmp_path, "k8s") == ["own", "shared"]


needs_kustomize = pytest.mark.skipif(kustomize.command() is None,
                                     reason="no kustomize (canary local build) nor kustomize or kubectl on PATH")


@needs_kustomize
def test_a_kustomization_folder_is_built_instead_of_read_file_by_file(tmp_path: Path) -> None:
    write(tmp_path, "k8s/app/deployment.yaml", DEPLOYMENT.format(name="podinfo"))
    write(tmp_path, "k8s/app/kustomization.yaml", "resources: [deployment.yaml]\nnamePrefix: prod-\n")
    write(tmp_path, "k8s/z.yaml", configmap("plain"))

    rendered = render(tmp_path, ["k8s"]).objects

    assert [(o.body["metadata"]["name"], str(o.source)) for o in rendered] == [
        ("prod-podinfo", "k8s/app (kustomize build), document 1"), ("plain", "k8s/z.yaml, document 1")]


@needs_kustomize
def test_a_kustomization_that_loads_from_outside_the_repository_is_refused(tmp_path: Path) -> None:
    write(tmp_path, "outside/cm.yaml", configmap("outside"))
    write(tmp_path, "repo/k8s/kustomization.yaml", "resources:\n- ../../outside\n- https://example.com/x.yaml\n")

    with pytest.raises(RenderError) as caught:
        render(tmp_path / "repo", ["k8s"])

    assert caught.value.problems == (
        "k8s/kustomization.yaml: resources entry '../../outside' resolves outside the repository",
        "k8s/kustomization.yaml: resources entry 'https://example.com/x.yaml' is remote; only files in the "
        "repository may be rendered",
    )


@needs_kustomize
def test_a_failing_kustomize_build_is_reported_with_its_folder(tmp_path: Path) -> None:
    write(tmp_path, "k8s/kustomization.yaml", "resources: [missing.yaml]\n")

    with pytest.raises(RenderError) as caught:
        render(tmp_path, ["k8s"])

    assert caught.value.problems[0].startswith("k8s: `")
    assert "missing.yaml" in caught.value.problems[0]


def test_a_kustomization_without_kustomize_or_kubectl_says_where_kustomize_is_looked_for(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path, "k8s/kustomization.yaml", "resources: []\n")
    monkeypatch.delenv(kustomize.KUSTOMIZE_ENV, raising=False)
    monkeypatch.setenv("CANARY_CACHE_DIR", str(tmp_path / "empty-cache"))
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))

    with pytest.raises(RenderError) as caught:
        render(tmp_path, ["k8s"])

    assert caught.value.problems == (
        "k8s: has a kustomization, which needs kustomize: set CANARY_KUSTOMIZE, run `canary local build` in a "
        "checkout of canary-delivery, or put `kustomize` or `kubectl` on PATH",)


def test_a_kustomize_variable_that_names_no_program_is_a_problem_naming_the_variable(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path, "k8s/kustomization.yaml", "resources: []\n")
    monkeypatch.setenv(kustomize.KUSTOMIZE_ENV, str(tmp_path / "no-kustomize"))

    with pytest.raises(RenderError) as caught:
        render(tmp_path, ["k8s"])

    assert caught.value.problems == (f"k8s: CANARY_KUSTOMIZE={tmp_path / 'no-kustomize'} is not an executable file",)


def _program(folder: Path, name: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text("#!/bin/sh\n")
    path.chmod(0o755)
    return path


def test_kustomize_is_found_by_variable_then_the_pinned_build_then_path_then_kubectl(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CANARY_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    named = _program(tmp_path / "named", "kustomize")
    built = _program(kustomize.built_path().parent, "kustomize")
    on_path = _program(tmp_path / "bin", "kustomize")
    kubectl = _program(tmp_path / "bin", "kubectl")

    monkeypatch.setenv(kustomize.KUSTOMIZE_ENV, str(named))
    assert kustomize.command() == [str(named), "build"]
    monkeypatch.delenv(kustomize.KUSTOMIZE_ENV)
    assert kustomize.command() == [str(built), "build"]
    assert built.parent.name.startswith(f"{kustomize.pinned_version()}_")
    built.unlink()
    assert kustomize.command() == [str(on_path), "build"]
    on_path.unlink()
    assert kustomize.command() == [str(kubectl), "kustomize"]
    kubectl.unlink()
    assert kustomize.command() is None


@needs_kustomize
def test_a_kustomizations_generators_are_built(tmp_path: Path) -> None:
    write(tmp_path, "k8s/kustomization.yaml", "configMapGenerator: [{name: settings, literals: [color=blue]}]\n")

    (settings,) = render(tmp_path, ["k8s"]).objects

    assert settings.body["data"] == {"color": "blue"}
    assert settings.body["metadata"]["name"].startswith("settings-"), "kustomize's name suffix hash"


def test_with_a_cache_only_changed_files_are_parsed_again_and_removed_files_leave_it(tmp_path: Path) -> None:
    for name in ("a", "b", "c"):
        write(tmp_path, f"k8s/{name}.yaml", configmap(name))
    cache = DocumentCache()
    first = {o.body["metadata"]["name"]: o for o in render(tmp_path, ["k8s"], cache=cache).objects}
    write(tmp_path, "k8s/b.yaml", configmap("b") + "data:\n  key: new\n")
    (tmp_path / "k8s/c.yaml").unlink()

    second = {o.body["metadata"]["name"]: o for o in render(tmp_path, ["k8s"], cache=cache).objects}

    assert second["a"] is first["a"], "an unchanged file's objects are the ones rendered before"
    assert second["b"].body["data"] == {"key": "new"}
    assert second["b"].digest != first["b"].digest
    assert sorted(cache.files) == ["k8s/a.yaml", "k8s/b.yaml"]


def test_with_a_cache_a_broken_file_is_reported_at_every_render(tmp_path: Path) -> None:
    write(tmp_path, "k8s/a.yaml", "apiVersion: v1\nkind: ConfigMap\n")
    cache = DocumentCache()
    for _ in range(2):
        with pytest.raises(RenderError) as caught:
            render(tmp_path, ["k8s"], cache=cache)
        assert caught.value.problems == ("k8s/a.yaml, document 1: missing metadata.name",)


def test_a_digest_is_the_same_for_the_same_content_whatever_the_order_of_keys() -> None:
    assert digest({"a": 1, "b": {"c": 2}}) == digest({"b": {"c": 2}, "a": 1}) != digest({"a": 1, "b": {"c": 3}})
