"""The web dashboard in a real browser (Debian's chromium driven by Playwright) on the local stack with a
controller: ``canary dashboard`` follows a release live and charts its metrics against their thresholds,
its abort button rolls a release back and a cross-site POST changes nothing; ``canary controller
--dashboard`` serves the page beside /metrics and refuses actions without a token.

Screenshots of the list and of a canary page are saved in the test's tmp folder (the paths are printed).
"""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, sync_playwright
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from canary.kube import Obj
from canary.kube.client import Kube
from canary.local import stack
from canary.waiting import wait_until
from tests.builders import make_deployment
from tests.e2e.canaries import (
    canary_status,
    deployment,
    image_of,
    judged_canary,
    release,
    wait_phase,
    wait_target_quiet,
)
from tests.e2e.controllers import ControllerProcess

pytestmark = pytest.mark.usefixtures("gateway_api_crds")
RELEASE_TIMEOUT = 120_000  # ms, as Playwright counts


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's chromium (Playwright's own browser download cannot reach its host here)."""
    chromium = shutil.which("chromium")
    assert chromium is not None, "chromium is missing: tools/install-debian-packages.sh installs it"
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    yield context.new_page()
    context.close()


@pytest.fixture
def dashboard(local_stack: stack.StackState, namespace: str, tmp_path: Path) -> Iterator[str]:
    """``canary dashboard -n <namespace> --metrics-server <the stack's Prometheus>`` on a free port; its URL."""
    log = tmp_path / "dashboard.log"
    with log.open("wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "canary", "dashboard", "--port", "0", "-n", namespace,
                                    "--kubeconfig", local_stack.kubeconfig, "--metrics-server",
                                    local_stack.prometheus_url, "--mesh-provider", "gatewayapi"],
                                   stdout=out, stderr=subprocess.STDOUT)
    try:
        said = wait_until(log.read_text, lambda text: " on http://" in text or process.poll() is not None,
                          what=f"canary dashboard to say where it serves (log {log})", timeout=30)
        assert process.poll() is None, said
        yield said.split(" on ", 1)[1].split()[0].rstrip("/")
    finally:
        process.terminate()
        process.wait(timeout=10)


def _screenshot(page: Page, tmp_path: Path, name: str) -> None:
    path = tmp_path / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    print(f"screenshot: {path}")


def _judged_web(kube: Kube, namespace: str, **analysis: object) -> None:
    """``judged_canary`` web, Initialized; a step without data yet (the first scrapes of a new canary) holds
    the weight instead of failing, so the release's outcome depends on its metrics, not on scrape timing."""
    canary = judged_canary(namespace, "gatewayapi", **analysis)
    for metric in canary["spec"]["analysis"]["metrics"]:
        metric["noData"] = "pause"
    kube.create(make_deployment("web", namespace, replicas=2, image="web:1"))
    kube.create(canary)
    wait_phase(kube, namespace, "web", "Initialized")


def _wait_in_page(page: Page, expression: str, *, what: str, arg: object = None,
                  timeout: float = RELEASE_TIMEOUT) -> None:
    """Wait for ``expression`` to hold in the page; on timeout, say what the page showed."""
    try:
        page.wait_for_function(expression, arg=arg, timeout=timeout)
    except PlaywrightTimeout:
        shown = page.inner_text("body")[:1500]
        raise AssertionError(f"timed out waiting for {what}; weights seen {page.evaluate('window.weights')}; "
                             f"the page showed:\n{shown}") from None


def _canary_event(namespace: str, canary: str, message: str) -> Obj:
    """A Kubernetes Event about Canary ``canary``, as any component might write one."""
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"apiVersion": "v1", "kind": "Event", "type": "Normal", "reason": "Noted", "message": message,
            "metadata": {"name": f"{canary}.{os.urandom(4).hex()}", "namespace": namespace},
            "involvedObject": {"apiVersion": "canary.dev/v1alpha1", "kind": "Canary", "name": canary,
                               "namespace": namespace},
            "source": {"component": "e2e-test"}, "firstTimestamp": now, "lastTimestamp": now, "count": 1}


def _timeline_values(kube: Kube, namespace: str, metric: str) -> list[float]:
    timeline = canary_status(kube, namespace, "web")["timeline"]
    return [p["metrics"][metric] for p in timeline["points"]
            if (p.get("metrics") or {}).get(metric) is not None]


def _drawn(page: Page, chart: str, metric: str) -> dict[str, Any]:
    """Where the browser laid out a metric chart's threshold band (top and bottom) and the centres of its passed
    and failed markers, in page pixels (y grows downwards)."""
    return dict(page.evaluate("""([chart, metric]) => {
        const band = document.querySelector(`${chart} g#${metric}-band path`).getBoundingClientRect();
        const centres = kind => [...document.querySelectorAll(`${chart} g#${metric}-points-${kind} use`)]
            .map(u => u.getBoundingClientRect()).map(r => r.top + r.height / 2);
        return {top: band.top, bottom: band.bottom, passed: centres("passed"), failed: centres("failed")};
    }""", [chart, metric]))


