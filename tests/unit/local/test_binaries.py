from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from canary.errors import LocalStackError
from canary.local import binaries


def test_pinned_versions_come_from_the_wrapper_modules() -> None:
    versions = binaries.pins()
    assert set(versions) == {"kubernetes", "etcd", "kwok"}
    assert versions["kubernetes"].startswith("v1.")
    assert versions["etcd"].startswith("v3.")


def test_pinned_version_reads_single_and_block_requires() -> None:
    text = "module x\n\nrequire (\n\tk8s.io/kubernetes v1.34.4\n\tother v1\n)\n"
    assert binaries.pinned_version("k8s.io/kubernetes", text) == "v1.34.4"
    assert binaries.pinned_version("sigs.k8s.io/kwok", "require sigs.k8s.io/kwok v0.7.0\n") == "v0.7.0"
    with pytest.raises(LocalStackError, match=re.escape("no pinned version of go.etcd.io/etcd/server/v3")):
        binaries.pinned_version("go.etcd.io/etcd/server/v3", text)


def test_the_cache_folder_changes_when_a_module_changes(tmp_path: Path) -> None:
    modules = tmp_path / "controlplane"
    shutil.copytree(binaries.MODULES_DIR, modules)
    before = binaries.cache_key(modules)
    assert before.startswith(f"k8s-{binaries.pins()['kubernetes']}_etcd-")
    with (modules / "kwok" / "go.sum").open("a") as handle:
        handle.write("example.com/x v1.0.0 h1:abc=\n")
    assert binaries.cache_key(modules) != before


def test_kubernetes_binaries_are_stamped_with_their_version() -> None:
    flags = binaries.version_ldflags("v1.34.4")
    assert "-X k8s.io/component-base/version.gitVersion=v1.34.4" in flags
    assert "-X k8s.io/component-base/version.gitMinor=34" in flags


def test_a_prebuilt_folder_must_hold_every_binary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CANARY_CONTROLPLANE_BIN", str(tmp_path))
    (tmp_path / "etcd").write_text("")
    with pytest.raises(LocalStackError, match="lacks kube-apiserver, kube-controller-manager"):
        binaries.ensure_built()
