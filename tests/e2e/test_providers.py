"""Metric providers against real servers and against local servers that speak the vendors' APIs.

Graphite (carbon-cache and graphite-web), InfluxDB 1.x and Prometheus are Debian's packages,
started here on free loopback ports: data goes in through their own protocols (carbon's
plaintext port, InfluxDB's line protocol) and comes back through the providers. Datadog, New
Relic, CloudWatch and a web metric can't run here, so threaded HTTP servers on loopback answer
in the shapes their documentation publishes and record what they receive. None of this needs the
Kubernetes stack.
"""

from __future__ import annotations

import base64
import contextlib
import ipaddress
import json
import re
import socket
import ssl
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import bcrypt
import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from analysis.providers.base import Outcome, QueryResult, RangeResult
from analysis.providers.config import ProviderConfig
from analysis.providers.prometheus import PrometheusProvider
from analysis.providers.registry import provider_for
from analysis.providers.sigv4 import AwsCredentials, sign
from canary.errors import LocalStackError
from canary.local import procs, prometheus
from canary.local.ports import free_ports, is_listening
from canary.waiting import wait_until
from tests.httpfakes import Answer, FakeServer, Seen

USER, PASSWORD = "canary", "s3cret-pass"


# --- helpers: processes, TLS material, a scriptable HTTP server -------------------------------------------------


def _wait_started(record: procs.ProcessRecord, probe: Callable[[], bool], *, what: str, timeout: float = 60) -> None:
    """Wait for ``probe``; a process that exits meanwhile fails at once, with its log."""

    def check() -> bool:
        if not procs.is_alive(record):
            raise LocalStackError(f"{record.name} exited:\n{procs.log_tail(record)}")
        return probe()

    wait_until(check, bool, what=what, timeout=timeout)


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def _http(url: str, *, data: bytes | None = None, headers: dict[str, str] | None = None,
          context: ssl.SSLContext | None = None) -> tuple[int, bytes]:
    """One request with urllib (not the code under test); the status and body, errors included."""
    request = urllib.request.Request(url, data=data, headers=headers or {})  # noqa: S310 - our own URLs
    try:
        with urllib.request.urlopen(request, timeout=5, context=context) as response:  # noqa: S310 - our own URLs
            return int(response.status), response.read()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.read()


@dataclass(frozen=True)
class Tls:
    """A CA (PEM) and a server certificate for 127.0.0.1 that it signed, as files."""

    ca_pem: str
    cert_file: Path
    key_file: Path


def _make_tls(folder: Path) -> Tls:
    now = datetime.now(UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "canary test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number())
          .not_valid_before(now - timedelta(minutes=5)).not_valid_after(now + timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                       data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                       crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5)).not_valid_after(now + timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "server.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / "server.key").write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                                          serialization.PrivateFormat.PKCS8,
                                                          serialization.NoEncryption()))
    return Tls(ca.public_bytes(serialization.Encoding.PEM).decode(), folder / "server.crt", folder / "server.key")


StartApi = Callable[[Callable[[Seen], Answer]], FakeServer]


@pytest.fixture
def fake_api() -> Iterator[StartApi]:
    """Start fake APIs for the test; all are stopped after it."""
    with contextlib.ExitStack() as servers:
        yield lambda respond: servers.enter_context(FakeServer(respond))


def _uid() -> str:
    return "t" + uuid.uuid4().hex[:8]


# --- Graphite: carbon-cache and graphite-web ------------------------------------------------------------------------


@dataclass(frozen=True)
class Graphite:
    url: str
    carbon_port: int

    def feed(self, lines: list[str]) -> None:
        """Send metrics through carbon's plaintext protocol."""
        with socket.create_connection(("127.0.0.1", self.carbon_port), timeout=5) as connection:
            connection.sendall(("\n".join(lines) + "\n").encode())


