"""One APScheduler job per Canary, at its analysis interval, plus immediate runs on changes.

A job runs at most once at a time (max_instances=1); runs that pile up while one is busy are
coalesced. Watch events run a job soon only when something a user changed (a generation, a
manual request, a config's content), never on status updates, so that the interval keeps its
meaning. The interval is the model's: a Canary its model refuses is ticked every
``INVALID_RECHECK_SECONDS`` (the tick reports why it is invalid; fixing it runs a tick at once). A change of
a target or of its configs runs the job SETTLE_SECONDS later, so that objects written together (a
Deployment and its ConfigMap from one commit) are judged as one revision, not as two.

A tick that fails with a temporary error (the API server or the network) is retried with a
backoff: after each failure in a row the canary's next runs are skipped for twice as long as
before (from its interval, at most ``MAX_BACKOFF_SECONDS``), and from the ``REPORT_AFTER``-th
failure in a row the error is reported on the Canary (``on_failure``), since what lasts that long
is rarely temporary (a full Service range answers 500).

Spreading: a new job ticks at once, and its next tick comes a fraction of its interval later, the
fraction fixed by its name; so the canaries a (re)started controller finds all at once do not stay
due at the same instant, which would make each tick wait for the others (``canary_tick_lag_seconds``).

Liveness: a heartbeat job runs every ``HEARTBEAT_SECONDS`` in the same worker pool as the ticks.
``stalled`` says why the controller no longer makes progress (for /healthz): the heartbeat has
not run for the given time (every worker is held, or the scheduler thread is gone), or one tick
has run that long.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass

import structlog
from apscheduler.events import EVENT_JOB_SUBMITTED, JobSubmissionEvent
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers.background import BackgroundScheduler

from canary.engine.canaries import Canaries
from canary.engine.decide import REQUEST_ANNOTATION
from canary.errors import TemporaryError
from canary.kube import Obj
from canary.models.base import parse_duration
from canary.models.canary import ANALYSIS_INTERVAL, Canary
from canary.telemetry import metrics
from canary.workloads import configs

log = structlog.get_logger(__name__)
Tick = Callable[[str, str], str]
Report = Callable[[str, str, str], None]
"""(namespace, name, message): a failure that keeps coming back, for the Canary's condition."""
SETTLE_SECONDS = 0.3
REPORT_AFTER = 3
MAX_BACKOFF_SECONDS = 300.0
INVALID_RECHECK_SECONDS = parse_duration(ANALYSIS_INTERVAL).total_seconds()
HEARTBEAT_SECONDS = 5.0
HEARTBEAT_JOB = "heartbeat"


def _job_id(namespace: str, name: str) -> str:
    return f"{namespace}/{name}"


@dataclass(frozen=True)
class _Failing:
    """The temporary failures in a row of one canary, and until when its runs are skipped."""

    count: int
    until: float


