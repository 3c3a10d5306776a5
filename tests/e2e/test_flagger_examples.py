"""Flagger's own e2e and example Canaries (tests/e2e/data/flagger), converted with ``canary convert``
and released here as a user would: each file in a namespace of its own, all at once under one
controller that watches every namespace, so the corpus takes about as long as its slowest member.

A file is Flagger's manifests with short timings and every webhook URL written as ``${HOOKS}``
plus a path; the test serves a receiver that answers 200 everywhere in place of Flagger's load
tester. Its header may say ``# mesh-provider: NAME``, Flagger's ``-mesh-provider`` for the Canaries
without ``spec.provider``, passed to ``canary convert``; and ``# known-failure: REGEX`` for a file
that does not run here yet: its run must then fail with a message matching REGEX (an expected
failure), so that the file's test fails as soon as the cause is fixed and the line must go. The
CRDs a file needs come from its routers' plugins and the vendored CRDs that define its other kinds,
so a file for a new router needs no change here.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from canary.kube import Obj
from canary.kube.client import Kube
from canary.local import stack
from canary.local.install import VENDOR, crd_folder, install_crds
from canary.local.ports import free_ports
from canary.models.base import API_VERSION
from canary.models.flagger import FLAGGER_MESH_PROVIDER
from canary.routers.registry import plugin_for
from canary.waiting import wait_until
from tests.e2e.controllers import ControllerProcess
from tests.e2e.receivers import Receiver, receiver

CORPUS = Path(__file__).parent / "data" / "flagger"
FILES = sorted(CORPUS.glob("*.yaml"))
HOOKS = "${HOOKS}"
MESH_PROVIDER = re.compile(r"^#\s*mesh-provider:\s*(\S+)\s*$", re.MULTILINE)
KNOWN_FAILURE = re.compile(r"^#\s*known-failure:\s*(.+?)\s*$", re.MULTILINE)
SKIP = re.compile(r"^#\s*skip:\s*(.+?)\s*$", re.MULTILINE)
"""A file converted but not released, for the reason given (a run that is not reliable yet)."""
NEW_TAG = "6.0.1"
# Hooks a successful run calls at least once; rollback and event hooks are not for a promotion.
CALLED_ON_PROMOTION = {"confirm-rollout", "pre-rollout", "rollout", "confirm-traffic-increase", "confirm-promotion",
                       "post-rollout"}

pytestmark = pytest.mark.timeout(600)  # the first test also waits for the whole corpus


@dataclass
class Run:
    """What happened to one file: its conversion, then its release."""

    path: Path
    namespace: str
    mesh_provider: str
    known_failure: re.Pattern[str] | None
    skip: str | None = None
    exit_code: int = 0
    stderr: str = ""
    documents: list[Obj] = field(default_factory=list)
    statuses: dict[str, Obj] = field(default_factory=dict)
    error: BaseException | None = None
    seconds: float = 0.0

    @classmethod
    def of(cls, path: Path, *, suffix: str) -> Run:
        """A run of the file ``path``, in its own namespace, with what its header says."""
        text = path.read_text()
        provider, known = MESH_PROVIDER.search(text), KNOWN_FAILURE.search(text)
        return cls(path=path, namespace=f"flagger-{path.stem}-{suffix}"[:63],
                   mesh_provider=provider.group(1) if provider else FLAGGER_MESH_PROVIDER,
                   known_failure=re.compile(known.group(1)) if known else None,
                   skip=skipped.group(1) if (skipped := SKIP.search(text)) else None)

    @property
    def canaries(self) -> list[Obj]:
        return [d for d in self.documents if d.get("kind") == "Canary"]

    @property
    def failed_as_known(self) -> bool:
        return self.error is not None and self.known_failure is not None \
            and self.known_failure.search(str(self.error)) is not None


class ClusterWideController(ControllerProcess):
    """``canary controller`` without --namespace: it watches every namespace, as a cluster install does."""

    def start(self) -> None:
        (self.port,) = free_ports(1)
        argv = [sys.executable, "-m", "canary", "controller", "--kubeconfig", self.stack.kubeconfig,
                "--metrics-server", self.stack.prometheus_url, "--port", str(self.port), "--log-level", "info"]
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=dict(os.environ))
        try:
            wait_until(self._ready, bool, what=f"the controller to be ready (log {self.log})", timeout=60)
        except BaseException:
            self.stop()
            raise


def convert(run: Run, hooks: Receiver, folder: Path) -> None:
    """``canary convert`` on the file with ``${HOOKS}`` made the receiver's URL, as a user runs it."""
    source = folder / run.path.name
    source.write_text(run.path.read_text().replace(HOOKS, hooks.url("")))
    done = subprocess.run([sys.executable, "-m", "canary", "convert", "--mesh-provider", run.mesh_provider,
                           str(source)], capture_output=True, text=True, timeout=60, check=False)
    run.exit_code, run.stderr = done.returncode, done.stderr
    if done.returncode == 0:
        run.documents = [d for d in yaml.safe_load_all(done.stdout) if d]