@pytest.fixture(scope="module")
def graphite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Graphite]:
    """carbon-cache (whisper, 1s resolution) and graphite-web's render API, from Debian's packages."""
    root = tmp_path_factory.mktemp("graphite")
    line, pickle, cache, web = free_ports(4)
    storage, conf, webapp = root / "storage", root / "conf", root / "webapp"
    for folder in (storage / "whisper", storage / "lists", conf, webapp, root / "log" / "webapp"):
        folder.mkdir(parents=True, exist_ok=True)
    (conf / "carbon.conf").write_text(f"""[cache]
STORAGE_DIR = {storage}/
LOCAL_DATA_DIR = {storage}/whisper/
WHITELISTS_DIR = {storage}/lists/
CONF_DIR = {conf}/
LOG_DIR = {root}/log/
PID_DIR = {root}/
ENABLE_LOGROTATION = False
MAX_CACHE_SIZE = inf
MAX_UPDATES_PER_SECOND = inf
MAX_CREATES_PER_MINUTE = inf
LINE_RECEIVER_INTERFACE = 127.0.0.1
LINE_RECEIVER_PORT = {line}
ENABLE_UDP_LISTENER = False
PICKLE_RECEIVER_INTERFACE = 127.0.0.1
PICKLE_RECEIVER_PORT = {pickle}
CACHE_QUERY_INTERFACE = 127.0.0.1
CACHE_QUERY_PORT = {cache}
""")
    (conf / "storage-schemas.conf").write_text("[everything]\npattern = .*\nretentions = 1s:1h\n")
    (webapp / "canary_test_graphite.py").write_text(f"""SECRET_KEY = "canary-test"
STORAGE_DIR = "{storage}"
WHISPER_DIR = "{storage}/whisper"
INDEX_FILE = "{storage}/index"
LOG_DIR = "{root}/log/webapp"
CARBONLINK_HOSTS = ["127.0.0.1:{cache}"]
DATABASES = {{"default": {{"NAME": "{storage}/graphite.db", "ENGINE": "django.db.backends.sqlite3"}}}}
""")
    carbon = procs.spawn("carbon-cache", ["carbon-cache", f"--config={conf / 'carbon.conf'}", "--nodaemon",
                                          f"--pidfile={root / 'carbon.pid'}", "start"], log=root / "carbon.log")
    # graphite-web reads its settings from the module GRAPHITE_SETTINGS_MODULE names.
    webserver = procs.spawn("graphite-web", ["env", f"PYTHONPATH={webapp}",
                                             "GRAPHITE_SETTINGS_MODULE=canary_test_graphite",
                                             "graphite-manage", "runserver", "--noreload", f"127.0.0.1:{web}"],
                            log=root / "web.log")
    try:
        _wait_started(carbon, lambda: is_listening(line), what="carbon's plaintext port")
        _wait_started(webserver, lambda: _http(f"http://127.0.0.1:{web}/render?target=x&format=json")[0] == 200,
                      what="graphite-web's render API")
        yield Graphite(f"http://127.0.0.1:{web}", line)
    finally:
        procs.stop(webserver)
        procs.stop(carbon)


def test_graphite_answers_with_the_last_datapoint_fed_through_carbon(graphite: Graphite) -> None:
    uid, now = _uid(), int(time.time())
    graphite.feed([f"{uid}.web.latency 12 {now - 3}", f"{uid}.web.latency 15 {now - 2}"])
    provider = provider_for(ProviderConfig("graphite", graphite.url))

    result = wait_until(lambda: provider.query(f"target={uid}.web.latency&from=-1min"),
                        lambda r: r.outcome is Outcome.VALUE, what="carbon to store the datapoints", timeout=30)

    assert result == QueryResult(Outcome.VALUE, value=15.0)


