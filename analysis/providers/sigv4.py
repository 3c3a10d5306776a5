"""AWS Signature Version 4, for the CloudWatch provider's requests.

``sign`` is the whole algorithm as AWS documents it (canonical request, string to sign, derived
key), pure and checked against AWS's published examples; ``SigV4Auth`` applies it to each
request ``requests`` prepares, so that every retry is signed afresh with its own time.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import parse_qsl, quote, urlsplit

import requests
from requests.auth import AuthBase

ALGORITHM = "AWS4-HMAC-SHA256"
_DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True)
class AwsCredentials:
    """An access key, and the session token that comes with temporary ones."""

    access_key_id: str
    secret_access_key: str = field(repr=False)
    session_token: str | None = field(default=None, repr=False)


def sign(*, method: str, url: str, headers: Mapping[str, str], body: bytes, credentials: AwsCredentials,
         region: str, service: str, now: datetime) -> dict[str, str]:
    """The headers that sign a request: ``X-Amz-Date``, ``X-Amz-Security-Token`` when needed, ``Authorization``.

    Every header in ``headers`` is signed; ``Host`` must be among them, as sent.
    """
    amz_date = now.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    added = {"X-Amz-Date": amz_date}
    if credentials.session_token:
        added["X-Amz-Security-Token"] = credentials.session_token
    signed = {name.lower(): " ".join(value.split()) for name, value in {**headers, **added}.items()}
    names = ";".join(sorted(signed))
    parts = urlsplit(url)
    canonical_request = "\n".join([
        method.upper(),
        quote(parts.path or "/", safe="/~"),
        _canonical_query(parts.query),
        "".join(f"{name}:{signed[name]}\n" for name in sorted(signed)),
        names,
        hashlib.sha256(body).hexdigest(),
    ])
    scope = f"{amz_date[:8]}/{region}/{service}/aws4_request"
    string_to_sign = "\n".join([ALGORITHM, amz_date, scope, hashlib.sha256(canonical_request.encode()).hexdigest()])
    key = f"AWS4{credentials.secret_access_key}".encode()
    for part in (amz_date[:8], region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    signature = hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()
    added["Authorization"] = (f"{ALGORITHM} Credential={credentials.access_key_id}/{scope}, "
                              f"SignedHeaders={names}, Signature={signature}")
    return added


def _canonical_query(query: str) -> str:
    pairs = sorted((quote(k, safe="-_.~"), quote(v, safe="-_.~")) for k, v in parse_qsl(query, keep_blank_values=True))
    return "&".join(f"{k}={v}" for k, v in pairs)


def host_header(url: str) -> str:
    """The ``Host`` header as it must be sent and signed: the port only when it isn't the scheme's default."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    return host if parts.port in (None, _DEFAULT_PORTS.get(parts.scheme)) else f"{host}:{parts.port}"


class SigV4Auth(AuthBase):
    """Signs each prepared request: ``Host``, ``Content-Type`` and the ``X-Amz-*`` headers, and the body."""

    def __init__(self, credentials: AwsCredentials, *, region: str, service: str,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self._credentials = credentials
        self._region, self._service = region, service
        self._clock = clock

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        url = request.url or ""
        # Set explicitly so that what is signed is what is sent (urllib3 then sends no Host of its own).
        request.headers["Host"] = host_header(url)
        chosen = {name: value for name, value in request.headers.items()
                  if name.lower() in ("host", "content-type") or name.lower().startswith("x-amz-")}
        body = request.body or b""
        request.headers.update(sign(method=request.method or "GET", url=url, headers=chosen,
                                    body=body.encode() if isinstance(body, str) else body,
                                    credentials=self._credentials, region=self._region, service=self._service,
                                    now=self._clock()))
        return request
