"""One tick of one canary: observe, decide, act, record.

Reads come from the informers; writes go to the API server and back into the informers. The
Canary's status is written conditionally on its resourceVersion: when someone else changed the
status in between, the tick stops (the next one decides afresh); when only metadata or spec
changed, the same change is applied to the fresh object.
"""

from __future__ import annotations

import contextlib
import secrets
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime
from functools import partial

import structlog

from canary.engine import alerts
from canary.engine.canaries import Canaries, InvalidCanary, cross_namespace_refs
from canary.engine.checks import CheckRunner
from canary.engine.decide import REQUEST_ANNOTATION, RUNNING, Act, Observed, resolve
from canary.engine.effects import Effect, Event, PostRolloutHooks, Promote, ScaleTarget, SetRoutes, SetStatus
from canary.engine.status import apply_status
from canary.errors import CanaryError, Conflict, Forbidden, InvalidObject, PermanentError
from canary.kube import Obj
from canary.kube.client import Kube
from canary.kube.events import EventRecorder
from canary.models.base import API_VERSION
from canary.models.canary import Canary, CanaryHead, CanaryStatus, ConditionStatus, HookType, Phase
from canary.notify.base import Notifier, routes
from canary.routers import services
from canary.routers.affinity import Cookies, next_cookies
from canary.routers.base import Router, RouteTarget, Weights, unsupported_fields
from canary.routers.registry import RouterRegistry
from canary.telemetry import metrics
from canary.webhooks import EventDelivery, EventHooks, Pending, WebhookCaller, event_payload, payload
from canary.workloads.deployments import Deployments, TargetState, owner_reference

log = structlog.get_logger(__name__)
READY = "Ready"
FINALIZER = "canary.dev/finalizer"


@dataclass(frozen=True)
class TickContext:
    """What the effects of one tick act upon."""

    obj: Obj
    canary: Canary
    state: TargetState
    router: Router
    route: RouteTarget