def test_graphite_tells_several_series_from_no_data_and_refuses_an_unknown_function(graphite: Graphite) -> None:
    uid, now = _uid(), int(time.time())
    graphite.feed([f"{uid}.web.errors 1 {now - 2}", f"{uid}.db.errors 2 {now - 2}"])
    provider = provider_for(ProviderConfig("graphite", graphite.url))
    wait_until(lambda: provider.query(f"sumSeries({uid}.*.errors)"), lambda r: r.value == 3.0,
               what="both series to be stored", timeout=30)

    several = provider.query(f"target={uid}.*.errors&from=-1min")
    nothing = provider.query(f"target={uid}.absent&from=-1min")
    unknown = provider.query(f"target=noSuchFunction({uid}.web.errors)")

    assert several.outcome is Outcome.SEVERAL_SERIES
    assert f"{uid}.db.errors" in several.message
    assert nothing == QueryResult(Outcome.NO_DATA, message="the query matched no series")
    assert unknown.outcome is Outcome.REJECTED
    assert unknown.message.startswith(f"Graphite at {graphite.url} refused the query: HTTP 400 Bad Request: ")
    assert "noSuchFunction" in unknown.message


# --- InfluxDB 1.x ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Influx:
    url: str

    def write(self, database: str, lines: list[str]) -> None:
        """Write points through the line protocol, as the admin."""
        status, body = _http(f"{self.url}/write?db={database}&precision=s", data="\n".join(lines).encode(),
                             headers={"Authorization": _basic(USER, PASSWORD)})
        assert status == 204, body

    def run(self, statement: str) -> None:
        status, body = _http(f"{self.url}/query", data=f"q={statement}".encode(),
                             headers={"Authorization": _basic(USER, PASSWORD),
                                      "Content-Type": "application/x-www-form-urlencoded"})
        assert status == 200, body