class CanaryScheduler:
    """Keeps one job per Canary and runs ``tick(namespace, name)`` from it."""

    def __init__(self, tick: Tick, *, workers: int = 10, canaries: Canaries, on_failure: Report | None = None,
                 clock: Callable[[], float] = time.monotonic, heartbeat_seconds: float = HEARTBEAT_SECONDS) -> None:
        self._tick = tick
        self._canaries = canaries
        self._on_failure = on_failure
        self._clock = clock
        self._failing: dict[str, _Failing] = {}
        self._failing_lock = threading.Lock()
        self._scheduler = BackgroundScheduler(
            executors={"default": ThreadPoolExecutor(workers)},
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
            timezone=dt.UTC,
        )
        # What a user changed last: (generation, manual request) per job.
        self._seen: dict[str, tuple[int, str | None]] = {}
        self._beat = clock()
        self._running: dict[str, float] = {}  # job id -> when its current run started
        self._due: dict[str, dt.datetime] = {}  # job id -> when its submitted run was due (for the lag)
        self._unspread: set[str] = set()  # new jobs, whose next run is to be moved to their own phase
        self._scheduler.add_listener(self._submitted, EVENT_JOB_SUBMITTED)
        self._scheduler.add_job(self._heartbeat, "interval", seconds=heartbeat_seconds, id=HEARTBEAT_JOB)

    def start(self, *, paused: bool = False) -> None:
        """Start the scheduler (paused: jobs are kept but do not run until ``resume``)."""
        self._beat = self._clock()
        self._scheduler.start(paused=paused)

    def pause(self) -> None:
        """Stop running jobs (leadership lost)."""
        self._scheduler.pause()

    def resume(self) -> None:
        """Run jobs again, each of them at once."""
        self._beat = self._clock()
        self._scheduler.resume()
        for job in self._scheduler.get_jobs():
            self.trigger_job(job.id)

    def shutdown(self, *, wait: bool = True) -> None:
        """Stop running jobs; ``wait`` for the running ticks to end (else they are left to finish alone)."""
        self._scheduler.shutdown(wait=wait)

    def stalled(self, limit: float) -> str | None:
        """Why jobs have made no progress for ``limit`` seconds, or None while they do (or are paused)."""
        if not self.running:
            return None
        now = self._clock()
        if now - self._beat > limit:
            return f"no job has started for {now - self._beat:.0f}s: all workers are held or the scheduler stopped"
        with self._failing_lock:
            longest = min(self._running.items(), key=lambda item: item[1], default=None)
        if longest is not None and now - longest[1] > limit:
            return f"the run of {longest[0]} has lasted {now - longest[1]:.0f}s"
        return None

    def _submitted(self, event: JobSubmissionEvent) -> None:
        # Coalesced runs count from the earliest: that is how long the canary waited.
        if event.scheduled_run_times:
            with self._failing_lock:
                self._due[event.job_id] = min(event.scheduled_run_times)

    def _lag(self, job_id: str) -> None:
        with self._failing_lock:
            due = self._due.pop(job_id, None)
        if due is not None:
            metrics.TICK_LAG.observe(max(0.0, (dt.datetime.now(dt.UTC) - due).total_seconds()))

    def _spread(self, job_id: str, started: dt.datetime) -> None:
        """After a new job's first run, bring its next run forward to its own phase of the interval (never
        later than it is: a change may have asked for a run sooner)."""
        with self._failing_lock:
            if job_id not in self._unspread:
                return
            self._unspread.discard(job_id)
        job = self._scheduler.get_job(job_id)
        if job is None or job.next_run_time is None:
            return
        phase = (zlib.crc32(job_id.encode()) % 1000 + 1) / 1001
        at = started + job.trigger.interval * phase
        if at < job.next_run_time:
            with contextlib.suppress(JobLookupError):
                self._scheduler.modify_job(job_id, next_run_time=at)

    def _heartbeat(self) -> None:
        self._beat = self._clock()

    def _started(self, job_id: str) -> None:
        with self._failing_lock:
            self._running[job_id] = self._clock()

    def _ended(self, job_id: str) -> None:
        with self._failing_lock:
            self._running.pop(job_id, None)

    @property
    def running(self) -> bool:
        """Whether jobs are being run."""
        return bool(self._scheduler.running) and self._scheduler.state == 1

    def add_periodic(self, job_id: str, work: Callable[[], str], *, seconds: float) -> None:
        """Run ``work`` every ``seconds`` (and at once), like a canary's job."""
        self._scheduler.add_job(self._run_periodic, "interval", seconds=seconds, id=job_id, args=(job_id, work),
                                next_run_time=dt.datetime.now(dt.UTC), replace_existing=True)

    def trigger_job(self, job_id: str, *, delay: float = 0.0) -> None:
        """Run the job ``job_id`` in ``delay`` seconds (now by default), or sooner if it is due sooner."""
        job = self._scheduler.get_job(job_id)
        if job is None:
            return
        at = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=delay)
        if delay and job.next_run_time is not None and job.next_run_time <= at:
            return
        try:
            self._scheduler.modify_job(job_id, next_run_time=at)
        except JobLookupError:
            return

    def _run_periodic(self, job_id: str, work: Callable[[], str]) -> None:
        structlog.contextvars.clear_contextvars()
        self._started(job_id)
        try:
            log.debug("job done", job=job_id, result=work())
        except Exception:  # a failed pass is retried at the next period
            log.exception("job failed", job=job_id)
        finally:
            self._ended(job_id)

    def trigger(self, namespace: str, name: str, *, delay: float = 0.0) -> None:
        """Run the canary's job now, or in ``delay`` seconds (it runs at its interval afterwards)."""
        self.trigger_job(_job_id(namespace, name), delay=delay)

    def on_canary(self, event: str, obj: Obj) -> None:
        """Informer handler for Canaries: keep the jobs in step with the objects."""
        meta = obj["metadata"]
        namespace, name = meta["namespace"], meta["name"]
        job_id = _job_id(namespace, name)
        if event == "DELETED":
            self._seen.pop(job_id, None)
            with self._failing_lock:
                self._failing.pop(job_id, None)
                self._due.pop(job_id, None)
                self._unspread.discard(job_id)
            try:
                self._scheduler.remove_job(job_id)
            except JobLookupError:
                return
            return
        canary = self._canaries.parse(obj)
        seconds = canary.spec.analysis.interval_seconds if isinstance(canary, Canary) else INVALID_RECHECK_SECONDS
        seen = (int(meta.get("generation") or 0), (meta.get("annotations") or {}).get(REQUEST_ANNOTATION))
        job = self._scheduler.get_job(job_id)
        if job is None:
            with self._failing_lock:
                self._unspread.add(job_id)
            self._scheduler.add_job(self._run, "interval", seconds=seconds, id=job_id, args=(namespace, name),
                                    next_run_time=dt.datetime.now(dt.UTC), replace_existing=True)
        elif job.trigger.interval.total_seconds() != seconds:
            self._scheduler.reschedule_job(job_id, trigger="interval", seconds=seconds)
            self.trigger(namespace, name)
        elif self._seen.get(job_id) != seen:
            self.trigger(namespace, name)
        self._seen[job_id] = seen

    def _failed(self, namespace: str, name: str, message: str, *, previous: _Failing | None) -> None:
        """Back off after a temporary failure, and report one that keeps coming back."""
        job_id = _job_id(namespace, name)
        count = (previous.count if previous is not None else 0) + 1
        base = self.interval(namespace, name) or INVALID_RECHECK_SECONDS
        pause = min(base * 2 ** (count - 1), MAX_BACKOFF_SECONDS)
        with self._failing_lock:
            self._failing[job_id] = _Failing(count=count, until=self._clock() + pause)
        log.warning("tick will be retried", error=message, failures=count, retry_in=pause)
        if count >= REPORT_AFTER and self._on_failure is not None:
            try:
                self._on_failure(namespace, name, f"failed {count} times in a row, retrying in {pause:.0f}s: "
                                 f"{message}")
            except Exception:  # reporting is best effort; the API server may be what fails
                log.warning("could not report the failure on the Canary", exc_info=True)

    def interval(self, namespace: str, name: str) -> float | None:
        """Seconds between the ticks of a canary's job; None without a job."""
        job = self._scheduler.get_job(_job_id(namespace, name))
        return None if job is None else float(job.trigger.interval.total_seconds())

    def on_target(self, event: str, deployment: Obj) -> None:
        """Informer handler for Deployments: run the canaries of a target whose spec changed."""
        if event == "MODIFIED" and deployment.get("metadata", {}).get("generation") == \
                (deployment.get("status") or {}).get("observedGeneration"):
            return
        namespace, name = deployment["metadata"]["namespace"], deployment["metadata"]["name"]
        for head in self._canaries.targeting(namespace, name):
            self.trigger(namespace, head.metadata.name, delay=SETTLE_SECONDS)

    def on_template(self, event: str, template: Obj) -> None:
        """Informer handler for MetricTemplates: run the canaries that use one that appeared or changed
        (a Canary and its template synced from one commit may arrive in either order)."""
        if event == "DELETED":
            return
        namespace, name = template["metadata"].get("namespace") or "", template["metadata"]["name"]
        for obj in self._canaries.informer.peek_all():
            canary = self._canaries.parse(obj)
            if isinstance(canary, Canary) and any(
                    m.template_ref is not None and m.template_ref.name == name
                    and (m.template_ref.namespace or canary.metadata.namespace) == namespace
                    for m in canary.spec.analysis.metrics or []):
                self.trigger(canary.metadata.namespace or "", canary.metadata.name)

    def on_config(self, kind: str, targets: Callable[[str], list[Obj]]) -> Callable[[str, Obj], None]:
        """An informer handler for ConfigMaps or Secrets: run the canaries whose target uses the config."""
        def handle(event: str, config: Obj) -> None:
            namespace, name = config["metadata"]["namespace"], config["metadata"]["name"]
            ref = configs.ConfigRef(kind, name)
            for target in targets(namespace):
                pod_spec = ((target.get("spec") or {}).get("template") or {}).get("spec") or {}
                if ref in configs.referenced(pod_spec):
                    self.on_target("ADDED", target)
        return handle

    def _run(self, namespace: str, name: str) -> None:
        structlog.contextvars.clear_contextvars()
        job_id = _job_id(namespace, name)
        self._lag(job_id)
        with structlog.contextvars.bound_contextvars(canary=name, namespace=namespace):
            with self._failing_lock:
                failing = self._failing.get(job_id)
            if failing is not None and self._clock() < failing.until:
                metrics.TICKS.labels(result="backoff").inc()
                return
            started = dt.datetime.now(dt.UTC)
            self._started(job_id)
            try:
                summary = self._tick(namespace, name)
            except TemporaryError as exc:
                metrics.TICKS.labels(result="retry").inc()
                self._failed(namespace, name, str(exc), previous=failing)
                return
            except Exception:  # one canary's bug must not stop the others
                metrics.TICKS.labels(result="error").inc()
                log.exception("tick failed")
                return
            finally:
                self._ended(job_id)
                self._spread(job_id, started)
            if failing is not None:
                with self._failing_lock:
                    self._failing.pop(job_id, None)
            metrics.TICKS.labels(result="ok").inc()
            metrics.TICK_SECONDS.observe((dt.datetime.now(dt.UTC) - started).total_seconds())
            log.debug("tick done", action=summary)