def vendored_kinds() -> dict[tuple[str, str], str]:
    """(group, kind) -> the manifests/vendor folder whose CRDs define it."""
    found = {}
    for path in VENDOR.glob("*/*.yaml"):
        for doc in yaml.safe_load_all(path.read_text()):
            if (doc or {}).get("kind") == "CustomResourceDefinition":
                found[(doc["spec"]["group"], doc["spec"]["names"]["kind"])] = path.parent.name
    return found


def crds_needed(runs: list[Run]) -> set[str]:
    """The vendored CRD folders of every router the corpus uses and of every other kind it creates."""
    kinds = vendored_kinds()
    needed: set[str] = set()
    for run in runs:
        for doc in run.documents:
            if doc.get("kind") == "Canary":
                needed.update(plugin_for(doc["spec"]["provider"], default="", where=run.path.name).crds)
            group = str(doc.get("apiVersion", "")).rpartition("/")[0]
            if (group, doc.get("kind")) in kinds:
                needed.add(kinds[(group, doc["kind"])])
    return needed


def phase_of(kube: Kube, namespace: str, name: str) -> Obj:
    """The Canary's status, read from the API server (empty before the controller wrote one)."""
    found = kube.get(API_VERSION, "Canary", name, namespace=namespace) or {}
    return dict(found.get("status") or {})


REFUSAL_SETTLES = 15.0
"""Seconds a Ready=False condition must last to count as a refusal: objects created together reach the
controller's caches in any order (a routeRef's ApisixRoute after its Canary), and the next tick sees them."""


def wait_phases(kube: Kube, run: Run, phase: str, *, timeout: float) -> None:
    """Every Canary of the file in ``phase``; a Canary that failed, or is refused (Ready=False for
    ``REFUSAL_SETTLES`` seconds), stops the wait."""
    refused_since: dict[str, float] = {}

    def statuses() -> dict[str, Obj]:
        run.statuses = {c["metadata"]["name"]: phase_of(kube, run.namespace, c["metadata"]["name"])
                        for c in run.canaries}
        return run.statuses

    def settled(found: dict[str, Obj]) -> bool:
        for name, status in found.items():
            ready = next((c for c in status.get("conditions") or [] if c["type"] == "Ready"), None)
            if ready is None or ready["status"] != "False":
                refused_since.pop(name, None)
            elif time.monotonic() - refused_since.setdefault(name, time.monotonic()) >= REFUSAL_SETTLES:
                raise AssertionError(f"{run.path.name}: Canary {name} is not ready ({ready['reason']}): "
                                     f"{ready['message']}")
            if status.get("phase") == "Failed":
                failing = [f"{r['name']}: {r.get('message') or r['verdict']}" for r in status.get("analysis") or []
                           if r["verdict"] != "pass"]
                raise AssertionError(f"{run.path.name}: Canary {name} failed; last checks: {failing[-4:]}")
        return all(s.get("phase") == phase for s in found.values())

    wait_until(statuses, settled, what=f"{run.path.name}: every Canary in {run.namespace} to reach {phase}",
               timeout=timeout, interval=0.5)


def targets(run: Run) -> list[Obj]:
    """The targetRef of every Canary in the file (linkerd-canary.yaml has two)."""
    return [c["spec"]["targetRef"] for c in run.canaries]


def release(kube: Kube, namespace: str, ref: Obj) -> None:
    """A new version: every container of the target's pod template on tag NEW_TAG (as ``kubectl set image``)."""
    target = kube.get(ref["apiVersion"], ref["kind"], ref["name"], namespace=namespace)
    assert target is not None, f"{ref['kind']} {namespace}/{ref['name']}"
    containers = target["spec"]["template"]["spec"]["containers"]
    for container in containers:
        container["image"] = f"{container['image'].rpartition(':')[0]}:{NEW_TAG}"
    kube.merge_patch(ref["apiVersion"], ref["kind"], ref["name"],
                     {"spec": {"template": {"spec": {"containers": containers}}}}, namespace=namespace)


def play(run: Run, kubeconfig: Path) -> None:
    """Create the file's objects, wait for Initialized, release every target, wait for Succeeded."""
    started = time.monotonic()
    kube = Kube.from_kubeconfig(kubeconfig)
    try:
        for doc in run.documents:
            kube.create({**doc, "metadata": {**doc["metadata"], "namespace": run.namespace}})
        wait_phases(kube, run, "Initialized", timeout=90)
        for ref in targets(run):
            release(kube, run.namespace, ref)
        wait_phases(kube, run, "Succeeded", timeout=180)
    except BaseException as exc:  # reported by the file's test
        run.error = exc
    finally:
        run.seconds = time.monotonic() - started
        kube.close()


@dataclass
class Corpus:
    """The runs by file stem, and what the tests read afterwards."""

    runs: dict[str, Run]
    hooks: Receiver
    kube: Kube
    controller: ControllerProcess