@pytest.fixture(scope="module")
def influx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Influx]:
    """influxd from Debian's package, with authentication on and one admin, database ``canary``."""
    root = tmp_path_factory.mktemp("influxdb")
    http_port, rpc_port = free_ports(2)
    (root / "influxdb.conf").write_text(f"""reporting-disabled = true
bind-address = "127.0.0.1:{rpc_port}"
[meta]
  dir = "{root}/meta"
[data]
  dir = "{root}/data"
  wal-dir = "{root}/wal"
  query-log-enabled = false
[http]
  bind-address = "127.0.0.1:{http_port}"
  auth-enabled = true
  log-enabled = false
[monitor]
  store-enabled = false
""")
    record = procs.spawn("influxd", ["influxd", "run", "-config", str(root / "influxdb.conf")],
                         log=root / "influxd.log")
    url = f"http://127.0.0.1:{http_port}"
    try:
        _wait_started(record, lambda: _http(f"{url}/ping")[0] == 204, what="influxd to answer /ping")
        # With no user yet, InfluxDB lets anyone create the first admin.
        status, body = _http(f"{url}/query", data=f"q=CREATE USER {USER} WITH PASSWORD '{PASSWORD}' WITH ALL "
                                                  "PRIVILEGES".encode(),
                             headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert status == 200, body
        server = Influx(url)
        server.run("CREATE DATABASE canary")
        yield server
    finally:
        procs.stop(record)


def _influx_config(address: str, **overrides: Any) -> ProviderConfig:
    return ProviderConfig("influxdb", address, **{"credentials": {"username": USER, "password": PASSWORD},
                                                   **overrides})


def test_influxdb_answers_with_the_first_value_of_the_one_series(influx: Influx) -> None:
    uid, now = _uid(), int(time.time())
    influx.write("canary", [f"{uid},app=web value=10 {now - 20}", f"{uid},app=web value=15 {now - 10}"])
    in_address = provider_for(_influx_config(f"{influx.url}?db=canary"))
    in_query = provider_for(_influx_config(influx.url))

    mean = in_address.query(f'SELECT mean("value") FROM "{uid}" WHERE time > now() - 5m')  # noqa: S608
    first = in_query.query(f'SELECT "value" FROM "canary"."autogen"."{uid}" WHERE time > now() - 5m')  # noqa: S608

    assert mean == QueryResult(Outcome.VALUE, value=12.5)
    assert first == QueryResult(Outcome.VALUE, value=10.0)


def test_influxdb_tells_several_series_from_no_data(influx: Influx) -> None:
    uid, now = _uid(), int(time.time())
    influx.write("canary", [f"{uid},app=web value=1 {now - 5}", f"{uid},app=db value=2 {now - 5}"])
    provider = provider_for(_influx_config(f"{influx.url}?db=canary"))

    several = provider.query(f'SELECT last("value") FROM "{uid}" WHERE time > now() - 5m GROUP BY "app"')  # noqa: S608
    nothing = provider.query(f'SELECT last("value") FROM "{uid}_absent" WHERE time > now() - 5m')  # noqa: S608

    assert several == QueryResult(Outcome.SEVERAL_SERIES, message=f"the query returned 2 series ({uid}{{app=db}}, "
                                                                   f"{uid}{{app=web}}); aggregate them to one (drop "
                                                                   "its GROUP BY tags)")
    assert nothing == QueryResult(Outcome.NO_DATA, message="the query returned no series")


def test_influxdb_refusals_say_why(influx: Influx) -> None:
    good = provider_for(_influx_config(f"{influx.url}?db=canary"))
    anonymous = provider_for(ProviderConfig("influxdb", f"{influx.url}?db=canary"))
    elsewhere = provider_for(_influx_config(f"{influx.url}?db=nowhere"))

    syntax = good.query("SELEC 1")
    unauthorised = anonymous.query('SELECT last("value") FROM "cpu"')
    missing = elsewhere.query('SELECT last("value") FROM "cpu"')

    assert syntax.outcome is Outcome.REJECTED
    assert syntax.message.startswith(f"InfluxDB at {influx.url} refused the query: HTTP 400 Bad Request: "
                                     "error parsing query: found SELEC")
    assert unauthorised.outcome is Outcome.REJECTED
    assert "HTTP 401" in unauthorised.message
    assert missing == QueryResult(Outcome.REJECTED, message=f"InfluxDB at {influx.url} refused the query: "
                                                            "database not found: nowhere")


# --- Prometheus over TLS with basic auth ---------------------------------------------------------------------------


@dataclass(frozen=True)
class GuardedPrometheus:
    url: str
    ca_pem: str


@pytest.fixture(scope="module")
def guarded_prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GuardedPrometheus]:
    """Debian's Prometheus serving HTTPS with a certificate of our own CA, and requiring basic auth."""
    root = tmp_path_factory.mktemp("prometheus")
    tls = _make_tls(root / "tls")
    (port,) = free_ports(1)
    address = f"127.0.0.1:{port}"
    web = root / "web.yml"
    web.write_text(yaml.safe_dump({
        "tls_server_config": {"cert_file": str(tls.cert_file), "key_file": str(tls.key_file)},
        "basic_auth_users": {USER: bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()}}))
    config = root / "prometheus.yml"
    prometheus.write_config(config, targets_dir=root / "targets", self_address=address)
    argv = [*prometheus.argv(binary=prometheus.executable(), config=config, data_dir=root / "data",
                             address=address), f"--web.config.file={web}"]
    record = procs.spawn("guarded-prometheus", argv, log=root / "prometheus.log")
    context = ssl.create_default_context(cadata=tls.ca_pem)
    try:
        _wait_started(record, lambda: _http(f"https://{address}/-/ready", context=context,
                                            headers={"Authorization": _basic(USER, PASSWORD)})[0] == 200,
                      what="the guarded Prometheus to be ready")
        yield GuardedPrometheus(f"https://{address}", tls.ca_pem)
    finally:
        procs.stop(record)


