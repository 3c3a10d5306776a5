"""SigV4 against AWS's documented example and against signatures botocore computed for the same requests."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import requests

from analysis.providers.sigv4 import AwsCredentials, SigV4Auth, host_header, sign

EXAMPLE = AwsCredentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
WHEN = datetime(2015, 8, 30, 12, 36, 0, tzinfo=UTC)


def test_the_documented_iam_example_gets_the_documented_signature() -> None:
    url = "https://iam.amazonaws.com/?Action=ListUsers&Version=2010-05-08"
    added = sign(method="GET", url=url, body=b"", credentials=EXAMPLE, region="us-east-1", service="iam", now=WHEN,
                 headers={"Host": "iam.amazonaws.com",
                          "Content-Type": "application/x-www-form-urlencoded; charset=utf-8"})
    assert added == {
        "X-Amz-Date": "20150830T123600Z",
        "Authorization": "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, "
                         "SignedHeaders=content-type;host;x-amz-date, "
                         "Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7"}


@pytest.mark.parametrize(("url", "headers", "body", "token", "signature"), [
    ("https://monitoring.eu-west-1.amazonaws.com/",
     {"Content-Type": "application/x-amz-json-1.0", "X-Amz-Target": "GraniteServiceVersion20100801.GetMetricData"},
     b'{"a": 1}', "TOKEN/abc==", "ced86b3777770d6fe480180cc285d0cd0612fbcc38d14e29088fac14fc1cbeaf"),
    ("http://127.0.0.1:8123/", {"Content-Type": "application/x-amz-json-1.0", "X-Amz-Target": "x"},
     b'{"b": "c d"}', None, "bce6d7eb03100a4fbd894375abc80f4a3afb4f737e24f3334e8534889e256924"),
    ("https://monitoring.us-east-1.amazonaws.com:443/", {"Content-Type": "application/x-amz-json-1.0",
                                                         "X-Amz-Target": "x  y"},
     b"{}", None, "fd542e17e7224501d3e0818727f8e92ad425961f21395aeee367a4d61151c13f"),
])
def test_signatures_match_botocores_for_the_same_requests(url: str, headers: dict[str, str], body: bytes,
                                                          token: str | None, signature: str) -> None:
    region = url.split(".")[1] if "amazonaws" in url else "us-west-2"
    credentials = AwsCredentials(EXAMPLE.access_key_id, EXAMPLE.secret_access_key, token)
    added = sign(method="POST", url=url, headers={"Host": host_header(url), **headers}, body=body,
                 credentials=credentials, region=region, service="monitoring", now=WHEN)
    assert added["Authorization"].endswith(f"Signature={signature}")
    assert ("X-Amz-Security-Token" in added) == (token is not None)


def test_paths_and_query_strings_are_canonicalised_as_botocore_does() -> None:
    url = "https://example.amazonaws.com/a%20b/c?z=1&a=x%2Fy&a=b&sp=a%20b"
    added = sign(method="GET", url=url, headers={"Host": "example.amazonaws.com"}, body=b"", credentials=EXAMPLE,
                 region="us-east-1", service="service", now=WHEN)
    assert added["Authorization"].endswith("Signature=b2830473184c4ae2f5976c9793d9c35a7a88fb670d125e72c38c5d535a7e52fe")


def test_the_host_header_carries_only_a_port_that_is_not_the_default() -> None:
    assert host_header("https://monitoring.us-east-1.amazonaws.com:443/") == "monitoring.us-east-1.amazonaws.com"
    assert host_header("http://127.0.0.1:8123/") == "127.0.0.1:8123"


def test_the_auth_signs_what_requests_will_send() -> None:
    auth = SigV4Auth(EXAMPLE, region="eu-west-1", service="monitoring", clock=lambda: WHEN)
    prepared = requests.Request("POST", "https://monitoring.eu-west-1.amazonaws.com/", data=b'{"a": 1}',
                                headers={"Content-Type": "application/x-amz-json-1.0",
                                         "X-Amz-Target": "GraniteServiceVersion20100801.GetMetricData",
                                         "User-Agent": "canary"},
                                auth=auth).prepare()
    assert prepared.headers["Host"] == "monitoring.eu-west-1.amazonaws.com"
    assert prepared.headers["X-Amz-Date"] == "20150830T123600Z"
    assert "SignedHeaders=content-type;host;x-amz-date;x-amz-target," in prepared.headers["Authorization"]
