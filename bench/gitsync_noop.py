"""A no-op sync of a repository with 500 objects, next to ``kubectl apply --server-side`` of the same files.

Run: ``.venv/bin/python -m bench.gitsync_noop [objects]``. Starts its own local stack (binaries
must be built), commits N ConfigMaps to a bare repository, syncs once (creates), then times a sync
with nothing to change, and ``kubectl apply --server-side`` of the same folder on the same cluster.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from canary.gitsync.loop import GitSync, SyncSettings, summary
from canary.gitsync.source import GitSource
from canary.kube.client import Kube
from canary.local import stack

NAMESPACE = "bench-gitsync"


def _git(*args: str, cwd: Path) -> None:
    env = {**os.environ, "GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "b@x", "GIT_COMMITTER_NAME": "bench",
           "GIT_COMMITTER_EMAIL": "b@x", "GIT_CONFIG_GLOBAL": os.devnull}
    subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True)


def _repository(folder: Path, objects: int) -> tuple[str, Path]:
    bare, work = folder / "app.git", folder / "work"
    _git("init", "--quiet", "--bare", "--initial-branch=main", str(bare), cwd=folder)
    _git("clone", "--quiet", str(bare), str(work), cwd=folder)
    manifests = work / "k8s"
    manifests.mkdir()
    (manifests / "namespace.yaml").write_text(yaml.safe_dump(
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}))
    for index in range(objects - 1):
        (manifests / f"cm-{index:04d}.yaml").write_text(yaml.safe_dump({
            "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"cm-{index:04d}", "namespace": NAMESPACE},
            "data": {"index": str(index), "payload": "x" * 200}}))
    _git("checkout", "--quiet", "-b", "main", cwd=work)
    _git("add", "--all", cwd=work)
    _git("commit", "--quiet", "-m", "500 objects", cwd=work)
    _git("push", "--quiet", "origin", "main", cwd=work)
    return bare.as_uri(), manifests


def main(objects: int, runs: int = 3) -> None:
    with tempfile.TemporaryDirectory(prefix="canary-bench-") as folder:
        root = Path(folder)
        state = stack.up(stack.StackOptions(state_dir=root / "stack"))
        try:
            url, manifests = _repository(root, objects)
            kube = Kube.from_kubeconfig(Path(state.kubeconfig))
            kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "canary-system"}})
            source = GitSource(name="bench", url=url, paths=("k8s",))
            gitsync = GitSync(kube, SyncSettings(sources=(source,)), cache_root=root / "cache")
            began = time.perf_counter()
            print("first sync:", summary(gitsync.sync(source)), f"({time.perf_counter() - began:.2f}s wall)")
            ours = []
            for _ in range(runs):
                began = time.perf_counter()
                report = gitsync.sync(source)
                ours.append(time.perf_counter() - began)
                if report.created or report.changed:
                    raise SystemExit(f"a no-op sync wrote something: {summary(report)}")
            kubectl = []
            env = {**os.environ, "KUBECONFIG": state.kubeconfig}
            kubectl_path = shutil.which("kubectl")
            if kubectl_path is None:
                print("kubectl not found: no comparison")
            else:
                for _ in range(runs + 1):
                    began = time.perf_counter()
                    subprocess.run([kubectl_path, "apply", "--server-side", "--field-manager=bench", "-f",
                                    str(manifests)], env=env, check=True, capture_output=True)
                    kubectl.append(time.perf_counter() - began)
                kubectl = kubectl[1:]  # the first one creates under another field manager
            print(f"{objects} objects, median of {runs}: no-op sync (fetch + render + dry-run compare) "
                  f"{statistics.median(ours):.2f}s"
                  + (f"; kubectl apply --server-side of the same files {statistics.median(kubectl):.2f}s"
                     if kubectl else ""))
        finally:
            stack.down(root / "stack")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 500)