def _guarded(server: GuardedPrometheus, **overrides: Any) -> PrometheusProvider:
    settings: dict[str, Any] = {"ca_bundle": server.ca_pem, "credentials": {"username": USER, "password": PASSWORD},
                                **overrides}
    provider = provider_for(ProviderConfig("prometheus", server.url, **settings))
    assert isinstance(provider, PrometheusProvider)
    return provider


def test_prometheus_instant_queries_over_tls_with_basic_auth(guarded_prometheus: GuardedPrometheus) -> None:
    provider = _guarded(guarded_prometheus)

    assert provider.query("vector(42)") == QueryResult(Outcome.VALUE, value=42.0)
    assert provider.query("scalar(vector(7))") == QueryResult(Outcome.VALUE, value=7.0)
    assert provider.query("vector(NaN)") == QueryResult(Outcome.NOT_A_NUMBER, message="the query returned nan")
    assert provider.query("no_such_metric_anywhere") == QueryResult(Outcome.NO_DATA,
                                                                    message="the query returned no series")
    bad = provider.query("sum(")
    assert bad.outcome is Outcome.REJECTED
    assert bad.message.startswith(f"Prometheus at {guarded_prometheus.url} refused the query: HTTP 400 Bad "
                                  "Request: bad_data: ")


def test_prometheus_range_queries_give_the_samples_of_one_series(guarded_prometheus: GuardedPrometheus) -> None:
    provider = _guarded(guarded_prometheus)
    end = datetime.now(UTC)

    def last_minute(query: str) -> RangeResult:
        return provider.query_range(query, start=end - timedelta(minutes=1), end=end, step=timedelta(seconds=15))

    two = 'label_replace(vector(1), "pod", "a", "", "") or label_replace(vector(2), "pod", "b", "", "")'

    three = last_minute("vector(3)")
    assert (three.outcome, three.values) == (Outcome.VALUE, (3.0,) * 5)
    assert [t - three.times[0] for t in three.times] == [0, 15, 30, 45, 60], "each sample's time, a step apart"
    several = last_minute(two)
    assert several.outcome is Outcome.SEVERAL_SERIES
    assert '{pod="a"}, {pod="b"}' in several.message
    assert last_minute("no_such_metric_anywhere").outcome is Outcome.NO_DATA
    assert last_minute("vector(NaN)") == RangeResult(Outcome.NOT_A_NUMBER, message="all 5 samples are NaN or infinite")


def test_prometheus_without_the_ca_or_the_password_says_which(guarded_prometheus: GuardedPrometheus) -> None:
    untrusted = provider_for(ProviderConfig("prometheus", guarded_prometheus.url,
                                            credentials={"username": USER, "password": PASSWORD}))
    trusting = _guarded(guarded_prometheus, ca_bundle=None, insecure_skip_verify=True)
    wrong = _guarded(guarded_prometheus, credentials={"username": USER, "password": "wrong"})

    unverified = untrusted.query("vector(1)")
    assert unverified.outcome is Outcome.UNAVAILABLE
    assert "TLS failed" in unverified.message
    assert "CERTIFICATE_VERIFY_FAILED" in unverified.message
    assert trusting.query("vector(1)") == QueryResult(Outcome.VALUE, value=1.0)
    refused = wrong.query("vector(1)")
    assert refused.outcome is Outcome.REJECTED
    assert "HTTP 401 Unauthorized" in refused.message


# --- Datadog ---------------------------------------------------------------------------------------------------------

DATADOG_KEYS = {"apiKey": "dd-api", "applicationKey": "dd-app"}


def _datadog_series(*pointlists: list[list[float | None]]) -> dict[str, Any]:
    return {"status": "ok", "res_type": "time_series", "from_date": 1700000000000, "to_date": 1700000300000,
            "series": [{"metric": "trace.http.request.errors", "scope": f"service:s{i}", "pointlist": p,
                        "expression": "avg:trace.http.request.errors{service:web}", "interval": 60, "length": len(p)}
                       for i, p in enumerate(pointlists)]}


