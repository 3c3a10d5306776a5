"""Scenarios 2 to 5: the control plane restarted, Prometheus stopped, killed or hung, hung webhook and
chat receivers beside a healthy canary, and a namespace whose Service quota is used up.

Each returns its rows; ``__main__`` runs them after the kills.
"""

from __future__ import annotations

import contextlib
import itertools
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from bench.chaos.lab import (
    PROMOTED,
    PROMOTING,
    TERMINAL,
    Lab,
    Release,
    begin,
    in_namespaces,
    judged,
    of_release,
    problems,
    settle,
    silent,
    status_of,
    wait_end,
    wait_for,
)
from bench.chaos.report import Row
from canary.errors import WaitTimeout
from canary.kube import Obj
from canary.waiting import wait_until
from tests.builders import make_canary, make_deployment
from tests.e2e.canaries import events

OUTAGE = 6.0
"""Seconds a component stays down (or stopped) in the restart and Prometheus scenarios."""


def _underway(lab: Lab, shipped: Release, *, weight: int = 25) -> Obj:
    """Wait until the release runs at ``weight`` (gatewayapi): mid-analysis."""
    return wait_for(lambda: status_of(lab.kube, shipped.namespace, shipped.name),
                    lambda s: s.get("phase") == "Progressing" and s.get("canaryWeight") == weight
                    and s.get("lastAppliedSpec") != shipped.previous_revision,
                    what=f"the release of {shipped.image} to reach weight {weight}", timeout=60, interval=0.05)


def _phases(lab: Lab, namespace: str, *, seconds: float, name: str = "web") -> list[str]:
    """The phases the Canary goes through in the next ``seconds`` (API errors skipped)."""
    seen: list[str] = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        phase = str(status_of(lab.kube, namespace, name).get("phase", ""))
        if phase and (not seen or seen[-1] != phase):
            seen.append(phase)
        time.sleep(0.1)
    return seen


def _promotions(phases: list[str]) -> int:
    """How many times the phases enter promotion (Promoting, Finalising or Succeeded from elsewhere)."""
    return sum(1 for before, after in itertools.pairwise(phases)
               if after in PROMOTING and before not in PROMOTING)


class _Infra:
    """A gatewayapi Canary judged by Prometheus and its controller, for the control plane and
    Prometheus scenarios (one release each, one after the other)."""

    def __init__(self, lab: Lab) -> None:
        self.lab = lab
        self.namespace = lab.namespace("chaos-infra")
        lab.controller(self.namespace, "infra")
        lab.canary(self.namespace, judged("web", self.namespace, "gatewayapi"))
        self.version, self.good_image = 1, "web:1"

    def begin(self, *, bad: bool) -> Release:
        settle(self.lab.kube, self.namespace)
        self.version += 1
        return begin(self.lab.kube, self.namespace, f"web:{self.version}", bad=bad,
                     previous_good_image=self.good_image)

    def end(self, shipped: Release, *, either: bool = False) -> tuple[Obj, list[str], tuple[int, int, int]]:
        """Wait for the end; (status, problems, (lost, duplicates, unexpected) alerts)."""
        status = wait_end(self.lab.kube, shipped)
        found = problems(self.lab.kube, shipped, status, router="gatewayapi", either=either)
        if status.get("phase") == "Succeeded":
            self.good_image = shipped.image
        self.lab.ledger.expect_release(shipped, status)
        return status, found, self.lab.ledger.settle(of_release(shipped, status), timeout=20)


def _outcome(status: Obj, found: list[str]) -> str:
    return str(status.get("phase")) if not found else "; ".join(found)


def control_plane(lab: Lab) -> list[Row]:
    """kube-apiserver, then etcd, SIGKILLed mid-release and started again after ``OUTAGE`` seconds."""
    infra = _Infra(lab)
    rows = []
    for component, bad in (("kube-apiserver", False), ("etcd", True)):
        shipped = infra.begin(bad=bad)
        _underway(lab, shipped)
        began = time.monotonic()
        lab.crash(component)
        time.sleep(OUTAGE)
        restarted = lab.resume()
        outage = time.monotonic() - began
        status, found, (lost, duplicates, _) = infra.end(shipped)
        took = time.monotonic() - shipped.started
        lab.figure(f"{component} killed at weight 25 of a {'bad' if bad else 'good'} release: down {outage:.1f}s "
                   f"(restarted: {', '.join(restarted)}), the release ended {took:.1f}s after it began")
        want = "Failed, primary on the old image" if bad else "Succeeded, primary on the new image"
        rows.append(Row(scenario=f"{component} killed mid-release, restarted after {OUTAGE:g} s", runs=1,
                        expected=f"{'bad' if bad else 'good'} release: {want}; all traffic on the primary",
                        got=_outcome(status, found), passed=not found and lost == 0, lost=lost,
                        duplicates=duplicates, notes=[f"down {outage:.1f} s", f"release took {took:.1f} s"]))
    rows += _prometheus_down(lab, infra)
    return rows


