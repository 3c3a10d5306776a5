"""Certificates and the kubeconfig of a local control plane.

One self-signed CA signs the API server's serving certificate and an admin client certificate
(group ``system:masters``); a separate RSA key signs service-account tokens. Every component
and the user share the admin kubeconfig, which embeds its certificates so it can be copied.
"""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

_VALIDITY = dt.timedelta(days=365)
_API_SERVER_DNS = (
    "kubernetes",
    "kubernetes.default",
    "kubernetes.default.svc",
    "kubernetes.default.svc.cluster.local",
    "localhost",
)
_API_SERVER_IPS = ("127.0.0.1", "::1", "10.0.0.1")


@dataclass(frozen=True)
class Pki:
    """Paths of the files that ``generate`` wrote."""

    ca_cert: Path
    server_cert: Path
    server_key: Path
    admin_cert: Path
    admin_key: Path
    sa_key: Path
    sa_pub: Path


def _new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _write_key(path: Path, key: rsa.RSAPrivateKey) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)


def _write_cert(path: Path, cert: x509.Certificate) -> None:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def _name(common_name: str, organization: str | None = None) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    if organization:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
    return x509.Name(attrs)


def _sign(
    *,
    subject: x509.Name,
    public_key: rsa.RSAPublicKey,
    issuer: x509.Name,
    issuer_key: rsa.RSAPrivateKey,
    is_ca: bool,
    usages: list[x509.ObjectIdentifier],
    san: x509.SubjectAlternativeName | None = None,
) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + _VALIDITY)
        .add_extension(x509.BasicConstraints(ca=is_ca, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=not is_ca,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=is_ca,
                crl_sign=is_ca,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    )
    if usages:
        builder = builder.add_extension(x509.ExtendedKeyUsage(usages), critical=False)
    if san is not None:
        builder = builder.add_extension(san, critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def existing(directory: Path) -> Pki:
    """The paths of what ``generate`` wrote in ``directory`` (a stack started again keeps its certificates)."""
    return Pki(
        ca_cert=directory / "ca.crt",
        server_cert=directory / "apiserver.crt",
        server_key=directory / "apiserver.key",
        admin_cert=directory / "admin.crt",
        admin_key=directory / "admin.key",
        sa_key=directory / "sa.key",
        sa_pub=directory / "sa.pub",
    )


def generate(directory: Path) -> Pki:
    """Write a fresh CA, serving and admin certificates and a service-account key pair."""
    directory.mkdir(parents=True, exist_ok=True)
    pki = existing(directory)
    ca_key = _new_key()
    ca_name = _name("canary-local-ca")
    ca = _sign(subject=ca_name, public_key=ca_key.public_key(), issuer=ca_name, issuer_key=ca_key,
               is_ca=True, usages=[])
    _write_cert(pki.ca_cert, ca)

    server_key = _new_key()
    san = x509.SubjectAlternativeName(
        [x509.DNSName(n) for n in _API_SERVER_DNS]
        + [x509.IPAddress(ipaddress.ip_address(ip)) for ip in _API_SERVER_IPS]
    )
    server = _sign(subject=_name("kube-apiserver"), public_key=server_key.public_key(), issuer=ca_name,
                   issuer_key=ca_key, is_ca=False, usages=[ExtendedKeyUsageOID.SERVER_AUTH], san=san)
    _write_key(pki.server_key, server_key)
    _write_cert(pki.server_cert, server)

    admin_key = _new_key()
    admin = _sign(subject=_name("canary-admin", "system:masters"), public_key=admin_key.public_key(),
                  issuer=ca_name, issuer_key=ca_key, is_ca=False, usages=[ExtendedKeyUsageOID.CLIENT_AUTH])
    _write_key(pki.admin_key, admin_key)
    _write_cert(pki.admin_cert, admin)

    sa_key = _new_key()
    _write_key(pki.sa_key, sa_key)
    pki.sa_pub.write_bytes(
        sa_key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    return pki


def _b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


def write_kubeconfig(path: Path, *, pki: Pki, server: str, name: str = "canary-local") -> None:
    """Write an admin kubeconfig for ``server`` with the certificates embedded."""
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": name, "cluster": {"server": server,
                                                "certificate-authority-data": _b64(pki.ca_cert)}}],
        "users": [{"name": f"{name}-admin", "user": {"client-certificate-data": _b64(pki.admin_cert),
                                                    "client-key-data": _b64(pki.admin_key)}}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": f"{name}-admin"}}],
        "current-context": name,
    }
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    path.chmod(0o600)