def test_datadog_queries_the_window_with_both_keys_and_takes_the_last_point(fake_api: StartApi) -> None:
    api = fake_api(lambda seen: Answer(body=_datadog_series([[1700000000000.0, 0.5], [1700000060000.0, 1.5],
                                                             [1700000120000.0, None]])))
    provider = provider_for(ProviderConfig("datadog", api.url, credentials=DATADOG_KEYS, window=600))

    before = int(time.time())
    result = provider.query("avg:trace.http.request.errors{service:web}.as_count()")

    assert result == QueryResult(Outcome.VALUE, value=1.5)
    (seen,) = api.seen
    assert (seen.method, seen.path) == ("GET", "/api/v1/query")
    assert seen.query["query"] == ["avg:trace.http.request.errors{service:web}.as_count()"]
    sent_from, sent_to = int(seen.query["from"][0]), int(seen.query["to"][0])
    assert sent_to - sent_from == 600
    assert before <= sent_to <= int(time.time())
    assert seen.headers["dd-api-key"] == "dd-api"
    assert seen.headers["dd-application-key"] == "dd-app"


def test_datadog_no_data_several_series_and_refusals(fake_api: StartApi) -> None:
    answers = iter([Answer(body={"status": "ok", "series": []}),
                    Answer(body=_datadog_series([[0.0, 1.0]], [[0.0, 2.0]])),
                    Answer(403, {"errors": ["Forbidden"]}), Answer(400, {"errors": ["Error parsing query: x"]})])
    api = fake_api(lambda seen: next(answers))
    provider = provider_for(ProviderConfig("datadog", api.url, credentials=DATADOG_KEYS))

    results = [provider.query("avg:m{*}") for _ in range(4)]

    assert results[0] == QueryResult(Outcome.NO_DATA, message="the query returned no series")
    assert results[1].outcome is Outcome.SEVERAL_SERIES
    assert results[2] == QueryResult(Outcome.REJECTED, message=f"Datadog at {api.url} refused the query: HTTP 403 "
                                                               "Forbidden: Forbidden")
    assert results[3].message.endswith("HTTP 400 Bad Request: Error parsing query: x")


# --- New Relic -------------------------------------------------------------------------------------------------------

NEWRELIC_KEYS = {"apiKey": "NRAK-TEST", "accountId": "1234567"}


def _nerdgraph(results: list[dict[str, Any]]) -> dict[str, Any]:
    return {"data": {"actor": {"account": {"nrql": {"results": results}}}}}


def test_new_relic_posts_nrql_to_nerdgraph_with_the_api_key(fake_api: StartApi) -> None:
    api = fake_api(lambda seen: Answer(body=_nerdgraph([{"percentage": 2.5}])))
    provider = provider_for(ProviderConfig("newrelic", f"{api.url}/graphql", credentials=NEWRELIC_KEYS))
    nrql = "SELECT percentage(count(*), WHERE error IS true) FROM Transaction WHERE appName = 'web' SINCE 1 minute ago"

    assert provider.query(nrql) == QueryResult(Outcome.VALUE, value=2.5)

    (seen,) = api.seen
    assert (seen.method, seen.path) == ("POST", "/graphql")
    assert seen.headers["api-key"] == "NRAK-TEST"
    assert seen.headers["content-type"] == "application/json"
    body = seen.json()
    assert body["variables"] == {"accountId": 1234567, "nrql": nrql}
    assert "account(id: $accountId)" in body["query"]