def _prometheus_down(lab: Lab, infra: _Infra) -> list[Row]:
    """A good release with Prometheus stopped (SIGSTOP, then SIGCONT), then one with it killed and restarted."""
    def pause() -> None:
        lab.signal("prometheus", signal.SIGSTOP)

    def carry_on() -> None:
        lab.signal("prometheus", signal.SIGCONT)

    def kill() -> None:
        lab.crash("prometheus")

    def restart() -> None:
        lab.resume()

    rows = []
    outages: list[tuple[str, Callable[[], None], Callable[[], None]]] = [
        ("stopped (SIGSTOP), resumed (SIGCONT)", pause, carry_on), ("killed (SIGKILL), restarted", kill, restart)]
    for how, stop, start in outages:
        shipped = infra.begin(bad=False)
        _underway(lab, shipped)
        began = time.monotonic()
        stop()
        try:
            during = _phases(lab, infra.namespace, seconds=OUTAGE)
        finally:
            start()
        outage = time.monotonic() - began
        status, found, (lost, duplicates, _) = infra.end(shipped, either=True)
        promoted = _promotions(["Progressing", *during])
        after = status.get("phase")
        lab.figure(f"Prometheus {how} at weight 25 of a good release: {outage:.1f}s without it, phases meanwhile "
                   f"{' -> '.join(during)}; the release ended {after}")
        rows.append(Row(scenario=f"Prometheus {how} mid-release, {OUTAGE:g} s", runs=1,
                        expected="0 promotions while it is down (holds or fails)",
                        got=f"{promoted} promotions; ended {after}", passed=promoted == 0 and not found
                        and lost == 0, lost=lost, duplicates=duplicates,
                        notes=[f"phases while down: {' -> '.join(during)}", *found]))
    return rows


def prometheus_hung(lab: Lab) -> list[Row]:
    """A controller whose --metrics-server takes connections and never answers, during a good release."""
    with silent() as hung:
        namespace = lab.namespace("chaos-prom-hung")
        lab.controller(namespace, "prometheus-hung", "--metrics-server", hung.url)
        lab.canary(namespace, judged("web", namespace, "gatewayapi"))
        shipped = begin(lab.kube, namespace, "web:2", bad=False, previous_good_image="web:1")
        during = _phases(lab, namespace, seconds=2 * OUTAGE)
        status = wait_end(lab.kube, shipped, timeout=60)
        found = problems(lab.kube, shipped, status, router="gatewayapi", either=True)
        lab.ledger.expect_release(shipped, status)
        lost, duplicates, _ = lab.ledger.settle(of_release(shipped, status), timeout=20)
        promoted = _promotions(during)
        lab.figure(f"Prometheus hung: {len(hung.paths)} queries held; phases {' -> '.join(during)}")
        return [Row(scenario="Prometheus hung (takes connections, never answers) during a release", runs=1,
                    expected="0 promotions (holds or fails)", got=f"{promoted} promotions; ended {status.get('phase')}",
                    passed=promoted == 0 and status.get("phase") != "Succeeded" and not found and lost == 0,
                    lost=lost, duplicates=duplicates,
                    notes=[f"{len(hung.paths)} queries held", f"phases: {' -> '.join(during)}", *found])]


SLOW = {"pre-rollout": 4, "rollout": 1, "alerts": 2}
"""How many canaries hang on each: their pre-rollout hook, their rollout hook, their chat service."""
HEALTHY_INTERVAL = 2.0
FIRST_WAIT = 2.0
"""How long the tick that starts a gating webhook call waits for its answer (``WebhookCaller``'s wait)."""


