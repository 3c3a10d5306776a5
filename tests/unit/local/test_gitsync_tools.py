"""helm and kustomize: built static from their pinned modules, per platform, and staged for the image."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from canary.gitsync import helm as gitsync_helm
from canary.gitsync import kustomize as gitsync_kustomize
from canary.local import binaries, helm, imagetools, kustomize


def test_kustomize_is_pinned_by_its_wrapper_module_and_stamped_with_that_version() -> None:
    version = gitsync_kustomize.pinned_version()
    assert version.startswith("v5.")
    assert kustomize.version_ldflags() == [f"-X sigs.k8s.io/kustomize/api/provenance.version={version}"]


def test_a_build_for_another_platform_has_a_folder_of_its_own_and_a_changed_module_builds_afresh(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CANARY_CACHE_DIR", str(tmp_path / "cache"))
    module = tmp_path / "kustomize"
    shutil.copytree(gitsync_kustomize.MODULE_DIR, module)
    here = gitsync_kustomize.built_path(module)
    arm = gitsync_kustomize.built_path(module, platform="linux/arm64")
    assert here.relative_to(tmp_path / "cache").parts[0] == "kustomize"
    assert here.name == arm.name == "kustomize"
    assert arm.parent == here.parent / "linux-arm64"
    with (module / "go.sum").open("a") as handle:
        handle.write("example.com/x v1.0.0 h1:abc=\n")
    assert gitsync_kustomize.built_path(module) != here
    assert gitsync_helm.built_path(platform="linux/arm64").parent.parent == gitsync_helm.built_path().parent


class FakeGo:
    """``go build`` that records its argv, folder and environment, and writes its output file."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def __call__(self, argv: list[str], *, cwd: Path, env: dict[str, str] | None, **_: Any) -> Any:
        self.calls.append({"argv": argv, "cwd": cwd, "env": env})
        Path(argv[argv.index("-o") + 1]).write_text("built\n")
        return subprocess.CompletedProcess(argv, 0, "", "")


@pytest.mark.parametrize(("platform", "goos", "goarch"), [(None, None, None), ("linux/arm64", "linux", "arm64")])
def test_helm_and_kustomize_are_built_static_with_their_version_flags_for_the_platform_asked(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, platform: str | None, goos: str | None,
        goarch: str | None) -> None:
    monkeypatch.setenv("CANARY_CACHE_DIR", str(tmp_path))
    go = FakeGo()
    monkeypatch.setattr(subprocess, "run", go)

    built = [helm.ensure_built(platform=platform, verbose=False),
             kustomize.ensure_built(platform=platform, verbose=False)]

    assert built == [gitsync_helm.built_path(platform=platform), gitsync_kustomize.built_path(platform=platform)]
    assert all(path.read_text() == "built\n" for path in built)
    for call, module, package, flags in zip(
            go.calls, (gitsync_helm.MODULE_DIR, gitsync_kustomize.MODULE_DIR),
            (gitsync_helm.HELM_PACKAGE, gitsync_kustomize.KUSTOMIZE_PACKAGE),
            (helm.version_ldflags(), kustomize.version_ldflags()), strict=True):
        assert call["cwd"] == module
        assert call["argv"][-1] == package
        assert call["argv"][call["argv"].index("-ldflags") + 1] == " ".join(["-s", "-w", *flags])
        assert call["env"]["CGO_ENABLED"] == "0"
        assert (call["env"].get("GOOS"), call["env"].get("GOARCH")) == (
            (goos, goarch) if platform else (os.environ.get("GOOS"), os.environ.get("GOARCH")))
    # Built once: a second call finds the binaries.
    helm.ensure_built(platform=platform, verbose=False)
    assert len(go.calls) == 2


@pytest.mark.parametrize(("go_env", "platform"), [
    (["amd64", "linux", "amd64"], None),  # this machine's builds serve
    (["arm64", "linux", "amd64"], "linux/arm64"),  # GOARCH=arm64 on an amd64 machine
    (["arm64", "darwin", "arm64"], "linux/arm64"),  # a Mac builds for Linux on its architecture
])
def test_the_image_tools_are_built_for_linux_on_the_architecture_go_builds_for(
        monkeypatch: pytest.MonkeyPatch, go_env: list[str], platform: str | None) -> None:
    monkeypatch.setattr(imagetools, "go_env", lambda *names: go_env)
    assert imagetools.image_platform() == platform


def test_staging_copies_the_builds_into_the_build_context_and_leaves_unchanged_copies_alone(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    builds = {name: tmp_path / "cache" / name for name in imagetools.TOOLS}
    for name, path in builds.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"{name} 1\n")
    asked: list[str | None] = []

    def built(name: str) -> Any:
        def ensure_built(*, platform: str | None, verbose: bool) -> Path:
            asked.append(platform)
            return builds[name]
        return ensure_built

    monkeypatch.setattr(imagetools, "image_platform", lambda: "linux/arm64")
    monkeypatch.setattr(helm, "ensure_built", built("helm"))
    monkeypatch.setattr(kustomize, "ensure_built", built("kustomize"))
    staging = tmp_path / "context" / ".cache" / "image-tools"

    staged = imagetools.stage(staging, verbose=False)

    assert staged == {name: staging / name for name in imagetools.TOOLS}
    assert asked == ["linux/arm64", "linux/arm64"]
    for name, path in staged.items():
        assert path.read_text() == f"{name} 1\n"
        assert path.stat().st_mode & 0o777 == 0o755
    before = {name: path.stat().st_ino for name, path in staged.items()}
    builds["kustomize"].write_text("kustomize 2\n")

    imagetools.stage(staging, verbose=False)

    assert staged["helm"].stat().st_ino == before["helm"], "unchanged: not copied again"
    assert staged["kustomize"].read_text() == "kustomize 2\n"
    assert sorted(p.name for p in staging.iterdir()) == ["helm", "kustomize"], "no partial copies left"


def test_the_containerfile_copies_what_is_staged_and_the_build_context_lets_it_through() -> None:
    root = binaries.REPO_ROOT
    relative = imagetools.STAGING_DIR.relative_to(root).as_posix()
    containerfile = (root / "Containerfile").read_text()
    assert f"COPY --chmod=755 {relative}/helm {relative}/kustomize /tools/" in containerfile
    assert "COPY --from=tools /tools/helm /tools/kustomize /usr/local/bin/" in containerfile
    allowed = (root / ".containerignore").read_text().splitlines()
    assert {f"!{relative}/helm", f"!{relative}/kustomize"} <= set(allowed)
