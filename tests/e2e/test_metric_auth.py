"""A MetricTemplate's secretRef authenticates to a real Prometheus that requires basic auth over TLS
with its own CA (the CA bundle travels in the same Secret, as ca.crt)."""

from __future__ import annotations

import base64
import ssl
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import bcrypt
import pytest
import yaml

from canary.kube.client import Kube
from canary.local import pki, procs, prometheus
from canary.local.ports import free_ports
from canary.waiting import wait_until
from tests.builders import make_canary, make_deployment
from tests.e2e.canaries import deployment, release, wait_phase
from tests.e2e.controllers import ControllerProcess

pytestmark = pytest.mark.usefixtures("gateway_api_crds")
USER, PASSWORD = "canary", "s3cret-pass"


@pytest.fixture
def certificates(tmp_path: Path) -> pki.Pki:
    """A CA and a serving certificate for 127.0.0.1."""
    return pki.generate(tmp_path / "pki")


@pytest.fixture
def guarded_prometheus(tmp_path: Path, certificates: pki.Pki) -> Iterator[str]:
    """A Prometheus of its own, on HTTPS, that answers only with the right basic-auth credentials."""
    (port,) = free_ports(1)
    address = f"127.0.0.1:{port}"
    web = tmp_path / "web.yml"
    web.write_text(yaml.safe_dump({
        "basic_auth_users": {USER: bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()},
        "tls_server_config": {"cert_file": str(certificates.server_cert), "key_file": str(certificates.server_key)},
    }))
    config = tmp_path / "prometheus.yml"
    prometheus.write_config(config, targets_dir=tmp_path / "targets", self_address=address)
    argv = [*prometheus.argv(binary=prometheus.executable(), config=config, data_dir=tmp_path / "data",
                             address=address), f"--web.config.file={web}"]
    record = procs.spawn("guarded-prometheus", argv, log=tmp_path / "prometheus.log")
    token = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()

    trusted = ssl.create_default_context(cafile=str(certificates.ca_cert))

    def ready() -> int:
        request = urllib.request.Request(f"https://{address}/-/ready", headers={"Authorization": f"Basic {token}"})
        with urllib.request.urlopen(request, timeout=2, context=trusted) as response:  # noqa: S310 - our own URL
            return int(response.status)

    try:
        wait_until(ready, lambda code: code == 200, what="the guarded Prometheus", timeout=30)
        yield f"https://{address}"
    finally:
        procs.stop(record)


def test_a_template_with_a_secret_ref_reads_a_guarded_prometheus_and_its_value_is_judged(
    kube: Kube, namespace: str, controller: ControllerProcess, guarded_prometheus: str, certificates: pki.Pki
) -> None:
    kube.create({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "prom-auth", "namespace": namespace},
                 "stringData": {"username": USER, "password": PASSWORD,
                                "ca.crt": certificates.ca_cert.read_text()}})
    kube.create({"apiVersion": "canary.dev/v1alpha1", "kind": "MetricTemplate",
                 "metadata": {"name": "answer", "namespace": namespace},
                 "spec": {"provider": {"type": "prometheus", "address": guarded_prometheus,
                                       "secretRef": {"name": "prom-auth"}},
                          "query": "vector(42)"}})
    kube.create({"apiVersion": "canary.dev/v1alpha1", "kind": "MetricTemplate",
                 "metadata": {"name": "anonymous", "namespace": namespace},
                 "spec": {"provider": {"type": "prometheus", "address": guarded_prometheus}, "query": "vector(1)"}})
    kube.create(make_deployment("web", namespace, replicas=1, image="web:1"))
    kube.create(make_canary("web", namespace, analysis={
        "interval": "1s", "threshold": 2, "stepWeight": 10,
        "metrics": [{"name": "answer", "templateRef": {"name": "answer"}, "thresholdRange": {"max": 40}},
                    {"name": "anonymous", "templateRef": {"name": "anonymous"}, "thresholdRange": {"max": 40}}]}))
    wait_phase(kube, namespace, "web", "Initialized")
    release(kube, namespace, "web:2")

    failed = wait_phase(kube, namespace, "web", "Failed", timeout=60)

    latest = {r["name"]: r for r in failed["analysis"]}
    assert latest["answer"]["value"] == 42
    assert latest["answer"]["message"] == "answer 42 > 40"
    assert latest["anonymous"]["verdict"] == "error"
    assert "certificate verify failed" in latest["anonymous"]["message"], "no CA, no trust"
    assert PASSWORD not in str(failed)
    assert deployment(kube, namespace, "web")["spec"]["replicas"] == 0