class Reconciler:
    """Runs ticks; one instance serves every canary of the controller."""

    def __init__(self, *, kube: Kube, canaries: Canaries, deployments: Deployments, routers: RouterRegistry,
                 checks: CheckRunner, webhooks: WebhookCaller, events: EventRecorder, notifier: Notifier,
                 clock: Callable[[], datetime], event_hooks: EventHooks | None = None,
                 cross_namespace_refusal: str | None = None, settle_in_background: bool = True) -> None:
        self._kube = kube
        self._canaries = canaries
        self._deployments = deployments
        self._routers = routers
        self._checks = checks
        self._webhooks = webhooks
        self._events = events
        self._clock = clock
        self._event_hooks = event_hooks
        # Why references to other namespaces are refused (the flag that says so), or None when they are read.
        self._cross_namespace_refusal = cross_namespace_refusal
        self._notifier = notifier
        self._outbox = alerts.Outbox(notifier, self._alert_done)
        # A delivered alert is removed from the status from this thread, not the notifier's, which a
        # slow API server would otherwise hold; tests settle in the caller's thread, to be deterministic.
        self._settler = ThreadPoolExecutor(1, thread_name_prefix="alert-settler") if settle_in_background else None
        self._locks: dict[alerts.Key, threading.Lock] = {}
        self._dirty: set[alerts.Key] = set()
        self._locks_lock = threading.Lock()

    def tick(self, namespace: str, name: str) -> str:
        """Advance the canary ``namespace/name`` by one step; returns what was done, for the log.

        The canary's pending alerts are sent, and the delivered ones removed, after the step."""
        try:
            with self._lock_for((namespace, name)):
                return self._tick(namespace, name)
        finally:
            self.settle_alerts(namespace, name)

    def settle_alerts(self, namespace: str, name: str) -> None:
        """Send the canary's pending alerts not sent yet and remove the delivered ones from its status.

        Runs under the canary's lock, so never beside its tick: when the tick (or another settle)
        holds it, the canary is marked and the holder settles it again when it lets go."""
        key = (namespace, name)
        while True:
            with self._locks_lock:
                self._dirty.add(key)
            lock = self._lock_for(key)
            if not lock.acquire(blocking=False):
                return
            try:
                with self._locks_lock:
                    self._dirty.discard(key)
                self._settle(namespace, name)
            except CanaryError as exc:  # the next tick tries again
                log.warning("pending alerts not settled", canary=name, namespace=namespace, error=str(exc))
            finally:
                lock.release()
            with self._locks_lock:
                if key not in self._dirty:
                    return

    def close(self) -> None:
        """Remove the alerts delivered so far from the statuses, then stop (what is still pending
        stays in the status, for the next controller to send)."""
        if self._settler is not None:
            self._settler.shutdown(wait=True)

    def _alert_done(self, namespace: str, name: str) -> None:
        if self._settler is None:
            self.settle_alerts(namespace, name)
            return
        # Once shut down, submit raises: the next controller removes the alert (and may send it twice).
        with contextlib.suppress(RuntimeError):
            self._settler.submit(self.settle_alerts, namespace, name)

    def _lock_for(self, key: alerts.Key) -> threading.Lock:
        with self._locks_lock:
            return self._locks.setdefault(key, threading.Lock())

    def _settle(self, namespace: str, name: str) -> None:
        canary = self._valid(namespace, name)
        if canary is None:
            return
        done = self._outbox.done(namespace, name)
        if done & {a.id for a in canary.status.pending_alerts or []}:
            found = self._canaries.informer.get(namespace, name)
            if found is not None:
                self._remove_alerts(found, done)
            canary = self._valid(namespace, name)
            if canary is None:
                return
        self._outbox.removed(namespace, name, done)
        self._outbox.send(canary)

    def _valid(self, namespace: str, name: str) -> Canary | None:
        found = self._canaries.get(namespace, name)
        return found[1] if found is not None and isinstance(found[1], Canary) else None

    def _remove_alerts(self, obj: Obj, ids: frozenset[str]) -> Obj:
        """Remove the alerts ``ids`` from the Canary's pending alerts, and nothing else."""
        meta = obj["metadata"]
        for _ in range(3):
            kept = [a for a in (obj.get("status") or {}).get("pendingAlerts") or [] if a.get("id") not in ids]
            try:
                written = self._patch_status(obj, {"pendingAlerts": kept or None})
            except Conflict:
                fresh = self._kube.get(API_VERSION, "Canary", meta["name"], namespace=meta["namespace"])
                if fresh is None:
                    return obj
                obj = fresh
                continue
            self._canaries.informer.store(written)
            return written
        raise Conflict(f"Canary {meta['namespace']}/{meta['name']}: status kept changing while removing "
                       "delivered alerts")

    def _tick(self, namespace: str, name: str) -> str:
        found = self._canaries.get(namespace, name)
        if found is None:
            return "gone"
        obj, canary = found
        where = f"Canary {namespace}/{name}"
        if isinstance(canary, InvalidCanary):
            return self._problem(obj, "InvalidSpec", f"{where}: {canary.message}")
        if canary.metadata.deletion_timestamp is not None:
            try:
                return self._finalize(obj, canary, where)
            except PermanentError as exc:  # an unsupported provider, a refused write: the deletion waits for a fix
                return self._problem(obj, _reason(exc), str(exc))
        obj = self._keep_finalizer(obj, wanted=canary.spec.revert_on_deletion or self._holds_deletion(canary, where))
        if canary.spec.suspend:
            return self._problem(obj, "Suspended", f"{where}: spec.suspend is true; nothing moves until it is "
                                 "false (canary resume)", warning=False)
        return self._advance(obj, canary, where)

    def _advance(self, obj: Obj, canary: Canary, where: str) -> str:
        try:
            context = self._observe(obj, canary, where)
        except PermanentError as exc:
            return self._problem(obj, _reason(exc), str(exc))
        if isinstance(context, str):
            return context
        try:
            summary = self._decide_and_act(context)
        except PermanentError as exc:  # the API server refused a write: say so on the Canary
            return self._problem(self._fresh(obj), _reason(exc), str(exc))
        self._clear_problem(self._fresh(obj))
        return summary

    def _fresh(self, obj: Obj) -> Obj:
        """The Canary as the cache now holds it (after this tick's own writes)."""
        return self._canaries.informer.peek(obj["metadata"]["namespace"], obj["metadata"]["name"]) or obj

    def report(self, namespace: str, name: str, message: str) -> None:
        """A failure that keeps coming back (the scheduler's ``on_failure``), as the Canary's condition and an Event."""
        found = self._canaries.informer.get(namespace, name)
        if found is not None:
            self._problem(found, "APIError", f"Canary {namespace}/{name}: {message}")

    def _observe(self, obj: Obj, canary: Canary, where: str) -> TickContext | str:
        router = self._routers.for_provider(canary.spec.provider, where=where)
        dropped = unsupported_fields(canary, router.supported)
        if dropped:
            return self._problem(obj, "UnsupportedField", f"{where}: {', '.join(dropped)}: not implemented by the "
                                 f"{router.name} router; remove the field or choose a router that has it",
                                 warning=True)
        if self._cross_namespace_refusal and (crossing := cross_namespace_refs(canary)):
            return self._problem(obj, "CrossNamespaceRef", f"{where}: {', '.join(crossing)}: references to other "
                                 f"namespaces are refused by this controller ({self._cross_namespace_refusal})")
        rival = self._rival(CanaryHead.of(obj))
        if rival is not None:
            return self._problem(obj, "TargetConflict", f"{where}: spec.targetRef {canary.spec.target_ref.name} is "
                                 f"already the target of Canary {rival}", warning=True)
        metrics = self._checks.problems(canary, provider=router.name)
        if metrics:
            return self._problem(obj, "InvalidMetric", f"{where}: {'; '.join(metrics)}", warning=True)
        state = self._deployments.observe(canary)
        if state is None:
            return self._problem(obj, "TargetNotFound", f"{where}: spec.targetRef: {canary.spec.target_ref.kind} "
                                 f"{canary.spec.target_ref.name} not found", warning=True)
        route = _route(obj, canary, state)
        self._deployments.ensure_primary(obj, canary, state)
        router.reconcile(route)
        if state.primary is None:
            state = self._deployments.observe(canary) or state
        return TickContext(obj=obj, canary=canary, state=state, router=router, route=route)

    def _holds_deletion(self, canary: Canary, where: str) -> bool:
        """Whether the canary's router has objects to remove itself when the Canary goes (cluster-scoped ones)."""
        try:
            return self._routers.for_provider(canary.spec.provider, where=where).holds_deletion
        except PermanentError:
            return False  # an unknown provider: _observe reports it

    def _keep_finalizer(self, obj: Obj, *, wanted: bool) -> Obj:
        """Hold the Canary's deletion for revertOnDeletion or a router's removal, and only then; returns the
        Canary as it now is."""
        meta = obj["metadata"]
        finalizers = list(meta.get("finalizers") or [])
        if (FINALIZER in finalizers) == wanted:
            return obj
        finalizers = [*finalizers, FINALIZER] if wanted else [f for f in finalizers if f != FINALIZER]
        updated = self._kube.merge_patch(
            API_VERSION, "Canary", meta["name"], namespace=meta["namespace"],
            patch={"metadata": {"resourceVersion": meta["resourceVersion"], "finalizers": finalizers}})
        self._canaries.informer.store(updated)
        return updated

    def forget(self, event: str, obj: Obj) -> None:
        """Informer handler: a deleted Canary's gauges go with it."""
        if event == "DELETED":
            head = CanaryHead.of(obj)
            self._outbox.forget(head.metadata.namespace, head.metadata.name)
            with self._locks_lock:
                self._locks.pop((head.metadata.namespace, head.metadata.name), None)
            target = head.target or ""
            metrics.forget_canary(head.metadata.name, head.metadata.namespace,
                                  workloads=(target, f"{target}-primary"))

    def _finalize(self, obj: Obj, canary: Canary, where: str) -> str:
        """revertOnDeletion: bring the target back and hand the apex Service to it; remove what the router
        leaves behind; then let go."""
        if FINALIZER not in (canary.metadata.finalizers or []):
            return "deleting"
        state = self._deployments.observe(canary) if canary.spec.revert_on_deletion else None
        if state is not None:
            if canary.status.phase is not Phase.TERMINATING:
                tick = TickContext(obj=obj, canary=canary, state=state,
                                   router=self._routers.for_provider(canary.spec.provider, where=where),
                                   route=_route(obj, canary, state))
                self._write_status(tick, SetStatus(phase=Phase.TERMINATING))
                return "terminating: restoring the target"
            self._deployments.scale_target(canary, state, up=True)
            readiness = self._deployments.readiness(canary, state.target, primary=False, now=self._clock())
            if not readiness.ready:
                return f"terminating: waiting for the target: {readiness.message}"
            self._routers.for_provider(canary.spec.provider, where=where).finalize(_route(obj, canary, state))
        self._routers.for_provider(canary.spec.provider, where=where).remove(canary)
        fresh = self._canaries.informer.get(obj["metadata"]["namespace"], obj["metadata"]["name"]) or obj
        meta = fresh["metadata"]
        self._kube.merge_patch(API_VERSION, "Canary", meta["name"], namespace=meta["namespace"], patch={
            "metadata": {"resourceVersion": meta["resourceVersion"],
                         "finalizers": [f for f in meta.get("finalizers") or [] if f != FINALIZER]}})
        done = "target restored" if canary.spec.revert_on_deletion else "router's objects removed"
        self._events.record(obj, reason="Terminated", message=f"{where}: {done}; deleting")
        return "terminated"

    def _rival(self, canary: CanaryHead) -> str | None:
        """An older Canary in the namespace with the same target, which keeps it."""
        meta = canary.metadata
        for other in self._canaries.targeting(meta.namespace, canary.target or ""):
            if other.metadata.name != meta.name and \
                    (other.metadata.creation_timestamp, other.metadata.name) < (meta.creation_timestamp, meta.name):
                return other.metadata.name
        return None

    def _decide_and_act(self, tick: TickContext) -> str:
        """Decide, carry the decision out and record the canary's gauges; returns what was done."""
        now = self._clock()
        canary, state = tick.canary, tick.state
        weights = tick.router.weights(tick.route)
        seen = Observed(
            revision=state.revision, primary_revision=state.primary_revision,
            primary=self._deployments.readiness(canary, state.primary, primary=True, now=now),
            canary=self._deployments.readiness(canary, state.target, primary=False, now=now),
            primary_weight=weights.primary, canary_weight=weights.canary, mirrored=weights.mirror > 0,
            router_has_weights=tick.router.has_weights, router_has_match=tick.router.has_match,
            request=(canary.metadata.annotations or {}).get(REQUEST_ANNOTATION), now=now)
        try:
            decision = resolve(canary.spec, canary.status, seen,
                               partial(self._checks.run, canary=canary, revision=state.revision,
                                       provider=tick.router.name))
        except Pending as exc:  # a webhook still running in the background: decide when it answers
            _record_metrics(canary, canary.status.phase, weights)
            return f"waiting: {exc}"
        decision, tick = _with_cookies(decision, tick)
        decision, logged = alerts.split(decision, revision=state.revision, phase=str(canary.status.phase))
        if logged and self._notifier.delivers(routes(canary.spec.analysis.alerts)):
            # Pending in the transition's own status write until delivered (at least once).
            decision, logged = decision.with_status(SetStatus(alerts=logged)), ()
        phase = canary.status.phase
        for effect in decision.effects:
            self._apply(tick, effect)
            if isinstance(effect, SetStatus):
                _record_run(canary, effect, now)
                # Logged once the transition is written, so that nothing failing later in the tick loses it.
                alerts.announce(self._notifier, canary, logged)
                logged = ()
            if isinstance(effect, SetStatus) and effect.phase is not None:
                phase = effect.phase
            if isinstance(effect, SetRoutes):
                weights = _weights(canary, effect)
        alerts.announce(self._notifier, canary, logged)
        _record_metrics(canary, phase, weights)
        if decision.effects:
            log.info("tick", canary=canary.metadata.name, namespace=canary.metadata.namespace,
                     phase=canary.status.phase, revision=state.revision, action=decision.summary)
        return decision.summary

    def _apply(self, tick: TickContext, effect: Effect) -> None:
        canary = tick.canary
        match effect:
            case SetRoutes():
                tick.router.set_weights(tick.route, _weights(canary, effect))
            case ScaleTarget(up=up):
                self._deployments.scale_target(canary, tick.state, up=up)
            case Promote():
                self._deployments.promote(tick.obj, canary, tick.state)
            case SetStatus():
                self._write_status(tick, effect)
            case Event(reason=reason, message=message, warning=warning):
                self._events.record(tick.obj, reason=reason, message=message, warning=warning)
                self._send_event(tick, message, warning=warning)
            case PostRolloutHooks(phase=phase):
                self._post_rollout(tick, phase)

    def _send_event(self, tick: TickContext, message: str, *, warning: bool) -> None:
        """The Event to the canary's event webhooks (or the controller's), in the background."""
        if self._event_hooks is None:
            return
        canary = tick.canary
        now_ms = int(self._clock().timestamp() * 1000)
        self._event_hooks.send([EventDelivery(hook=hook, body=event_payload(
            name=canary.metadata.name, namespace=canary.metadata.namespace or "", phase=canary.status.phase,
            revision=tick.state.revision, hook=hook, message=message, warning=warning, now_ms=now_ms))
            for hook in self._event_hooks.hooks_for(canary.spec.analysis.webhooks or [])])

    def _post_rollout(self, tick: TickContext, phase: Phase) -> None:
        """Call the post-rollout hooks in the background: they gate nothing, so no tick waits for them."""
        canary = tick.canary
        hooks = canary.spec.analysis.hooks(HookType.POST_ROLLOUT)
        if not hooks:
            return

        def call_all() -> None:
            for hook in hooks:
                outcome = self._webhooks.call(hook, payload(name=canary.metadata.name,
                                                            namespace=canary.metadata.namespace or "", phase=phase,
                                                            revision=tick.state.revision, hook=hook))
                if not outcome.passed:
                    self._events.record(tick.obj, reason="Synced",
                                        message=f"Post-rollout hook failed: {outcome.message}", warning=True)

        threading.Thread(target=call_all, name="post-rollout", daemon=True).start()

    def _write_status(self, tick: TickContext, change: SetStatus) -> None:
        obj = tick.obj
        status = tick.canary.status
        for _ in range(3):
            status = apply_status(status, change, tracked_configs=tick.state.tracked_checksums or None,
                                  target_kind=tick.canary.spec.target_ref.kind, now=self._clock())
            try:
                written = self._patch_status(obj, _status_patch(obj, status))
            except Conflict:
                fresh = self._kube.get(API_VERSION, "Canary", obj["metadata"]["name"],
                                       namespace=obj["metadata"]["namespace"])
                if fresh is None or (fresh.get("status") or {}) != (obj.get("status") or {}):
                    raise  # the status moved on: this tick decided on old facts
                obj = fresh
                status = tick.canary.status
                continue
            self._canaries.informer.store(written)
            return
        raise Conflict(f"Canary {obj['metadata']['namespace']}/{obj['metadata']['name']}: status kept conflicting")

    def _patch_status(self, obj: Obj, status: Obj) -> Obj:
        meta = obj["metadata"]
        return self._kube.merge_patch(API_VERSION, "Canary", meta["name"],
                                      {"metadata": {"resourceVersion": meta["resourceVersion"]}, "status": status},
                                      namespace=meta["namespace"], subresource="status")

    def _problem(self, obj: Obj, reason: str, message: str, *, warning: bool = True) -> str:
        """Report a problem as the Ready condition and an Event, once per change; a manual request
        waiting meanwhile is answered as refused, with the problem as the reason."""
        current = _ready_condition(obj)
        request = _pending_request(obj)
        if current is not None and current.get("reason") == reason and current.get("message") == message \
                and request is None:
            return message
        condition = {"type": READY, "status": "False", "reason": reason, "message": message,
                     "lastTransitionTime": self._clock().strftime("%Y-%m-%dT%H:%M:%SZ")}
        refused = {}
        if request is not None:
            refused = {"handledRequest": request, "requestRefused": f"{request.split('/', 1)[0]} refused: {message}"}
        self._set_ready(obj, condition, **refused)
        self._events.record(obj, reason=reason, message=message, warning=warning)
        log.warning("canary problem", canary=obj["metadata"]["name"], namespace=obj["metadata"]["namespace"],
                    reason=reason, message=message)
        return message

    def _clear_problem(self, obj: Obj) -> None:
        current = _ready_condition(obj)
        if current is None or current.get("status") == "True":
            return
        self._set_ready(obj, {"type": READY, "status": "True", "reason": "Reconciled", "message": "",
                              "lastTransitionTime": self._clock().strftime("%Y-%m-%dT%H:%M:%SZ")})

    def _set_ready(self, obj: Obj, condition: Obj, **fields: str) -> None:
        status = {**(obj.get("status") or {}), **fields}
        others = [c for c in status.get("conditions") or [] if c.get("type") != READY]
        status["conditions"] = [*others, condition]
        try:
            self._canaries.informer.store(self._patch_status(obj, status))
        except Conflict:
            log.info("status changed meanwhile; reporting on the next tick", canary=obj["metadata"]["name"])


