"""kube-apiserver's side of the local stack: its command line, extra flags, audit policy and Service range.

``canary.local.stack`` builds the command line here when it starts a control plane, and
``canary local up`` parses its ``--apiserver-arg NAME=VALUE`` options with ``parse_extra_args``.
Nothing here runs a process or talks to a cluster except ``widen_service_range``, which the
stack calls for a stack started before the range grew.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import yaml

from canary.errors import PermanentError
from canary.kube import Obj

SERVICE_CIDR = "10.0.0.0/16"
"""Room for 65534 ClusterIPs: each canary makes 3 Services, so 1000 canaries (two controllers' worth
side by side) fit many times over. It contains the /24 of older stacks, whose ``kubernetes``
Service keeps its 10.0.0.1."""
SERVICE_CIDR_OBJECT = "canary-local"
"""The ServiceCIDR that widens the range of a stack started with a smaller one (see ``widen_service_range``)."""

AUDIT_LOG_MAXSIZE_MB = 1_000_000
"""The audit log is rotated only past about a terabyte, that is never: a benchmark counts requests
in one file, and rotation would move the older ones into another. Delete or truncate the file
between runs instead (kube-apiserver appends to it)."""
AUDIT_LOG_MAXBACKUP = 0
"""0 keeps every rotated file (kube-apiserver's meaning), so nothing is ever deleted behind a reader."""
AUDIT_POLICY = {
    "apiVersion": "audit.k8s.io/v1",
    "kind": "Policy",
    # One event per request when it completes (long-running ones, watches, also log ResponseStarted):
    # the received stage would double every count and say nothing a count needs.
    "omitStages": ["RequestReceived"],
    # Metadata: who (user, User-Agent), what (verb, resource, namespace, name), the response code;
    # no bodies, which would make the log ten times as large and the API server slower.
    "rules": [{"level": "Metadata"}],
}


def write_audit_policy(path: Path) -> Path:
    """Write ``AUDIT_POLICY`` to ``path`` for ``--audit-policy-file``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(AUDIT_POLICY, sort_keys=False))
    return path


def parse_extra_args(values: Iterable[str]) -> dict[str, str]:
    """``NAME=VALUE`` options (``--NAME=VALUE`` too) as {NAME: VALUE}, in their order.

    A value may be empty and may contain ``=``; a name may be given once (several values of a
    list flag go comma-separated in one option, as kube-apiserver reads them).
    """
    parsed: dict[str, str] = {}
    for value in values:
        name, equals, flag_value = value.partition("=")
        name = name.strip().removeprefix("--")
        if not equals or not name:
            raise PermanentError(f"--apiserver-arg {value!r}: expected NAME=VALUE, as in "
                                 "--apiserver-arg max-requests-inflight=800")
        if name.startswith("-") or any(c.isspace() for c in name):
            raise PermanentError(f"--apiserver-arg {value!r}: {name!r} is not a flag name")
        if name in parsed:
            raise PermanentError(f"--apiserver-arg {name} is given twice ({parsed[name]!r} and {flag_value!r}); "
                                 "give a list flag's values comma-separated in one option")
        parsed[name] = flag_value
    return parsed


@dataclass(frozen=True)
class ApiServerFlags:
    """What the stack decides about kube-apiserver beyond its ports and certificates."""

    service_cidr: str = SERVICE_CIDR
    audit_log: Path | None = None
    """Where to write the audit log (JSON lines); None writes none."""
    audit_policy: Path | None = None
    """The policy file ``write_audit_policy`` wrote; needed with ``audit_log``."""
    extra: Mapping[str, str] = field(default_factory=dict)
    """Further flags by name (no leading dashes), from ``parse_extra_args``."""


@dataclass(frozen=True)
class ApiServerPaths:
    """The files and addresses kube-apiserver is started with."""

    binary: str
    etcd_url: str
    port: int
    server_cert: Path
    server_key: Path
    ca_cert: Path
    sa_pub: Path
    sa_key: Path
    cert_dir: Path


def argv(paths: ApiServerPaths, flags: ApiServerFlags) -> list[str]:
    """kube-apiserver's command line: the stack's own flags, then ``flags.extra``.

    Raises ``PermanentError`` when an extra flag is one the stack sets (naming it), or when an
    audit log is asked for without a policy.
    """
    own = _own_flags(paths, flags)
    _refuse_collisions(flags.extra, own)
    return [paths.binary, *own, *(f"--{name}={value}" for name, value in flags.extra.items())]


def check_extra(extra: Mapping[str, str], *, audit: bool) -> None:
    """Raise ``PermanentError`` when an extra flag is one the stack sets, before anything is started."""
    placeholder = Path("placeholder")
    paths = ApiServerPaths(binary="kube-apiserver", etcd_url="http://127.0.0.1:2379", port=6443,
                           server_cert=placeholder, server_key=placeholder, ca_cert=placeholder, sa_pub=placeholder,
                           sa_key=placeholder, cert_dir=placeholder)
    argv(paths, ApiServerFlags(audit_log=placeholder if audit else None, audit_policy=placeholder, extra=extra))


def _own_flags(paths: ApiServerPaths, flags: ApiServerFlags) -> list[str]:
    own = [
        f"--etcd-servers={paths.etcd_url}", f"--secure-port={paths.port}", "--bind-address=127.0.0.1",
        "--advertise-address=127.0.0.1", f"--tls-cert-file={paths.server_cert}",
        f"--tls-private-key-file={paths.server_key}", f"--client-ca-file={paths.ca_cert}",
        "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
        f"--service-account-key-file={paths.sa_pub}", f"--service-account-signing-key-file={paths.sa_key}",
        f"--service-cluster-ip-range={flags.service_cidr}", "--authorization-mode=Node,RBAC",
        "--allow-privileged=true", "--profiling=false", f"--cert-dir={paths.cert_dir}",
    ]
    if flags.audit_log is not None:
        if flags.audit_policy is None:
            raise PermanentError("an audit log needs an audit policy file")
        own += [f"--audit-policy-file={flags.audit_policy}", f"--audit-log-path={flags.audit_log}",
                f"--audit-log-maxsize={AUDIT_LOG_MAXSIZE_MB}", f"--audit-log-maxbackup={AUDIT_LOG_MAXBACKUP}"]
    return own


def _refuse_collisions(extra: Mapping[str, str], own: Sequence[str]) -> None:
    taken = flag_names(own)
    for name in extra:
        if name in taken:
            raise PermanentError(f"--apiserver-arg {name}: the local stack sets --{name} itself; the flags it "
                                 f"sets are {', '.join(sorted(taken))}")


def flag_names(arguments: Sequence[str]) -> dict[str, str]:
    """{name: value} of ``--name=value`` arguments."""
    names = {}
    for argument in arguments:
        name, _, value = argument.removeprefix("--").partition("=")
        names[name] = value
    return names


def service_cidr_of(arguments: Sequence[str]) -> str | None:
    """The ``--service-cluster-ip-range`` of a recorded kube-apiserver command line."""
    return flag_names(arguments[1:]).get("service-cluster-ip-range")


class Cluster(Protocol):
    """The calls ``widen_service_range`` makes (``canary.kube.client.Kube`` has them)."""

    def get(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> Obj | None:
        """The object, or None when it does not exist."""
        ...

    def apply(self, body: Obj, *, field_manager: str) -> Obj:
        """Server-side apply ``body`` as ``field_manager``."""
        ...


def widen_service_range(kube: Cluster, *, started_with: str, wanted: str = SERVICE_CIDR) -> bool:
    """Give a stack started with the range ``started_with`` the range ``wanted``; True when it changed.

    Changing ``--service-cluster-ip-range`` on a cluster that has data does not widen anything: the
    API server allocates from ServiceCIDR objects, and keeps the default one (``kubernetes``) as it
    was first made (it only warns, KubernetesDefaultServiceCIDRInconsistent). So a stack keeps its
    recorded flag and gets a second ServiceCIDR with the wider range, which may overlap the first.
    """
    if ipaddress.ip_network(started_with) == ipaddress.ip_network(wanted):
        return False
    if kube.get("networking.k8s.io/v1", "ServiceCIDR", SERVICE_CIDR_OBJECT) is not None:
        return False
    kube.apply({"apiVersion": "networking.k8s.io/v1", "kind": "ServiceCIDR", "metadata": {"name": SERVICE_CIDR_OBJECT},
                "spec": {"cidrs": [wanted]}}, field_manager="canary-local")
    return True
