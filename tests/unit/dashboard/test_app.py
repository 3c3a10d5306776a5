"""The dashboard app over HTTP (uvicorn on loopback, a fake cluster): pages, JSON, the live stream, and
controls that act as the CLI does, refused cross-site or without a token; the controller's own paths
answer beside it."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from typing import Any, cast

import pytest
import requests

from canary.dashboard.actions import CSRF_COOKIE, CSRF_HEADER, Guard, Mode
from canary.dashboard.app import Dashboard, create_app
from canary.dashboard.feed import Feed
from canary.kube import Obj
from canary.kube.client import Kube
from canary.telemetry.server import AsgiServer, app, beside
from tests.builders import make_canary


class _Cluster:
    """The calls the dashboard makes, answered from memory; merge patches are recorded."""

    def __init__(self) -> None:
        web = make_canary("web", "shop")
        web["status"] = {"phase": "Progressing", "canaryWeight": 20}
        self.canaries = {("shop", "web"): web, ("shop", "api"): make_canary("api", "shop") | {
            "status": {"phase": "Succeeded"}}}
        self.patches: list[tuple[str, str, Obj]] = []

    def get(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> Obj | None:
        return self.canaries.get((namespace or "", name)) if kind == "Canary" else None

    def list_objects(self, api_version: str, kind: str, **selectors: Any) -> list[Obj]:
        return []

    def merge_patch(self, api_version: str, kind: str, name: str, patch: Obj, *, namespace: str | None = None) -> Obj:
        self.patches.append((kind, name, patch))
        return {}

    def listed(self, namespace: str | None) -> list[Obj]:
        return [c for (ns, _), c in self.canaries.items() if namespace in (None, ns)]


@pytest.fixture
def cluster() -> _Cluster:
    return _Cluster()


def _serve(cluster: _Cluster, guard: Guard, *, loopback: bool) -> tuple[AsgiServer, Feed]:
    feed = Feed(cluster.listed, namespace=None)
    dashboard = Dashboard(kube=cast(Kube, cluster), feed=feed,
                          get_canary=lambda ns, name: cluster.canaries.get((ns, name)), guard=guard, git=None,
                          namespace=None, served_by="test", loopback=loopback)
    wsgi = app(ready=lambda: True)
    return AsgiServer(0, beside(wsgi, create_app(dashboard)), host="127.0.0.1").start(), feed


@pytest.fixture
def local(cluster: _Cluster) -> Iterator[tuple[str, Feed]]:
    server, feed = _serve(cluster, Guard(Mode.LOCAL), loopback=True)
    yield f"http://127.0.0.1:{server.port}", feed
    server.stop()


def _session(url: str) -> requests.Session:
    """A browser-like session: it loaded the page (and got the CSRF cookie)."""
    session = requests.Session()
    assert session.get(url + "/", timeout=5).status_code == 200
    return session


def test_the_page_sets_the_csrf_cookie_and_forbids_framing(local: tuple[str, Feed]) -> None:
    url, _ = local
    answer = requests.get(url + "/", timeout=5)
    assert CSRF_COOKIE in answer.cookies
    assert "frame-ancestors 'none'" in answer.headers["content-security-policy"]
    assert "samesite=strict" in answer.headers["set-cookie"].lower()


def test_the_list_is_json_filtered_by_phase(local: tuple[str, Feed]) -> None:
    url, _ = local
    rows = requests.get(url + "/api/canaries", timeout=5).json()
    assert [(r["key"], r["phase"], r["weight"]) for r in rows] == [("shop/api", "Succeeded", 0),
                                                                   ("shop/web", "Progressing", 20)]
    assert [r["key"] for r in requests.get(url + "/api/canaries?phase=Progressing", timeout=5).json()] == ["shop/web"]
    missing = requests.get(url + "/api/canaries/shop/nope", timeout=5)
    assert (missing.status_code, missing.json()) == (404, {"error": "Canary shop/nope not found"})


def test_an_abort_from_the_page_writes_the_request_annotation_as_the_cli_does(local: tuple[str, Feed],
                                                                             cluster: _Cluster) -> None:
    url, _ = local
    session = _session(url)
    answer = session.post(url + "/api/canaries/shop/web/abort", timeout=5, headers={
        CSRF_HEADER: session.cookies[CSRF_COOKIE], "Origin": url, "Sec-Fetch-Site": "same-origin"})
    assert answer.status_code == 202, answer.text
    assert answer.json()["request"].startswith("abort/")
    assert cluster.patches == [("Canary", "web", {"metadata": {"annotations": {
        "canary.dev/request": answer.json()["request"]}}})]
    paused = session.post(url + "/api/canaries/shop/web/pause", timeout=5,
                          headers={CSRF_HEADER: session.cookies[CSRF_COOKIE]})
    assert paused.status_code == 202
    assert cluster.patches[-1] == ("Canary", "web", {"spec": {"suspend": True}})


def test_a_cross_site_post_changes_nothing(local: tuple[str, Feed], cluster: _Cluster) -> None:
    url, _ = local
    session = _session(url)
    answer = session.post(url + "/api/canaries/shop/web/abort", timeout=5, headers={
        CSRF_HEADER: session.cookies[CSRF_COOKIE], "Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"})
    assert answer.status_code == 403
    assert "cross-site" in answer.json()["error"]
    assert requests.post(url + "/api/canaries/shop/web/abort", timeout=5).status_code == 403, "no token at all"
    assert cluster.patches == []


def test_an_unknown_action_is_named(local: tuple[str, Feed]) -> None:
    url, _ = local
    answer = requests.post(url + "/api/canaries/shop/web/delete", timeout=5)
    assert answer.status_code == 404
    assert "no action 'delete'" in answer.json()["error"]


def test_a_loopback_dashboard_refuses_other_host_names(local: tuple[str, Feed]) -> None:
    url, _ = local
    assert requests.get(url + "/api/config", headers={"Host": "attacker.example"}, timeout=5).status_code == 400


def test_the_stream_sends_a_changed_row_when_the_watch_delivers_it(local: tuple[str, Feed],
                                                                   cluster: _Cluster) -> None:
    url, feed = local
    with requests.get(url + "/api/stream", stream=True, timeout=10) as stream:
        lines = stream.iter_lines(decode_unicode=True)
        assert next(lines) == "retry: 2000"
        changed = make_canary("web", "shop") | {"status": {"phase": "Progressing", "canaryWeight": 30}}
        threading.Thread(target=feed.on_canary, args=("MODIFIED", changed)).start()
        received = [next(lines) for _ in range(3)]
    assert received[1] == "event: canary"
    assert '"weight": 30' in received[2]


def test_a_canary_pages_stream_carries_that_canarys_events_as_the_watch_delivers_them(
        local: tuple[str, Feed]) -> None:
    url, feed = local
    event = {"apiVersion": "v1", "kind": "Event", "type": "Warning", "reason": "Halted", "message": "halted web",
             "metadata": {"name": "web.1", "namespace": "shop", "uid": "u1"},
             "involvedObject": {"kind": "Canary", "name": "web", "namespace": "shop"}}
    with requests.get(url + "/api/stream?namespace=shop&canary=web", stream=True, timeout=10) as stream:
        lines = stream.iter_lines(decode_unicode=True)
        assert next(lines) == "retry: 2000"
        other = event | {"involvedObject": {"kind": "Canary", "name": "api", "namespace": "shop"},
                         "metadata": {"name": "api.1", "namespace": "shop", "uid": "u0"}}

        def watch() -> None:
            feed.on_event("ADDED", other)
            feed.on_event("ADDED", event)

        threading.Thread(target=watch).start()
        received = [next(lines) for _ in range(3)]
    assert received[1] == "event: event"
    assert '"uid": "u1"' in received[2]
    assert '"reason": "Halted"' in received[2]


def test_a_read_only_dashboard_refuses_controls_and_the_controllers_paths_answer_beside_it(
        cluster: _Cluster) -> None:
    server, _ = _serve(cluster, Guard(Mode.OFF), loopback=False)
    url = f"http://127.0.0.1:{server.port}"
    try:
        session = _session(url)
        answer = session.post(url + "/api/canaries/shop/web/abort", timeout=5,
                              headers={CSRF_HEADER: session.cookies[CSRF_COOKIE]})
        assert answer.status_code == 403
        assert "read-only" in answer.json()["error"]
        assert requests.get(url + "/healthz", timeout=5).text == "ok\n"
        assert "canary_" in requests.get(url + "/metrics", timeout=5).text
        assert requests.get(url + "/api/config", timeout=5).json()["actions"] == "off"
    finally:
        server.stop()
    assert cluster.patches == []


def test_importing_the_dashboard_does_not_import_matplotlib() -> None:
    probe = "import sys, canary.dashboard.serve; print('matplotlib' in sys.modules)"
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60)
    assert loaded.stdout.strip() == "False", "charts import matplotlib when they are first drawn"
