"""Several Git sources from a settings file (``--git-config``): each is synced, pruned and reported on
its own, with Events on its sync-state ConfigMap."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from canary.kube.client import Kube
from canary.local import stack
from canary.waiting import wait_until
from tests.e2e.controllers import ControllerProcess
from tests.e2e.gitrepos import Upstream, git, sync_status

pytestmark = pytest.mark.usefixtures("canary_crds")


def _config_map(namespace: str, name: str) -> str:
    return yaml.safe_dump({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": namespace},
                           "data": {"from": name}})


def _second_repository(tmp_path: Path) -> Upstream:
    bare, work = tmp_path / "served" / "infra.git", tmp_path / "infra-work"
    git("init", "--quiet", "--bare", "--initial-branch=main", str(bare), cwd=tmp_path)
    git("clone", "--quiet", str(bare), str(work), cwd=tmp_path)
    git("checkout", "--quiet", "-b", "main", cwd=work)
    (work / "README.md").write_text("infra\n")
    git("add", "--all", cwd=work)
    git("commit", "--quiet", "--message", "start", cwd=work)
    git("push", "--quiet", "--set-upstream", "origin", "main", cwd=work)
    return Upstream(bare=bare, work=work)


def _inventory(kube: Kube, namespace: str, source: str) -> str:
    found = kube.get("v1", "ConfigMap", f"canary-gitsync-{source}", namespace=namespace) or {}
    return str((found.get("data") or {}).get("inventory.json", ""))


def test_sources_from_a_settings_file_sync_and_prune_independently(
    kube: Kube, namespace: str, local_stack: stack.StackState, upstream: Upstream, tmp_path: Path
) -> None:
    infra = _second_repository(tmp_path)
    upstream.commit({"cfg/apps.yaml": _config_map(namespace, "from-apps")}, "apps config")
    infra.commit({"cfg/infra.yaml": _config_map(namespace, "from-infra"),
                  "cfg/shared.yaml": _config_map(namespace, "shared-infra")}, "infra config")
    settings = tmp_path / "sources.yaml"
    settings.write_text(yaml.safe_dump({"sources": [
        {"name": "apps", "url": upstream.bare.as_uri(), "paths": ["cfg"], "gitRollback": "revert"},
        {"name": "infra", "url": infra.bare.as_uri(), "paths": ["cfg"], "readonly": True},
    ]}))
    controller = ControllerProcess(local_stack, namespace, tmp_path,
                                   extra=("--git-config", str(settings), "--git-inventory-namespace", namespace,
                                          "--git-poll-interval", "1"),
                                   env={"CANARY_CACHE_DIR": str(tmp_path / "cache")})
    controller.start()
    try:
        for source, name in (("apps", "from-apps"), ("infra", "from-infra"), ("infra", "shared-infra")):
            wait_until(lambda s=source: _inventory(kube, namespace, s), lambda text, n=name: n in text,  # type: ignore[misc]
                       what=f"source {source} to record ConfigMap {name}", timeout=30, interval=0.2)
            assert kube.get("v1", "ConfigMap", name, namespace=namespace) is not None
        assert "from-infra" not in _inventory(kube, namespace, "apps"), "each source keeps its own inventory"
        assert "from-infra" in _inventory(kube, namespace, "infra")

        infra.commit({"cfg/shared.yaml": None}, "shared config moves elsewhere")
        wait_until(lambda: kube.get("v1", "ConfigMap", "shared-infra", namespace=namespace),
                   lambda found: found is None,
                   what="the infra source to prune shared-infra", timeout=30, interval=0.2)
        assert kube.get("v1", "ConfigMap", "from-apps", namespace=namespace) is not None
        assert kube.get("v1", "ConfigMap", "from-infra", namespace=namespace) is not None

        synced = [e for e in kube.list_objects("v1", "Event", namespace=namespace)
                  if e["involvedObject"]["name"] == "canary-gitsync-infra" and e["reason"] == "Synced"]
        assert any("pruned 1" in e["message"] for e in synced), [e["message"] for e in synced]

        assert f"commit:  {infra.head()}" in sync_status(local_stack, namespace, "--source", "infra")
        both = sync_status(local_stack, namespace)
        assert "source:  apps\n" in both, both
        assert "source:  infra\n" in both, both
    finally:
        controller.stop()