def _route(obj: Obj, canary: Canary, state: TargetState) -> RouteTarget:
    """What the router needs to know of the canary: its owner reference, selector and discovered ports."""
    pod_spec = ((state.target.get("spec") or {}).get("template") or {}).get("spec") or {}
    return RouteTarget(canary=canary, owner=owner_reference(obj), selector=state.selector,
                       ports=services.discovered_ports(canary, pod_spec))


def _weights(canary: Canary, routes: SetRoutes) -> Weights:
    """The split ``routes`` asks for, with the share mirrored (spec.analysis.mirrorWeight, else all)."""
    mirror = (canary.spec.analysis.mirror_weight or 100) if routes.mirror else 0
    return Weights(primary=routes.primary, canary=routes.canary, mirror=mirror)


def _with_cookies(decision: Act, tick: TickContext) -> tuple[Act, TickContext]:
    """With session affinity, the cookies the decision's new routes use: recorded by its status write,
    and given to the router through the route's Canary, whose status they are read from."""
    affinity = tick.canary.spec.analysis.session_affinity
    routes = next((e for e in decision.effects if isinstance(e, SetRoutes)), None)
    if affinity is None or routes is None:
        return decision, tick
    current = Cookies.of(tick.canary.status)
    cookies = next_cookies(affinity, current, canary_weight=routes.canary, token=lambda: secrets.token_hex(8))
    if cookies == current:
        return decision, tick
    status = tick.canary.status.model_copy(update={
        "session_affinity_cookie": cookies.canary, "primary_session_affinity_cookie": cookies.primary,
        "previous_session_affinity_cookie": cookies.previous})
    canary = tick.canary.model_copy(update={"status": status})
    return decision.with_status(SetStatus(cookies=cookies)), replace(tick, route=replace(tick.route, canary=canary))