def test_the_list_follows_a_release_live_and_the_canary_page_charts_metrics_against_their_thresholds(
    kube: Kube, namespace: str, controller: ControllerProcess, dashboard: str, page: Page, tmp_path: Path,
    local_stack: stack.StackState,
) -> None:
    _judged_web(kube, namespace, stepWeight=25, maxWeight=50)
    key = f"{namespace}/web"
    page.goto(dashboard + "/")
    page.wait_for_selector(f'tr[data-key="{key}"] [data-phase="Initialized"]')
    navigations: list[str] = []
    page.on("framenavigated", lambda frame: navigations.append(frame.url))
    page.evaluate("window.sameDocument = true")

    release(kube, namespace, "web:2")
    # Each animation frame looks at the row and notes its weight; the wait ends when the page says Succeeded.
    follow = """key => {
        const row = document.querySelector(`tr[data-key="${key}"]`);
        if (!row) return false;
        window.weights = window.weights || [];
        const weight = Number(row.querySelector(".bar").dataset.weight);
        if (window.weights.at(-1) !== weight) window.weights.push(weight);
        return row.querySelector("[data-phase]").dataset.phase === "Succeeded";
    }"""
    _wait_in_page(page, follow.replace('=== "Succeeded"', '=== "Progressing" && weight === 50'), arg=key,
                  what="the row to show weight 50 while Progressing")
    _screenshot(page, tmp_path, "dashboard-list")  # mid-release, at the top weight
    _wait_in_page(page, follow, arg=key, what="the row to show Succeeded")
    seen = page.evaluate("window.weights")
    assert page.evaluate("window.sameDocument") is True, "updated without a reload"
    assert navigations == []
    assert [w for w in seen if w in (25, 50)][:2] == [25, 50], f"the row's weight went {seen}"
    assert seen[-1] == 0, "back to the primary after promotion"

    page.click(f'tr[data-key="{key}"] a')
    page.wait_for_selector("#phase[data-phase='Succeeded']")
    chart = "#chart-metric-request-success-rate"
    page.wait_for_selector(f"{chart} g#request-success-rate-points-passed")
    values = _timeline_values(kube, namespace, "request-success-rate")
    assert values, "the timeline recorded the success rate"
    # The markers the browser laid out, and the threshold band: every passing value is drawn inside it.
    drawn = _drawn(page, chart, "request-success-rate")
    assert len(drawn["passed"]) == len(values) == len([v for v in values if v >= 99])
    assert all(drawn["top"] <= y <= drawn["bottom"] for y in drawn["passed"]), drawn
    # The success rate as Prometheus has it over the run, read by the dashboard: inside the band all along.
    page.wait_for_selector("#prometheus-note[data-read='yes']")
    assert local_stack.prometheus_url in page.inner_text("#prometheus-note")
    line = page.evaluate("""chart => { const path = document.querySelector(`${chart} g#request-success-rate-prometheus
        path`); if (!path) return null; const r = path.getBoundingClientRect(); return [r.top, r.bottom]; }""", chart)
    assert line is not None, "the chart draws the Prometheus series"
    assert drawn["top"] - 2 <= line[0] <= line[1] <= drawn["bottom"] + 2, (line, drawn)
    weights = page.locator("#chart-weights g#weights-canary use")
    assert weights.count() == len(canary_status(kube, namespace, "web")["timeline"]["points"])
    assert page.locator("#events tbody tr", has_text="Promotion completed").count() == 1

    # A new Event of the canary reaches the open page on its stream: the page cannot re-read its data meanwhile.
    detail = f"**/api/canaries/{namespace}/web"
    page.evaluate("window.sameDocument = true")
    page.route(detail, lambda route: route.abort())
    kube.create(_canary_event(namespace, "web", "a note the test wrote"))
    page.wait_for_selector("#events tbody tr:has-text('a note the test wrote')", timeout=15_000)
    page.unroute(detail)
    assert page.evaluate("window.sameDocument") is True, "shown without a reload"

    # A bad release, watched on the same page: its failing values are drawn red, below the band.
    wait_target_quiet(local_stack.prometheus_url, namespace)
    release(kube, namespace, "web:3", annotations={"sim.canary.dev/error-rate": "30"})
    _wait_in_page(page, "() => document.querySelector('#phase').dataset.phase === 'Failed'",
                  what="the canary page to show Failed")
    failing = [v for v in _timeline_values(kube, namespace, "request-success-rate") if v < 99]
    assert len(failing) >= 2, "two failed checks rolled it back"
    _wait_in_page(page, "([chart, count]) => document.querySelectorAll("
                  "`${chart} g#request-success-rate-points-failed use`).length === count",
                  arg=[chart, len(failing)], what=f"the chart to draw the {len(failing)} failing values",
                  timeout=10_000)
    drawn = _drawn(page, chart, "request-success-rate")
    assert all(y > drawn["bottom"] for y in drawn["failed"]), drawn
    steps = len(canary_status(kube, namespace, "web")["timeline"]["points"])
    _wait_in_page(page, "count => document.querySelectorAll('#chart-weights g#weights-canary use').length === count",
                  arg=steps, what=f"the weights chart to draw the run's {steps} steps, the rollback last",
                  timeout=10_000)
    assert page.locator("#chart-weights text", has_text="rollback").count() == 1
    _screenshot(page, tmp_path, "dashboard-canary")


