"""The controller's client keeps a connection per worker: a full pool makes a new TLS connection per request."""

from pathlib import Path

from canary.kube.client import api_client
from canary.local import pki


def _kubeconfig(tmp_path: Path) -> Path:
    path = tmp_path / "kubeconfig"
    pki.write_kubeconfig(path, pki=pki.generate(tmp_path / "pki"), server="https://127.0.0.1:6443")
    return path


def test_the_pool_grows_to_the_size_asked_and_never_shrinks_below_the_clients_default(tmp_path: Path) -> None:
    kubeconfig = _kubeconfig(tmp_path)
    default = api_client(kubeconfig).configuration.connection_pool_maxsize
    sized = api_client(kubeconfig, pool_size=default + 30)
    assert sized.configuration.connection_pool_maxsize == default + 30
    assert sized.rest_client.pool_manager.connection_pool_kw["maxsize"] == default + 30
    assert api_client(kubeconfig, pool_size=1).configuration.connection_pool_maxsize == default