def isolation(lab: Lab) -> list[Row]:
    """Canaries whose webhooks or chat service hang, on a controller with two workers, and a healthy
    canary released while they hang: its steps keep its interval and its alerts arrive at once. Then
    the hanging canaries start new calls at the moment the healthy canary is released again (a figure:
    each call's first tick waits for it, so such a burst delays the others once)."""
    with silent() as hung:
        namespace = lab.namespace("chaos-isolation")
        lab.kube.create({"apiVersion": "canary.dev/v1alpha1", "kind": "AlertProvider",
                         "metadata": {"name": "hung-chat", "namespace": namespace},
                         "spec": {"type": "slack", "address": f"{hung.url}/chat"}})
        lab.controller(namespace, "isolation", "--workers", "2")
        slow, hooked = [], []
        for kind, count in SLOW.items():
            for index in range(count):
                name = f"{kind}-{index}"
                analysis: Obj = {"interval": "1s", "threshold": 2, "iterations": 3}
                if kind == "alerts":
                    analysis["alerts"] = [{"name": "chat", "severity": "info", "providerRef": {"name": "hung-chat"}}]
                else:
                    analysis["webhooks"] = [{"name": "gate", "type": kind, "url": f"{hung.url}/{name}",
                                             "timeout": "1m"}]
                    hooked.append(name)
                lab.kube.create(make_deployment(name, namespace, replicas=1, image=f"{name}:1"))
                lab.kube.create(make_canary(name, namespace, provider="kubernetes", analysis=analysis))
                slow.append(name)
        lab.kube.create(make_deployment("healthy", namespace, replicas=1, image="healthy:1"))
        lab.kube.create(make_canary("healthy", namespace, analysis={
            "interval": f"{HEALTHY_INTERVAL:g}s", "threshold": 2, "stepWeight": 20, "maxWeight": 60}))
        for name in [*slow, "healthy"]:
            wait_for(partial(status_of, lab.kube, namespace, name), lambda s: s.get("phase") == "Initialized",
                     what=f"{name} to initialise", timeout=60)
        lab.ledger.expect(namespace, "healthy", str(status_of(lab.kube, namespace, "healthy").get("lastAppliedSpec")),
                          "initialised")
        for name in slow:
            begin(lab.kube, namespace, f"{name}:2", bad=False, previous_good_image=f"{name}:1", name=name)
        wait_for(lambda: hung.paths, lambda paths: {f"/{n}" for n in hooked} <= set(paths),
                 what="every hanging hook to be called", timeout=60)
        time.sleep(FIRST_WAIT)  # the ticks that started the calls have stopped waiting for them
        steady = _healthy_release(lab, namespace, "healthy:2", previous_good_image="healthy:1")

        for name in hooked:  # new revisions: new calls, all at once, with the healthy canary's next release
            begin(lab.kube, namespace, f"{name}:3", bad=False, previous_good_image=f"{name}:1", name=name)
        burst = _healthy_release(lab, namespace, "healthy:3", previous_good_image="healthy:2")
        held = sorted({str(status_of(lab.kube, namespace, name).get("phase")) for name in hooked})
        lost, duplicates, _ = lab.ledger.settle(lambda key: key[:2] == (namespace, "healthy"), timeout=10)
        calls = len(hung.paths)

    lab.figure(f"isolation, hooks already hanging: the healthy canary's gaps {steady.gaps} s (interval "
               f"{HEALTHY_INTERVAL:g} s), its promotion alert {steady.alerted}; {calls} calls held by the hung "
               f"receivers; the hooked canaries now {', '.join(held)}")
    lab.figure(f"isolation, {len(hooked)} hooks starting their calls with the healthy canary's release: gaps "
               f"{burst.gaps} s (each call's first tick waits up to {FIRST_WAIT:g} s, {len(hooked)} calls over 2 "
               f"workers)")
    ok = steady.worst <= 2 * HEALTHY_INTERVAL and steady.alert_delay is not None \
        and steady.alert_delay <= HEALTHY_INTERVAL
    notes = [f"{sum(SLOW.values())} hanging canaries ({', '.join(f'{n} {k}' for k, n in SLOW.items())}), 2 workers",
             f"gaps {steady.gaps} s", f"promotion alert {steady.alerted}",
             f"when {len(hooked)} hooks start their calls together with a step: largest gap {burst.worst:.1f} s",
             *steady.problems, *burst.problems]
    return [Row(scenario="hung webhooks (pre-rollout, rollout) and chat service on other canaries", runs=1,
                expected=f"healthy canary promoted, no step or alert more than one interval late (gap <= "
                         f"{2 * HEALTHY_INTERVAL:g} s, alert <= {HEALTHY_INTERVAL:g} s after the end)",
                got=f"largest gap {steady.worst:.1f} s, alert {steady.alerted}; {steady.phase}",
                passed=ok and not steady.problems and not burst.problems and lost == 0, lost=lost,
                duplicates=duplicates, notes=notes)]


@dataclass
class _Healthy:
    """How a release of the healthy canary went."""

    phase: str
    worst: float
    gaps: str
    alert_delay: float | None
    problems: list[str]

    @property
    def alerted(self) -> str:
        """When its promotion alert arrived."""
        return "not within 30 s" if self.alert_delay is None else f"{self.alert_delay:.1f} s after the end"


