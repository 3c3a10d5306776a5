"""Every example runs from its README, on the local stack, to the outcome the README promises.

A new user reads examples/NN-topic/README.md top to bottom in a terminal; this test does the same. Blocks marked
``<!-- test: run -->`` run literally with bash from the repository root, in order, each in the shell the earlier
ones left (their exported variables). ``<!-- test: setup -->`` blocks are what the test provides instead: the
session's stack (KUBECONFIG, PROMETHEUS_URL, canary on PATH, as ``eval "$(canary local up)"`` gives) and, for
each ``canary controller`` line, a controller process with that line's own options, restricted to the example's
namespace so that it leaves other tests' canaries alone. The outcome is checked on the cluster; then the
``<!-- test: cleanup -->`` blocks run. ``skip`` blocks are not part of the walk-through.

The examples run at once, each in a thread of its own, so that they take about as long as the longest one. Git
checkouts go to the test's folder (CANARY_CACHE_DIR), and ``mktemp`` makes its files there (TMPDIR).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from canary.kube.client import Kube
from canary.local import stack
from canary.waiting import wait_until
from tests.docblocks import REPO, Block, blocks, canary_arguments, logical_lines, simple_commands, without_redirections
from tests.e2e.canaries import canary_status, deployment, image_of
from tests.e2e.controllers import ControllerProcess

PODINFO = "ghcr.io/stefanprodan/podinfo"


@dataclass(frozen=True)
class Outcome:
    """What the README promises at its end: the Canary's phase and the images, and what its commands print."""

    namespace: str
    phase: str
    primary_image: str
    target_image: str | None = None
    printed: tuple[str, ...] = ()
    canary: str = "podinfo"


OUTCOMES = {
    # 6.7.1 promoted, then 6.7.2 with 30% errors rolled back.
    "01-gateway-api-canary": Outcome("example-01", "Failed", f"{PODINFO}:6.7.1"),
    "02-blue-green-kubernetes": Outcome("example-02", "Succeeded", f"{PODINFO}:6.7.1"),
    "03-deployment-annotations": Outcome("example-03", "Succeeded", f"{PODINFO}:6.7.1"),
    # 6.7.1 promoted by a commit, 6.7.2 rolled back and reverted in Git: the cluster and Git agree on 6.7.1.
    "04-git-sync": Outcome("example-04", "Failed", f"{PODINFO}:6.7.1", target_image=f"{PODINFO}:6.7.1",
                           printed=("Revert podinfo to its promoted revision",)),
}


def test_every_example_promises_an_outcome() -> None:
    assert sorted(OUTCOMES) == sorted(p.parent.name for p in (REPO / "examples").glob("*/README.md"))


class Terminal:
    """A user's terminal: bash in the repository root, whose exported variables last from block to block."""

    def __init__(self, folder: Path, env: dict[str, str], log: list[str]) -> None:
        self.folder = folder
        self.state = folder / "exports.sh"
        self.state.write_text("")
        self.env = env
        self.log = log
        self.printed: list[str] = []

    def run(self, block: Block) -> None:
        script = self.folder / f"block-{block.line}.sh"
        script.write_text(f"set -euo pipefail\nsource {self.state}\n{block.text}\nexport -p > {self.state}\n")
        began = time.monotonic()
        done = subprocess.run(["bash", str(script)], cwd=REPO, env=self.env, capture_output=True, text=True,
                              timeout=300, check=False)
        self.log.append(f"{block.where}: exit {done.returncode} after {time.monotonic() - began:.1f}s\n"
                        f"{done.stdout[-3000:]}")
        self.printed.append(done.stdout + done.stderr)
        assert done.returncode == 0, (f"{block.where} exited with {done.returncode}:\n{block.text}\n"
                                      f"--- stdout\n{done.stdout[-4000:]}\n--- stderr\n{done.stderr[-4000:]}")

    def command(self, line: str) -> tuple[list[str], dict[str, str]]:
        """The words of a ``canary ...`` line as this terminal's bash expands them, and the environment the
        command would have."""
        arguments, environment = self.folder / "arguments", self.folder / "environment"
        script = (f"set -euo pipefail\nsource {self.state}\n"
                  f"canary() {{ printf '%s\\0' \"$@\" > {arguments}; env -0 > {environment}; }}\n"
                  f"{without_redirections(line)}\n")
        subprocess.run(["bash", "-c", script], cwd=REPO, env=self.env, check=True, timeout=30)
        variables = (entry.partition("=") for entry in environment.read_text().split("\0") if entry)
        return arguments.read_text().split("\0")[:-1], {name: value for name, _, value in variables}