def test_the_abort_button_rolls_a_release_back_and_a_cross_site_post_changes_nothing(
    kube: Kube, namespace: str, controller: ControllerProcess, dashboard: str, page: Page
) -> None:
    # Ten steps of 5% every 2 s: time enough to act while it runs.
    _judged_web(kube, namespace, stepWeight=5, maxWeight=50)
    page.goto(f"{dashboard}/canaries/{namespace}/web")
    page.wait_for_selector("#phase[data-phase='Initialized']")
    release(kube, namespace, "web:2")
    page.wait_for_selector("#phase[data-phase='Progressing']", timeout=60_000)

    # Another site's page posts a form to the dashboard: the browser sends it with our cookie, and it is refused.
    target = f"{dashboard}/api/canaries/{namespace}/web/abort"
    page.route("http://attacker.test/", lambda route: route.fulfill(content_type="text/html", body=(
        f'<form method="post" action="{target}"><input name="x" value="1"></form>'
        "<script>document.forms[0].submit()</script>")))
    with page.expect_response(target) as refused:
        page.goto("http://attacker.test/")
    assert refused.value.status == 403
    assert "cross-site" in refused.value.json()["error"]
    canary = kube.get("canary.dev/v1alpha1", "Canary", "web", namespace=namespace)
    assert canary is not None
    assert "canary.dev/request" not in (canary["metadata"].get("annotations") or {})

    page.goto(f"{dashboard}/canaries/{namespace}/web")
    page.wait_for_selector("#phase[data-phase='Progressing']")
    page.click("button[data-action='abort']")
    assert "roll the canary back" in page.inner_text("#confirm-text")
    page.click("#confirm-yes")
    page.wait_for_selector("#phase[data-phase='Failed']", timeout=60_000)
    _wait_in_page(page, "() => document.querySelector('#action-result').textContent.includes('handled')",
                  what="the page to say the controller handled the abort")
    assert image_of(deployment(kube, namespace, "web-primary")) == "web:1", "the primary kept the old release"
    assert canary_status(kube, namespace, "web")["canaryWeight"] == 0


def test_the_controller_serves_the_dashboard_beside_its_metrics_and_refuses_actions_without_a_token(
    kube: Kube, namespace: str, local_stack: stack.StackState, canary_crds: list[str], page: Page, tmp_path: Path
) -> None:
    token = base64.b32encode(os.urandom(10)).decode()
    secret: Obj = {"apiVersion": "v1", "kind": "Secret",
                   "metadata": {"name": "dashboard-tokens", "namespace": namespace},
                   "data": {"alice": base64.b64encode(token.encode()).decode()}}
    kube.create(secret)
    served = ControllerProcess(local_stack, namespace, tmp_path / "controller", extra=(
        "--dashboard", "--dashboard-actions", "--dashboard-tokens", f"{namespace}/dashboard-tokens"))
    served.start()
    try:
        _judged_web(kube, namespace, stepWeight=25, maxWeight=50)
        base = f"http://127.0.0.1:{served.port}"
        for path in ("/healthz", "/readyz", "/metrics"):
            with urllib.request.urlopen(base + path, timeout=5) as answer:  # noqa: S310 - our own http URL
                assert answer.status == 200, path
        page.goto(f"{base}/canaries/{namespace}/web")
        page.wait_for_selector("#phase[data-phase='Initialized']")
        assert page.is_visible("#token"), "the page asks for a token"

        page.click("button[data-action='pause']")
        page.click("#confirm-yes")
        _wait_in_page(page, "() => document.querySelector('#action-result').textContent.includes('refused (401)')",
                      what="the page to say the pause was refused", timeout=10_000)
        suspended = kube.get("canary.dev/v1alpha1", "Canary", "web", namespace=namespace)
        assert suspended is not None
        assert not suspended["spec"].get("suspend"), "nothing changed without a token"

        page.fill("#token", token)
        page.click("button[data-action='pause']")
        page.click("#confirm-yes")
        _wait_in_page(page, "() => document.querySelector('#action-result').textContent.includes('by alice')",
                      what="the page to say alice paused it", timeout=10_000)
        wait_until(lambda: kube.get("canary.dev/v1alpha1", "Canary", "web", namespace=namespace),
                   lambda c: c is not None and c["spec"].get("suspend") is True, what="the Canary to be paused",
                   timeout=10)
        page.wait_for_selector("#phase:has-text('(paused)')")
    finally:
        served.stop()
    logged = [line for line in served.log.read_text().splitlines() if "dashboard action" in line]
    assert any("refused" in line and "bearer token" in line for line in logged), logged
    assert any("who=alice" in line or '"who": "alice"' in line for line in logged), logged