@pytest.fixture(scope="module")
def corpus(local_stack: stack.StackState, kube: Kube, canary_crds: list[str],
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[Corpus]:
    """Every file converted, created and released concurrently under one controller."""
    folder = tmp_path_factory.mktemp("flagger")
    suffix = os.urandom(3).hex()
    runs = {p.stem: Run.of(p, suffix=suffix) for p in FILES}
    with receiver() as hooks, ThreadPoolExecutor(max_workers=len(runs)) as pool:
        # One conversion per core: each is an interpreter start (about 1.5 s of CPU), and sixty at once
        # on a small machine outlast convert's timeout.
        with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as converters:
            list(converters.map(lambda run: convert(run, hooks, folder), runs.values()))
        for name in sorted(crds_needed(list(runs.values()))):
            install_crds(kube, crd_folder(name), timeout=60)
        for run in runs.values():
            kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": run.namespace}})
        # Pods are refused until kube-controller-manager has made each namespace's default ServiceAccount.
        wait_until(lambda: [r.namespace for r in runs.values()
                            if kube.get("v1", "ServiceAccount", "default", namespace=r.namespace) is None],
                   lambda missing: not missing, what="the default ServiceAccounts", timeout=30)
        controller = ClusterWideController(local_stack, "(all)", folder / "controller")
        controller.start()
        try:
            started = time.monotonic()
            list(pool.map(lambda run: play(run, Path(local_stack.kubeconfig)),
                          [r for r in runs.values() if r.exit_code == 0 and r.skip is None]))
            slowest = max(runs.values(), key=lambda r: r.seconds)
            print(f"\nFlagger corpus: {len(runs)} files in {time.monotonic() - started:.0f}s; slowest "
                  f"{slowest.path.name} {slowest.seconds:.0f}s")
            yield Corpus(runs=runs, hooks=hooks, kube=kube, controller=controller)
        finally:
            controller.stop()
            if any(r.error is not None and not r.failed_as_known for r in runs.values()):
                print(controller.log_tail(200))
            for run in runs.values():
                kube.delete("v1", "Namespace", run.namespace)


def hook_types_called(hooks: Receiver, namespace: str, name: str) -> set[str]:
    """The webhook types the receiver heard for one Canary (the payload names it and its type)."""
    with hooks.lock:
        return {str(body.get("type")) for _, body in hooks.calls
                if body.get("namespace") == namespace and body.get("name") == name}


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_flagger_canary_converts_and_is_promoted(corpus: Corpus, path: Path) -> None:
    run = corpus.runs[path.stem]
    assert run.exit_code == 0, f"canary convert {path.name} exited {run.exit_code}:\n{run.stderr}"
    assert run.canaries, f"{path.name} has no Canary"
    left = [f"{d['kind']} {d['metadata']['name']}" for d in run.documents if d["apiVersion"].startswith("flagger.app/")]
    assert not left, f"{path.name}: not converted: {left}"
    originals = {d["metadata"]["name"]: d for d in yaml.safe_load_all(path.read_text())
                 if d and d.get("kind") == "Canary"}
    for canary in run.canaries:
        name = canary["metadata"]["name"]
        assert canary["apiVersion"] == API_VERSION
        assert canary["spec"]["provider"] == originals[name]["spec"].get("provider", run.mesh_provider)
    if run.skip is not None:
        pytest.skip(f"{path.name} converted, not released: {run.skip}")
    if run.known_failure is not None:
        assert run.failed_as_known, f"{path.name}: expected a failure matching {run.known_failure.pattern!r} " \
            f"(its known-failure header), got {run.error or 'a promotion'}: fixed? then remove the header"
        pytest.xfail(str(run.error))
    if run.error is not None:
        raise run.error

    for canary in run.canaries:
        spec, name = canary["spec"], canary["metadata"]["name"]
        ref = spec["targetRef"]
        primary = corpus.kube.get(ref["apiVersion"], ref["kind"], f"{ref['name']}-primary", namespace=run.namespace)
        assert primary is not None, f"{ref['kind']} {ref['name']}-primary"
        images = {c["image"].rpartition(":")[2] for c in primary["spec"]["template"]["spec"]["containers"]}
        assert images == {NEW_TAG}, f"{name}: the primary runs {images}"
        if spec.get("skipAnalysis"):
            continue
        judged = {r["name"]: r for r in run.statuses[name].get("analysis") or []}
        for metric in spec["analysis"].get("metrics") or []:
            assert metric["name"] in judged, f"{name}: {metric['name']} was not judged: {judged}"
            assert judged[metric["name"]]["verdict"] == "pass", judged[metric["name"]]
        expected = {h.get("type", "rollout") for h in spec["analysis"].get("webhooks") or []} & CALLED_ON_PROMOTION
        called = hook_types_called(corpus.hooks, run.namespace, name)
        assert expected <= called, f"{name}: hooks {sorted(expected - called)} were never called"