def _healthy_release(lab: Lab, namespace: str, image: str, *, previous_good_image: str) -> _Healthy:
    shipped = begin(lab.kube, namespace, image, bad=False, previous_good_image=previous_good_image, name="healthy")
    steps = _steps(lab, shipped)
    ended = time.monotonic()
    gaps = [after - before for (before, _), (after, _) in itertools.pairwise(steps)]
    status = status_of(lab.kube, namespace, "healthy")
    found = problems(lab.kube, shipped, status, router="gatewayapi")
    lab.ledger.expect_release(shipped, status)
    key = (namespace, "healthy", str(status.get("lastAppliedSpec", "")), PROMOTED)
    arrived = None
    with contextlib.suppress(WaitTimeout):
        wait_until(lambda: lab.ledger.received()[key], bool, what="the promotion alert", timeout=30, interval=0.05)
        arrived = time.monotonic() - ended
    return _Healthy(phase=str(status.get("phase")), worst=max(gaps), gaps=", ".join(f"{g:.1f}" for g in gaps),
                    alert_delay=arrived, problems=found)


def _steps(lab: Lab, shipped: Release) -> list[tuple[float, str]]:
    """The healthy canary's changes (phase, weight) with their times, from its release to its end."""
    seen: list[tuple[float, str]] = [(shipped.started, "released")]
    deadline = shipped.started + 60
    while time.monotonic() < deadline:
        status = status_of(lab.kube, shipped.namespace, shipped.name)
        if status.get("lastAppliedSpec") == shipped.previous_revision:
            time.sleep(0.05)
            continue
        step = f"{status.get('phase')} {status.get('canaryWeight', 0)}"
        if seen[-1][1] != step:
            seen.append((time.monotonic(), step))
        if status.get("phase") in TERMINAL:
            break
        time.sleep(0.05)
    return seen


def quota(lab: Lab) -> list[Row]:
    """A ResourceQuota whose Services are used up, then a Canary that needs three Services."""
    namespace = lab.namespace("chaos-quota")
    lab.controller(namespace, "quota")
    lab.kube.create({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "filler", "namespace": namespace},
                     "spec": {"ports": [{"port": 80}]}})
    limit: Obj = {"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "services", "namespace": namespace},
                  "spec": {"hard": {"services": "1"}}}
    lab.kube.create(limit)
    wait_for(lambda: lab.kube.get("v1", "ResourceQuota", "services", namespace=namespace),
             lambda q: ((q or {}).get("status") or {}).get("used", {}).get("services") == "1",
             what="the quota to count the Service", timeout=30)
    began = time.monotonic()
    lab.kube.create(make_deployment("web", namespace, replicas=1, image="web:1"))
    lab.kube.create(make_canary("web", namespace, provider="kubernetes",
                                analysis={"interval": "1s", "threshold": 2, "iterations": 2}))
    conditions = wait_for(lambda: status_of(lab.kube, namespace, "web").get("conditions", []),
                          lambda found: any(c.get("type") == "Ready" and c.get("reason") == "Forbidden"
                                            for c in found), what="the Forbidden condition", timeout=30)
    condition_after = time.monotonic() - began
    ready = next(c for c in conditions if c.get("type") == "Ready")
    refused = wait_for(lambda: events(lab.kube, namespace, "web"),
                       lambda found: any(e.get("reason") == "Forbidden" for e in found), what="the Forbidden Event",
                       timeout=30)
    event_after = time.monotonic() - began
    message = str(ready.get("message", ""))
    limit["spec"]["hard"]["services"] = "10"
    raised = time.monotonic()
    lab.kube.apply(limit, field_manager="chaos")
    done = wait_for(lambda: status_of(lab.kube, namespace, "web"), lambda s: s.get("phase") == "Initialized",
                    what="the Canary to initialise once the quota is raised", timeout=60)
    went_on = time.monotonic() - raised
    lab.ledger.expect(namespace, "web", str(done.get("lastAppliedSpec", "")), "initialised")
    lost, duplicates, _ = lab.ledger.settle(in_namespaces(namespace), timeout=20)
    lab.figure(f"quota: Ready=False {ready.get('reason')} after {condition_after:.1f}s, its Event after "
               f"{event_after:.1f}s ({message[:100]}); initialised {went_on:.1f}s after the quota was raised")
    ok = ready.get("status") == "False" and "exceeded quota" in message and any(
        "exceeded quota" in str(e.get("message")) for e in refused) and condition_after <= 30
    return [Row(scenario="ResourceQuota with its Services used up, then a Canary", runs=1,
                expected="Ready=False Forbidden with the API server's message, and an Event, within 30 s; goes on "
                         "when the quota is raised",
                got=f"condition after {condition_after:.1f} s, Event after {event_after:.1f} s; initialised "
                    f"{went_on:.1f} s after the raise", passed=ok and lost == 0, lost=lost, duplicates=duplicates,
                notes=[message])]
