"""The Git sync at size: a repository of 5000 objects next to ``kubectl apply --server-side`` of the same tree.

Run: ``.venv/bin/python -m bench.gitsync_scale [--objects 5000] [--pushes 100] [--state-dir DIR]``
(``make bench`` runs it). It starts a local stack of its own (binaries must be built; taken down and
purged at the end), commits N objects (Namespaces, Deployments at 0 replicas, Services, ConfigMaps: one a
file, a hundred a namespace) to a bare repository, and prints:

- a first sync, the resync after it (which sees what the Deployment controller wrote), a no-op resync
  and a one-file change (sync start to applied), run by a sync process
  of their own (``GitSync`` as the controller runs it), with that process's peak RSS (VmHWM), and the
  peak RSS of a process that only renders the tree (one copy of the rendered objects);
- ``kubectl apply --server-side -R -f`` of the same tree (namespaces renamed ``kc-...``, so that its
  first apply creates too): first apply, no-op, one file changed;
- push-to-applied p50/p99 over ``--pushes`` pushes of a one-file change, each announced by a signed
  ``POST /hooks/git/<source>`` to a running ``canary controller --git-url``: from the end of ``git
  push`` until a watch sees the new value in the cluster.

``--json FILE`` also writes the figures as JSON.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from canary.gitsync.config import DEFAULT_SOURCE
from canary.gitsync.loop import GitSync, SyncSettings, summary
from canary.gitsync.render import render
from canary.gitsync.source import GitSource
from canary.gitsync.webhook import signature
from canary.kube.client import Kube
from canary.local import stack
from canary.local.install import CANARY_CRDS, install_crds
from canary.local.ports import free_ports

NAMESPACE_PREFIX = "scale-"
PUSHED = "pushed"  # the ConfigMap every push changes, with the label below
PUSHED_LABEL = "bench.canary.dev/pushed"
SOURCE = DEFAULT_SOURCE  # the name of the controller's --git-url source: both keep one inventory
SECRET = "bench-webhook-secret"  # noqa: S105 - the bench's own controller
PER_NAMESPACE = 100
PASSES = "canary_gitsync_duration_seconds_count"  # the controller's sync passes so far
GIT_ENV = {"GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "b@x", "GIT_COMMITTER_NAME": "bench",
           "GIT_COMMITTER_EMAIL": "b@x", "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}


def git(*args: str, cwd: Path) -> str:
    """Run git quietly, with a fixed identity; its output."""
    done = subprocess.run(["git", *args], cwd=cwd, env={**os.environ, **GIT_ENV}, check=True, capture_output=True,
                          text=True)
    return done.stdout.strip()


def _deployment(name: str, namespace: str, index: int) -> dict[str, Any]:
    labels = {"app": name}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": namespace,
                                                                        "labels": labels},
            "spec": {"replicas": 0, "selector": {"matchLabels": labels}, "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "app", "image": f"registry.example/app:{index % 7}.0.0",
                                         "ports": [{"containerPort": 8080, "name": "http"}],
                                         "env": [{"name": "INDEX", "value": str(index)}, {"name": "MODE",
                                                                                         "value": "bench"}],
                                         "resources": {"requests": {"cpu": "10m", "memory": "32Mi"}}}]}}}}


def _service(name: str, namespace: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": namespace},
            "spec": {"selector": {"app": name}, "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}}


def _config_map(name: str, namespace: str, index: int) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": namespace},
            "data": {"index": str(index), "payload": "x" * 200}}


def pushed_map(namespace: str, value: int) -> dict[str, Any]:
    """The ConfigMap the pushes change."""
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": PUSHED, "namespace": namespace, "labels": {PUSHED_LABEL: "true"}},
            "data": {"push": str(value)}}


def namespaces(objects: int, prefix: str) -> list[str]:
    """The tree's namespaces: one per hundred objects."""
    return [f"{prefix}{index:03d}" for index in range(max(1, objects // PER_NAMESPACE))]


def write_tree(folder: Path, objects: int, prefix: str) -> None:
    """N objects, one a file: a Namespace per hundred, then apps (Deployment, Service, ConfigMap) round-robin
    over the namespaces, and the ConfigMap the pushes change."""
    names = namespaces(objects, prefix)
    files: list[tuple[str, dict[str, Any]]] = [
        (f"{ns}/00-namespace.yaml", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
        for ns in names]
    files.append((f"{names[0]}/00-pushed.yaml", pushed_map(names[0], 0)))
    suffixes = ("deployment", "service", "configmap")
    index = 0
    while len(files) < objects:
        ns = names[index % len(names)]
        app = f"app-{index // len(names):03d}"
        made = (_deployment(app, ns, index), _service(app, ns), _config_map(app, ns, index))
        for body, suffix in zip(made, suffixes, strict=True):
            if len(files) < objects:
                files.append((f"{ns}/{app}-{suffix}.yaml", body))
        index += 1
    for name, body in files:
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(body, sort_keys=False))


def peak_rss_mib(pid: str = "self") -> float:
    """VmHWM of a process, in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


# --- the sync process -------------------------------------------------------------------------------------------

def worker(args: argparse.Namespace) -> None:
    """Run in a process of its own: first sync, no-op resync, one-file change; print the figures as JSON."""
    kube = Kube.from_kubeconfig(Path(args.kubeconfig))
    source = GitSource(name=SOURCE, url=args.url, paths=("k8s",))
    gitsync = GitSync(kube, SyncSettings(sources=(source,)), cache_root=Path(args.cache))
    figures: dict[str, Any] = {}

    def timed(name: str, run: Any) -> None:  # noqa: ANN401 - a report or a line
        began = time.perf_counter()
        outcome = run()
        figures[name] = time.perf_counter() - began
        figures[f"{name}_rss_mib"] = peak_rss_mib()
        print(f"  {name}: {outcome if isinstance(outcome, str) else summary(outcome)}", file=sys.stderr)

    timed("first", lambda: gitsync.sync(source))
    # Right after the first sync, the Deployment controller has annotated each Deployment (its revision)
    # and written its status: the first resync sees them changed and checks them once more.
    timed("settle", lambda: gitsync.sync(source))
    timed("noop", lambda: gitsync.sync(source))
    work = Path(args.work)
    names = namespaces(args.objects, NAMESPACE_PREFIX)
    (work / "k8s" / names[0] / "00-pushed.yaml").write_text(yaml.safe_dump(pushed_map(names[0], -1)))
    git("commit", "--quiet", "--all", "-m", "one file", cwd=work)
    git("push", "--quiet", "origin", "main", cwd=work)
    timed("change", lambda: gitsync.poll(SOURCE))
    print(json.dumps(figures))


def render_only(args: argparse.Namespace) -> None:
    """Render the checkout once and print the peak RSS: what one copy of the rendered objects costs."""
    before = peak_rss_mib()
    rendered = render(Path(args.checkout), ("k8s",))
    print(json.dumps({"objects": len(rendered.objects), "imports_mib": before, "rendered_mib": peak_rss_mib()}))


# --- the driver -------------------------------------------------------------------------------------------------

@dataclass
class Watcher:
    """Times when each value of the pushed ConfigMap appears in the cluster (a watch of its label)."""

    kube: Any
    namespace: str

    def __post_init__(self) -> None:
        self.seen: dict[str, float] = {}
        self.changed = threading.Condition()
        self.stopped = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stopped:
            try:
                items, version = self.kube.list_with_version("v1", "ConfigMap", namespace=self.namespace,
                                                             label_selector=f"{PUSHED_LABEL}=true")
                for item in items:
                    self._saw(item)
                for _, obj in self.kube.watch("v1", "ConfigMap", namespace=self.namespace, resource_version=version,
                                              label_selector=f"{PUSHED_LABEL}=true", timeout_seconds=60):
                    self._saw(obj)
                    if self.stopped:
                        return
            except Exception as exc:  # an expired or broken watch: list again
                if not self.stopped:
                    print(f"watch ended ({exc}); listing again", file=sys.stderr)
                    time.sleep(0.5)

    def _saw(self, obj: dict[str, Any]) -> None:
        value = (obj.get("data") or {}).get("push")
        if value is None:
            return
        with self.changed:
            self.seen.setdefault(str(value), time.perf_counter())
            self.changed.notify_all()

    def wait_for(self, value: str, timeout: float = 300.0) -> float:
        with self.changed:
            if not self.changed.wait_for(lambda: value in self.seen, timeout=timeout):
                raise SystemExit(f"push {value} was not applied within {timeout:g}s")
            return self.seen[value]


def _kubectl(tree: Path, kubeconfig: str) -> float:
    began = time.perf_counter()
    subprocess.run(["/usr/bin/kubectl", "apply", "--server-side", "--field-manager=bench-kubectl", "-R", "-f",
                    str(tree)], env={**os.environ, "KUBECONFIG": kubeconfig}, check=True, capture_output=True)
    return time.perf_counter() - began


def _run_child(argv: list[str], env: dict[str, str] | None = None) -> tuple[dict[str, Any], float]:
    """Run a python child; its JSON line and its peak RSS in MiB (from wait4)."""
    with subprocess.Popen(argv, stdout=subprocess.PIPE, env=env) as process:
        assert process.stdout is not None
        out = process.stdout.read()
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise SystemExit(f"{argv[2:4]} failed with {process.returncode}")
    return json.loads(out.decode().strip().splitlines()[-1]), usage.ru_maxrss / 1024


def _controller(kubeconfig: str, url: str, folder: Path, port: int) -> subprocess.Popen[bytes]:
    argv = [sys.executable, "-m", "canary", "controller", "--kubeconfig", kubeconfig, "--namespace", "canary-system",
            "--port", str(port), "--git-url", url, "--git-path", "k8s", "--git-poll-interval", "1h",
            "--git-sync-interval", "1h"]
    env = {**os.environ, "CANARY_GIT_WEBHOOK_SECRET": SECRET, "CANARY_CACHE_DIR": str(folder / "controller-cache")}
    with (folder / "controller.log").open("ab") as log:
        return subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env)


def _metric(port: int, name: str) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name))


def _wait(condition: Any, what: str, timeout: float) -> None:  # noqa: ANN401 - a callable
    deadline = time.monotonic() + timeout
    while True:
        try:
            if condition():
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.2)


def _hook(port: int) -> None:
    body = json.dumps({"ref": "refs/heads/main"}).encode()
    request = urllib.request.Request(f"http://127.0.0.1:{port}/hooks/git/{SOURCE}", data=body, method="POST",
                                     headers={"X-Hub-Signature-256": signature(SECRET, body),
                                              "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - http to loopback
        if response.status != 202:
            raise SystemExit(f"webhook answered {response.status}")


def _pushes(kubeconfig: str, url: str, folder: Path, work: Path, *, count: int, objects: int) -> dict[str, Any]:
    (port,) = free_ports(1)
    started = time.perf_counter()
    controller = _controller(kubeconfig, url, folder, port)
    # BENCH_PY_SPY=FILE: py-spy samples the controller and writes its folded stacks there.
    profile = os.environ.get("BENCH_PY_SPY")
    spy = subprocess.Popen([str(Path(sys.executable).with_name("py-spy")), "record", "--nonblocking", "--format", "raw",
                            "--rate", "200", "-o", profile, "-p", str(controller.pid)], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL) if profile else None
    try:
        def synced_once() -> bool:
            if controller.poll() is not None:
                raise SystemExit(f"the controller exited with {controller.returncode}: see {folder / 'controller.log'}")
            return _metric(port, PASSES) >= 1

        _wait(synced_once, f"the controller's first sync (log {folder / 'controller.log'})", timeout=1800)
        first_sync = time.perf_counter() - started
        namespace = namespaces(objects, NAMESPACE_PREFIX)[0]
        watcher = Watcher(Kube.from_kubeconfig(Path(kubeconfig)), namespace)
        pushed = work / "k8s" / namespace / "00-pushed.yaml"
        delays = []
        passes = _metric(port, PASSES)
        try:
            for push in range(1, count + 1):
                pushed.write_text(yaml.safe_dump(pushed_map(namespace, push)))
                git("commit", "--quiet", "--all", "-m", f"push {push}", cwd=work)
                git("push", "--quiet", "origin", "main", cwd=work)
                began = time.perf_counter()
                _hook(port)
                delays.append(watcher.wait_for(str(push)) - began)
                # The next push once this pass has ended: each push is timed alone.
                _wait(lambda seen=passes: _metric(port, PASSES) > seen, "the sync pass to end", timeout=120)
                passes = _metric(port, PASSES)
        finally:
            watcher.stopped = True
        cuts = statistics.quantiles(delays, n=100, method="inclusive")
        return {"pushes": count, "p50": cuts[49], "p99": cuts[98], "max": max(delays),
                "controller_rss_mib": peak_rss_mib(str(controller.pid)), "first_sync": first_sync,
                "delays": delays}
    finally:
        if spy is not None:
            spy.send_signal(signal.SIGINT)  # py-spy writes what it sampled
            spy.wait(timeout=60)
        controller.terminate()
        controller.wait(timeout=30)


@contextlib.contextmanager
def _stack(state_dir: Path | None, root: Path) -> Iterator[Any]:
    folder = state_dir or root / "stack"
    if folder.exists():
        stack.down(folder, purge=True)  # what an interrupted run left: the first sync must create everything
    state = stack.up(stack.StackOptions(state_dir=folder))
    try:
        yield state
    finally:
        stack.down(folder, purge=True)


def main(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="canary-bench-scale-") as temporary:
        root = Path(temporary)
        with _stack(args.state_dir, root) as state:
            kube = Kube.from_kubeconfig(Path(state.kubeconfig))
            kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "canary-system"}})
            install_crds(kube, CANARY_CRDS)  # the controller is ready once its caches of them are
            bare, work = root / "app.git", root / "work"
            git("init", "--quiet", "--bare", "--initial-branch=main", str(bare), cwd=root)
            git("clone", "--quiet", str(bare), str(work), cwd=root)
            git("checkout", "--quiet", "-b", "main", cwd=work)
            write_tree(work / "k8s", args.objects, NAMESPACE_PREFIX)
            git("add", "--all", cwd=work)
            git("commit", "--quiet", "-m", f"{args.objects} objects", cwd=work)
            git("push", "--quiet", "origin", "main", cwd=work)
            figures: dict[str, Any] = {"objects": args.objects}
            print(f"{args.objects} objects in {len(namespaces(args.objects, NAMESPACE_PREFIX))} namespaces",
                  flush=True)
            if args.sync_process:
                me = [sys.executable, "-m", "bench.gitsync_scale"]
                synced, rss = _run_child([*me, "worker", "--kubeconfig", state.kubeconfig, "--url", bare.as_uri(),
                                          "--cache", str(root / "cache"), "--work", str(work),
                                          "--objects", str(args.objects)])
                figures["sync"] = {**synced, "peak_rss_mib": rss}
                checkout = next((root / "cache").rglob("repo"))
                figures["render_only"], figures["render_only"]["peak_rss_mib"] = _run_child(
                    [*me, "render-only", "--checkout", str(checkout)])
                print(f"sync process: first {synced['first']:.2f}s, first resync {synced['settle']:.2f}s, no-op resync "
                      f"{synced['noop']:.2f}s, one-file "
                      f"change {synced['change']:.2f}s; peak RSS {rss:.0f} MiB (a process that only renders the tree: "
                      f"{figures['render_only']['peak_rss_mib']:.0f} MiB, of which imports "
                      f"{figures['render_only']['imports_mib']:.0f} MiB)", flush=True)
                if args.kubectl:
                    tree = root / "kubectl"
                    write_tree(tree, args.objects, "kc-")
                    first = _kubectl(tree, state.kubeconfig)
                    noop = _kubectl(tree, state.kubeconfig)
                    changed = tree / f"{namespaces(args.objects, 'kc-')[0]}/00-pushed.yaml"
                    changed.write_text(yaml.safe_dump(pushed_map(namespaces(args.objects, "kc-")[0], -1)))
                    change = _kubectl(tree, state.kubeconfig)
                    figures["kubectl"] = {"first": first, "noop": noop, "change": change}
                    print(f"kubectl apply --server-side -R -f: first {first:.2f}s, no-op {noop:.2f}s, one file changed "
                          f"{change:.2f}s; ours/kubectl: first {synced['first'] / first:.3f}x, no-op "
                          f"{synced['noop'] / noop:.3f}x, one-file change {synced['change'] / change:.3f}x", flush=True)
            if args.pushes:
                figures["push"] = _pushes(state.kubeconfig, bare.as_uri(), root, work, count=args.pushes,
                                          objects=args.objects)
                _print_pushes(figures["push"])
            if args.json:
                Path(args.json).write_text(json.dumps(figures, indent=1))
            return figures


def _print_pushes(push: dict[str, Any]) -> None:
    print(f"push-to-applied by webhook over {push['pushes']} pushes: p50 {push['p50']:.3f}s, p99 "
          f"{push['p99']:.3f}s, max {push['max']:.3f}s; controller peak RSS {push['controller_rss_mib']:.0f} MiB "
          f"(from its start to the end of its first sync: {push['first_sync']:.1f}s)", flush=True)


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.gitsync_scale", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command")
    run = commands.add_parser("worker")
    for option in ("--kubeconfig", "--url", "--cache", "--work"):
        run.add_argument(option, required=True)
    run.add_argument("--objects", type=int, required=True)
    only = commands.add_parser("render-only")
    only.add_argument("--checkout", required=True)
    parser.add_argument("--objects", type=int, default=5000)
    parser.add_argument("--pushes", type=int, default=100)
    parser.add_argument("--state-dir", type=Path, default=None, help="the stack's folder (a temporary one by "
                        "default); the stack is taken down and its files removed at the start and the end")
    parser.add_argument("--no-kubectl", dest="kubectl", action="store_false")
    parser.add_argument("--no-sync-process", dest="sync_process", action="store_false",
                        help="only the pushes (the controller's first sync then creates the objects)")
    parser.add_argument("--json", default=None)
    return parser.parse_args()


if __name__ == "__main__":
    arguments = _arguments()
    if arguments.command == "worker":
        worker(arguments)
    elif arguments.command == "render-only":
        render_only(arguments)
    else:
        main(arguments)