def _reason(exc: PermanentError) -> str:
    """The Ready condition's reason for a refusal: by whom it was refused."""
    if isinstance(exc, Forbidden):
        return "Forbidden"  # RBAC, a ResourceQuota, an admission webhook that denies
    if isinstance(exc, InvalidObject):
        return "Refused"  # the API server or an admission webhook found an object we wrote invalid
    return "InvalidSpec"


def _ready_condition(obj: Obj) -> Obj | None:
    conditions = (obj.get("status") or {}).get("conditions") or []
    return next((c for c in conditions if c.get("type") == READY), None)


def _status_patch(obj: Obj, status: CanaryStatus) -> Obj:
    """A merge patch from the stored status to ``status``: a field that became unset is sent as null,
    since a merge patch keeps every key it does not name."""
    wanted = status.model_dump(by_alias=True, exclude_none=True, mode="json")
    return {**{key: None for key in obj.get("status") or {} if key not in wanted}, **wanted}


def _pending_request(obj: Obj) -> str | None:
    """A manual request (canary.dev/request) not yet handled."""
    request = (obj["metadata"].get("annotations") or {}).get(REQUEST_ANNOTATION)
    return request if request and request != (obj.get("status") or {}).get("handledRequest") else None


def _record_run(canary: Canary, change: SetStatus, now: datetime) -> None:
    """What a status write tells Prometheus: each metric check's value, and at the end of a run its
    outcome (canary_successes_total or canary_failures_total) and duration."""
    name, namespace = canary.metadata.name, canary.metadata.namespace or ""
    for result in change.analysis or ():
        if result.value is not None:
            metrics.set_analysis(name, namespace, result.name, result.value)
    if change.phase not in (Phase.SUCCEEDED, Phase.FAILED) or canary.status.phase not in RUNNING:
        return
    skipped = canary.spec.skip_analysis and change.phase is Phase.SUCCEEDED
    outcome = metrics.SUCCESSES if change.phase is Phase.SUCCEEDED else metrics.FAILURES
    outcome.labels(name=name, namespace=namespace, deployment_strategy=canary.spec.analysis.strategy.value,
                   analysis_status="skipped" if skipped else "completed").inc()
    # The Promoted condition turned Unknown when the run started and stayed so until now.
    promoted = next((c for c in canary.status.conditions or [] if c.type == "Promoted"), None)
    if promoted is not None and promoted.status is ConditionStatus.UNKNOWN and promoted.last_transition_time:
        metrics.DURATION.labels(name=name, namespace=namespace).observe(
            (now - promoted.last_transition_time).total_seconds())


def _record_metrics(canary: Canary, phase: Phase | None, weights: Weights) -> None:
    """canary_weight per workload and canary_status (0 running, 1 settled, 2 failed), as Flagger's."""
    name, namespace = canary.metadata.name, canary.metadata.namespace or ""
    metrics.WEIGHT.labels(name=name, namespace=namespace, workload=canary.spec.primary_name).set(weights.primary)
    metrics.WEIGHT.labels(name=name, namespace=namespace, workload=canary.spec.target_ref.name).set(weights.canary)
    state = 0 if phase in RUNNING else 2 if phase is Phase.FAILED else 1
    metrics.STATUS.labels(name=name, namespace=namespace).set(state)
    # The outcome counters exist at 0 before the first run ends, so that increase() counts that end.
    strategy = canary.spec.analysis.strategy.value
    for counter in (metrics.SUCCESSES, metrics.FAILURES):
        counter.labels(name=name, namespace=namespace, deployment_strategy=strategy, analysis_status="completed")
    if canary.spec.skip_analysis:
        metrics.SUCCESSES.labels(name=name, namespace=namespace, deployment_strategy=strategy,
                                 analysis_status="skipped")

