"""From settings to a GitSource: the flag-configured source, with credentials read from a Secret.

The Secret (``--git-secret namespace/name``) holds ``identity`` (an SSH private key) with
``known_hosts``, or ``token`` (HTTPS); optionally ``allowed_signers`` (SSH) or ``gpg_keys`` (armored
public keys) to verify commit signatures.
"""

from __future__ import annotations

import base64

from pydantic import BaseModel, ConfigDict, Field

from canary.errors import PermanentError
from canary.gitsync.rollbacks import DEFAULT_AUTHOR
from canary.gitsync.source import GitCredentials, GitSource, RollbackPolicy, SignatureCheck
from canary.kube.client import Kube

DEFAULT_SOURCE = "default"


class GitSettings(BaseModel):
    """One Git source from the controller's flags (``--git-*``); absent when ``url`` is None."""

    model_config = ConfigDict(frozen=True)

    url: str | None = None
    branch: str | None = "main"
    tag: str | None = None
    commit: str | None = None
    paths: tuple[str, ...] = (".",)
    poll_interval: float = Field(default=10.0, gt=0)
    sync_interval: float = Field(default=300.0, gt=0)
    timeout: float = Field(default=60.0, gt=0)
    secret: str | None = Field(default=None, pattern=r"^[a-z0-9-]+/[a-z0-9.-]+$")
    inventory_namespace: str = "canary-system"
    webhook_secret: str | None = Field(default=None, repr=False)
    prune: bool = True
    rollback: RollbackPolicy = "pin"
    readonly: bool = False
    author: str = Field(default=DEFAULT_AUTHOR, pattern=r"^[^<>]+<[^<>\s]+>$")


def secret_data(kube: Kube, ref: str) -> dict[str, str]:
    """The decoded data of the Secret ``namespace/name``."""
    namespace, name = ref.split("/", 1)
    found = kube.get("v1", "Secret", name, namespace=namespace)
    if found is None:
        raise PermanentError(f"--git-secret: Secret {ref} not found")
    return {k: base64.b64decode(v).decode() for k, v in (found.get("data") or {}).items()}


def source_from(settings: GitSettings, kube: Kube | None) -> GitSource:
    """The source the ``--git-*`` flags describe."""
    if settings.url is None:
        raise PermanentError("--git-url is required for a Git sync")
    data = secret_data(kube, settings.secret) if settings.secret and kube is not None else {}
    credentials = None
    if data.get("identity") or data.get("token"):
        credentials = GitCredentials(https_token=data.get("token"), ssh_private_key=data.get("identity"),
                                     known_hosts=data.get("known_hosts"))
    verify = None
    if data.get("allowed_signers"):
        verify = SignatureCheck(kind="ssh", keys=data["allowed_signers"])
    elif data.get("gpg_keys"):
        verify = SignatureCheck(kind="gpg", keys=data["gpg_keys"])
    return GitSource(name=DEFAULT_SOURCE, url=settings.url, branch=settings.branch, tag=settings.tag,
                     commit=settings.commit, paths=settings.paths, timeout=settings.timeout,
                     credentials=credentials, verify=verify, rollback=settings.rollback, readonly=settings.readonly)