def _controller_lines(block: Block) -> list[str]:
    return [line for line in logical_lines(block.text)
            if any((canary_arguments(words) or [""])[0] == "controller" for words in simple_commands(line))]


def _fresh(kube: Kube, namespace: str) -> None:
    """No namespace left by an earlier run: the README creates it."""
    if kube.get("v1", "Namespace", namespace) is not None:
        kube.delete("v1", "Namespace", namespace)
        wait_until(lambda: kube.get("v1", "Namespace", namespace), lambda found: found is None,
                   what=f"namespace {namespace} of an earlier run to be deleted", timeout=120)


def run_example(example: str, local_stack: stack.StackState, folder: Path, log: list[str]) -> None:
    """Follow the example's README as a user would, then check the outcome it promises; raise when it falls short."""
    readme = REPO / "examples" / example / "README.md"
    promised = OUTCOMES[example]
    text = readme.read_text()
    assert f"**{promised.phase}**" in text, f"{readme} does not promise phase {promised.phase}"
    assert promised.primary_image in text, f"{readme} does not promise {promised.primary_image}"
    gitconfig = folder / "gitconfig"
    gitconfig.write_text("[user]\n\tname = Example User\n\temail = user@example.com\n")
    env = {**os.environ, "KUBECONFIG": local_stack.kubeconfig, "PROMETHEUS_URL": local_stack.prometheus_url,
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}", "TMPDIR": str(folder),
           "CANARY_CACHE_DIR": str(folder / "cache"),
           "GIT_CONFIG_GLOBAL": str(gitconfig), "GIT_CONFIG_NOSYSTEM": "1", "COLUMNS": "200"}
    terminal = Terminal(folder, env, log)
    kube = Kube.from_kubeconfig(Path(local_stack.kubeconfig))
    _fresh(kube, promised.namespace)
    controllers: list[ControllerProcess] = []
    try:
        found = blocks(readme)
        for block in found:
            if block.marker == "run":
                terminal.run(block)
            elif block.marker == "setup":
                for line in _controller_lines(block):
                    words, environment = terminal.command(line)
                    controller = ControllerProcess(local_stack, promised.namespace,
                                                   folder / f"controller-{len(controllers)}",
                                                   extra=tuple(words[1:]), env=environment)
                    controllers.append(controller)
                    controller.start()
                    log.append(f"{block.where}: started {' '.join(words)} (log {controller.log})")

        status = canary_status(kube, promised.namespace, promised.canary)
        assert status.get("phase") == promised.phase, status
        assert image_of(deployment(kube, promised.namespace, f"{promised.canary}-primary")) == promised.primary_image
        if promised.target_image is not None:
            assert image_of(deployment(kube, promised.namespace, promised.canary)) == promised.target_image
        printed = "".join(terminal.printed)
        for expected in promised.printed:
            assert expected in printed, f"the README's commands did not print {expected!r}:\n{printed[-4000:]}"

        for block in found:
            if block.marker == "cleanup":
                terminal.run(block)
        assert kube.get("v1", "Namespace", promised.namespace) is None, "the clean-up deletes the namespace"
    except BaseException:
        log += [controller.log_tail() for controller in controllers]
        raise
    finally:
        for controller in controllers:
            controller.stop()
        if kube.get("v1", "Namespace", promised.namespace) is not None:
            kube.delete("v1", "Namespace", promised.namespace)
        kube.close()


@dataclass
class Run:
    """One example followed in a thread of its own, and what it logged."""

    log: list[str]
    done: Future[None]


@pytest.fixture(scope="module")
def example_runs(local_stack: stack.StackState, tmp_path_factory: pytest.TempPathFactory,
                 request: pytest.FixtureRequest) -> Iterator[dict[str, Run]]:
    """The selected examples, all followed at once (each has its own namespace and controller), so that they
    take about as long as the longest one."""
    assert shutil.which("kubectl"), "kubectl is not on PATH: the examples' READMEs use it"
    selected = {str(params["example"]) for item in request.session.items if item.path == request.path
                and "example" in (params := getattr(getattr(item, "callspec", None), "params", {}))}
    with ThreadPoolExecutor(max_workers=max(1, len(selected))) as pool:
        runs = {}
        for example in sorted(selected):
            log: list[str] = []
            runs[example] = Run(log, pool.submit(run_example, example, local_stack, tmp_path_factory.mktemp(example),
                                                 log))
        yield runs


@pytest.mark.parametrize("example", sorted(OUTCOMES))
def test_the_example_runs_from_its_readme_to_the_outcome_it_promises(example: str,
                                                                     example_runs: dict[str, Run]) -> None:
    run = example_runs[example]
    try:
        run.done.result(timeout=280)
    finally:
        print("\n".join(run.log))
