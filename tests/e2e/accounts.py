"""Acting as a ServiceAccount, as a pod does: a token from the TokenRequest API (what ``kubectl create
token`` and the kubelet get), and a kubeconfig that authenticates with it."""

from __future__ import annotations

from pathlib import Path

import yaml
from kubernetes import client as k8s
from kubernetes import config as k8s_config


def token(admin: str, namespace: str, name: str) -> str:
    """An hour's token of ServiceAccount ``namespace/name``, asked for with the ``admin`` kubeconfig."""
    api = k8s_config.new_client_from_config(config_file=admin)  # type: ignore[no-untyped-call]
    try:
        request = k8s.AuthenticationV1TokenRequest(spec=k8s.V1TokenRequestSpec(audiences=[],
                                                                                 expiration_seconds=3600))
        answer = k8s.CoreV1Api(api).create_namespaced_service_account_token(name, namespace, request)
        assert answer.status is not None
        return str(answer.status.token)
    finally:
        api.close()


def kubeconfig(admin: str, namespace: str, name: str, folder: Path) -> Path:
    """The ``admin`` kubeconfig's cluster with the ServiceAccount's token as its only user."""
    config = yaml.safe_load(Path(admin).read_text())
    config["users"] = [{"name": name, "user": {"token": token(admin, namespace, name)}}]
    for context in config["contexts"]:
        context["context"]["user"] = name
    path = folder / "service-account.kubeconfig"
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)
    return path
