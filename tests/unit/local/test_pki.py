from __future__ import annotations

import base64
import ipaddress
from pathlib import Path

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from canary.local import pki


def _cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def test_certificates_chain_to_the_ca_and_carry_the_names_the_api_server_needs(tmp_path: Path) -> None:
    files = pki.generate(tmp_path)
    ca, server, admin = _cert(files.ca_cert), _cert(files.server_cert), _cert(files.admin_cert)

    for leaf in (server, admin):
        leaf.verify_directly_issued_by(ca)
    san = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert {"kubernetes.default.svc", "localhost"} <= set(san.get_values_for_type(x509.DNSName))
    assert ipaddress.ip_address("127.0.0.1") in san.get_values_for_type(x509.IPAddress)
    assert ExtendedKeyUsageOID.SERVER_AUTH in server.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert admin.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "system:masters"
    assert oct(files.admin_key.stat().st_mode & 0o777) == "0o600"


def test_service_account_keys_are_a_pair(tmp_path: Path) -> None:
    files = pki.generate(tmp_path)
    private = serialization.load_pem_private_key(files.sa_key.read_bytes(), password=None)
    public = serialization.load_pem_public_key(files.sa_pub.read_bytes())
    assert isinstance(private, rsa.RSAPrivateKey)
    assert isinstance(public, rsa.RSAPublicKey)
    signature = private.sign(b"token", padding.PKCS1v15(), hashes.SHA256())
    public.verify(signature, b"token", padding.PKCS1v15(), hashes.SHA256())


def test_kubeconfig_embeds_the_admin_identity(tmp_path: Path) -> None:
    files = pki.generate(tmp_path)
    path = tmp_path / "kubeconfig"
    pki.write_kubeconfig(path, pki=files, server="https://127.0.0.1:6443")

    config = yaml.safe_load(path.read_text())
    cluster = config["clusters"][0]["cluster"]
    user = config["users"][0]["user"]
    assert cluster["server"] == "https://127.0.0.1:6443"
    assert base64.b64decode(cluster["certificate-authority-data"]) == files.ca_cert.read_bytes()
    assert base64.b64decode(user["client-certificate-data"]) == files.admin_cert.read_bytes()
    assert config["current-context"] == config["contexts"][0]["name"]