def test_new_relic_no_rows_and_graphql_errors(fake_api: StartApi) -> None:
    answers = iter([Answer(body=_nerdgraph([])), Answer(body=_nerdgraph([{"average.duration": None}])),
                    Answer(body={"data": {"actor": {"account": {"nrql": None}}},
                                 "errors": [{"message": "NRQL Syntax Error: Error at line 1 position 7"}]}),
                    Answer(401, {"errors": [{"message": "Invalid API key"}]})])
    api = fake_api(lambda seen: next(answers))
    provider = provider_for(ProviderConfig("newrelic", f"{api.url}/graphql", credentials=NEWRELIC_KEYS))

    results = [provider.query("SELECT average(duration) FROM Transaction") for _ in range(4)]

    assert results[0] == QueryResult(Outcome.NO_DATA, message="the query returned no rows")
    assert results[1] == QueryResult(Outcome.NO_DATA, message="average.duration is null")
    assert results[2] == QueryResult(Outcome.REJECTED, message=f"New Relic at {api.url}/graphql refused the query: "
                                                               "NRQL Syntax Error: Error at line 1 position 7")
    assert results[3].message.endswith("HTTP 401 Unauthorized: Invalid API key")


# --- CloudWatch ------------------------------------------------------------------------------------------------------

AWS_KEYS = {"accessKeyId": "AKIDEXAMPLE", "secretAccessKey": "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            "sessionToken": "session-token"}
CLOUDWATCH_QUERY = json.dumps([
    {"Id": "e1", "Expression": "m1 / m2", "Label": "ErrorRate"},
    {"Id": "m1", "ReturnData": False, "MetricStat": {"Metric": {"Namespace": "App", "MetricName": "Errors"},
                                                      "Period": 60, "Stat": "Sum"}},
    {"Id": "m2", "ReturnData": False, "MetricStat": {"Metric": {"Namespace": "App", "MetricName": "Requests"},
                                                      "Period": 60, "Stat": "Sum"}},
])
_AUTHORIZATION = re.compile(r"AWS4-HMAC-SHA256 Credential=(?P<key>[^/]+)/(?P<day>\d{8})/(?P<region>[^/]+)/"
                            r"(?P<service>[^/]+)/aws4_request, SignedHeaders=(?P<names>[^,]+), "
                            r"Signature=(?P<signature>[0-9a-f]{64})")


def _signature_holds(seen: Seen, secret: str) -> bool:
    """Check the signature as AWS would: recompute it from the request as received."""
    match = _AUTHORIZATION.fullmatch(seen.headers["authorization"])
    assert match is not None, seen.headers["authorization"]
    added_by_signing = ("x-amz-date", "x-amz-security-token")
    headers = {name: seen.headers[name] for name in match["names"].split(";") if name not in added_by_signing}
    when = datetime.strptime(seen.headers["x-amz-date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    credentials = AwsCredentials(match["key"], secret, seen.headers.get("x-amz-security-token"))
    expected = sign(method=seen.method, url=f"http://{seen.headers['host']}{seen.path}", headers=headers,
                    body=seen.body, credentials=credentials, region=match["region"], service=match["service"],
                    now=when)
    return expected["Authorization"] == seen.headers["authorization"]


def test_cloudwatch_sends_a_signed_get_metric_data_and_takes_the_latest_value(
        fake_api: StartApi) -> None:
    api = fake_api(lambda seen: Answer(body={"MetricDataResults": [
        {"Id": "e1", "Label": "ErrorRate", "StatusCode": "Complete",
         "Timestamps": [1700000120, 1700000060], "Values": [0.25, 0.5]}], "Messages": []}))
    provider = provider_for(ProviderConfig("cloudwatch", api.url, region="eu-west-1", credentials=AWS_KEYS,
                                           window=600))

    assert provider.query(CLOUDWATCH_QUERY) == QueryResult(Outcome.VALUE, value=0.25)

    (seen,) = api.seen
    assert (seen.method, seen.path) == ("POST", "/")
    assert seen.headers["x-amz-target"] == "GraniteServiceVersion20100801.GetMetricData"
    assert seen.headers["content-type"] == "application/x-amz-json-1.0"
    assert seen.headers["x-amz-security-token"] == "session-token"
    assert "/eu-west-1/monitoring/aws4_request" in seen.headers["authorization"]
    assert _signature_holds(seen, AWS_KEYS["secretAccessKey"])
    body = seen.json()
    assert body["MetricDataQueries"] == json.loads(CLOUDWATCH_QUERY)
    assert body["EndTime"] - body["StartTime"] == 600


def test_cloudwatch_no_datapoints_and_aws_errors(fake_api: StartApi) -> None:
    answers = iter([
        Answer(body={"MetricDataResults": [{"Id": "e1", "StatusCode": "Complete", "Timestamps": [], "Values": []}]}),
        Answer(400, {"__type": "com.amazon.coral.validate#ValidationException",
                     "message": "Invalid metric math expression"}),
        Answer(403, {"__type": "com.amazon.coral.service#AccessDeniedException", "Message": "not authorized"}),
    ])
    api = fake_api(lambda seen: next(answers))
    provider = provider_for(ProviderConfig("cloudwatch", api.url, region="us-east-1", credentials=AWS_KEYS))

    results = [provider.query(CLOUDWATCH_QUERY) for _ in range(3)]
    not_json = provider.query("m1 / m2")

    assert results[0] == QueryResult(Outcome.NO_DATA, message="e1 has no datapoints in the window")
    assert results[1] == QueryResult(Outcome.REJECTED, message=f"CloudWatch at {api.url} refused the query: HTTP "
                                                               "400 Bad Request: ValidationException: Invalid metric "
                                                               "math expression")
    assert results[2].message.endswith("HTTP 403 Forbidden: AccessDeniedException: not authorized")
    assert not_json.outcome is Outcome.REJECTED
    assert len(api.seen) == 3


# --- web -------------------------------------------------------------------------------------------------------------


def test_web_gets_the_url_and_picks_the_number(fake_api: StartApi) -> None:
    api = fake_api(lambda seen: Answer(body={"data": {"errorRate": "0.03", "healthy": True}}))
    provider = provider_for(ProviderConfig("web", f"{api.url}/api/health?service=web",
                                           headers={"X-Team": "payments"}, credentials={"token": "w3b"}))

    assert provider.query("$.data.errorRate") == QueryResult(Outcome.VALUE, value=0.03)
    assert provider.query("{$.data.healthy}") == QueryResult(Outcome.VALUE, value=1.0)

    seen = api.seen[0]
    assert (seen.method, seen.path, seen.query) == ("GET", "/api/health", {"service": ["web"]})
    assert seen.headers["authorization"] == "Bearer w3b"
    assert seen.headers["x-team"] == "payments"


def test_web_posts_a_json_body_when_the_query_has_one(fake_api: StartApi) -> None:
    api = fake_api(lambda seen: Answer(body={"result": {"p99": 212.5}}))
    provider = provider_for(ProviderConfig("web", f"{api.url}/latency"))

    result = provider.query('{"jsonPath": "$.result.p99", "body": {"service": "web", "window": "5m"}}')

    assert result == QueryResult(Outcome.VALUE, value=212.5)
    (seen,) = api.seen
    assert seen.method == "POST"
    assert seen.headers["content-type"] == "application/json"
    assert seen.json() == {"service": "web", "window": "5m"}


def test_web_failures_are_unavailable_or_refused(fake_api: StartApi) -> None:
    answers = iter([Answer(500, b"boom"), Answer(404, b"no such page"), Answer(200, b"<html>login</html>")])
    api = fake_api(lambda seen: next(answers))
    provider = provider_for(ProviderConfig("web", f"{api.url}/metric"))

    broken, missing, html = (provider.query("$.value") for _ in range(3))

    assert broken == QueryResult(Outcome.UNAVAILABLE, message=f"the web metric at {api.url}/metric is unavailable: "
                                                              "HTTP 500 Internal Server Error: (4 bytes of text)"), \
        "the answer's body never reaches a message"
    assert missing.outcome is Outcome.REJECTED
    assert html.outcome is Outcome.UNAVAILABLE
    assert "the answer is not JSON" in html.message
