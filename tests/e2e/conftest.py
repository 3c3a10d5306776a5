"""The end-to-end harness: one local stack per test session, one namespace per test.

``CANARY_TEST_KUBECONFIG`` runs the tests against an existing cluster (kind, say) instead of
starting a control plane; Prometheus still runs locally either way.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Generator, Iterator
from pathlib import Path

import pytest

from canary.kube.client import Kube
from canary.local import stack
from canary.local.install import CANARY_CRDS, GATEWAY_API_CRDS, crd_folder, install_crds
from canary.waiting import wait_until
from tests.e2e.controllers import ControllerProcess
from tests.e2e.gitrepos import daemon, upstream  # noqa: F401 - fixtures shared by the Git sync tests


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Keep each phase's report on the item, so fixtures can tell whether the test failed."""
    report: pytest.TestReport = yield
    setattr(item, f"rep_{report.when}", report)
    return report


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/e2e/" in str(item.path):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def local_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[stack.StackState]:
    """A running stack for the whole session, taken down at its end."""
    external = os.environ.get("CANARY_TEST_KUBECONFIG")
    options = stack.StackOptions(
        state_dir=tmp_path_factory.mktemp("stack"),
        external_kubeconfig=Path(external) if external else None,
    )
    state = stack.up(options, progress=print)
    try:
        yield state
    finally:
        stack.down(options.state_dir, purge=True, progress=print)


@pytest.fixture(scope="session")
def kube(local_stack: stack.StackState) -> Iterator[Kube]:
    """A client of the session's cluster, as cluster-admin."""
    client = Kube.from_kubeconfig(Path(local_stack.kubeconfig))
    yield client
    client.close()


@pytest.fixture
def namespace(kube: Kube, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh namespace named after the test, deleted after it."""
    slug = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower().removeprefix("test_"))[:40].strip("-")
    name = f"t-{slug}-{os.urandom(3).hex()}"
    kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    # Pods are refused until kube-controller-manager has made the namespace's default ServiceAccount.
    wait_until(lambda: kube.get("v1", "ServiceAccount", "default", namespace=name), lambda sa: sa is not None,
               what=f"the default ServiceAccount of namespace {name}", timeout=30)
    yield name
    kube.delete("v1", "Namespace", name)


@pytest.fixture(scope="session")
def canary_crds(kube: Kube) -> list[str]:
    """Our CRDs, applied from manifests/crds and Established."""
    return install_crds(kube, CANARY_CRDS)


@pytest.fixture(scope="session")
def gateway_api_crds(kube: Kube) -> list[str]:
    """The upstream Gateway API CRDs (vendored), Established."""
    return install_crds(kube, GATEWAY_API_CRDS)


def _vendored_crds(project: str) -> Callable[[Kube], list[str]]:
    """A session fixture ``<project>_crds``: the project's CRDs from manifests/vendor (or its stand-ins from
    manifests/standin), Established."""

    def install(kube: Kube) -> list[str]:
        return install_crds(kube, crd_folder(project), timeout=60)

    install.__doc__ = f"The vendored {project} CRDs, Established."
    return pytest.fixture(scope="session", name=f"{project}_crds")(install)


istio_crds = _vendored_crds("istio")
contour_crds = _vendored_crds("contour")
traefik_crds = _vendored_crds("traefik")
keda_crds = _vendored_crds("keda")
smi_crds = _vendored_crds("smi")
gloo_crds = _vendored_crds("gloo")
apisix_crds = _vendored_crds("apisix")
kuma_crds = _vendored_crds("kuma")


@pytest.fixture
def controller(local_stack: stack.StackState, namespace: str, canary_crds: list[str], tmp_path: Path,
               request: pytest.FixtureRequest) -> Iterator[ControllerProcess]:
    """A ``canary controller`` process watching the test's namespace, stopped after the test."""
    process = ControllerProcess(local_stack, namespace, tmp_path / "controller")
    process.start()
    yield process
    process.stop()
    failed = getattr(request.node, "rep_call", None)
    if failed is not None and failed.failed:
        print(process.log_tail())
