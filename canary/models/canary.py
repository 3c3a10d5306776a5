"""The Canary resource: Flagger's ``flagger.app/v1beta1`` Canary, field for field, in ``canary.dev``.

Defaults are Flagger's and are applied when a spec is read (the CRD stores what the user
wrote). The one deliberate difference in this module: an analysis interval may be as short as
1s (Flagger raises anything under 10s to 10s); see docs/flagger.md.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic.alias_generators import to_camel

from canary.models.base import Duration, HttpURL, Model, OpenModel, parse_duration

Weight = Annotated[int, Field(ge=0, le=100)]
StepWeight = Annotated[int, Field(ge=1, le=100)]
Percent = Annotated[int, Field(ge=0, le=100)]
Port = Annotated[int, Field(ge=1, le=65535)]
Name = Annotated[str, Field(min_length=1)]

PROGRESS_DEADLINE_SECONDS = 600
ANALYSIS_INTERVAL = "1m"
METRIC_INTERVAL = "1m"
READY_THRESHOLD = 100
TOTAL_WEIGHT = 100

Provider = Literal[
    "apisix", "appmesh", "appmesh:v1beta2", "contour", "gatewayapi", "gatewayapi:v1", "gatewayapi:v1beta1",
    "gloo", "istio", "knative", "kubernetes", "kuma", "linkerd", "nginx", "osm", "skipper", "smi",
    "smi:v1alpha1", "smi:v1alpha2", "smi:v1alpha3", "traefik",
]


class Phase(StrEnum):
    """Where a canary is in its life; Flagger's phases."""

    INITIALIZING = "Initializing"
    INITIALIZED = "Initialized"
    WAITING = "Waiting"
    PROGRESSING = "Progressing"
    WAITING_PROMOTION = "WaitingPromotion"
    PROMOTING = "Promoting"
    FINALISING = "Finalising"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    TERMINATING = "Terminating"
    TERMINATED = "Terminated"


class Strategy(StrEnum):
    """How traffic moves: in weighted steps, all at once after iterations, or by request match."""

    CANARY = "canary"
    BLUE_GREEN = "blue-green"
    AB_TESTING = "ab-testing"


class Severity(StrEnum):
    """Alert severities, Flagger's, from least to most urgent."""

    INFO = "info"
    WARN = "warn"
    ERROR = "error"


def _at_least(minimum: str) -> dict[str, Any]:
    """The CRD rule that a duration field is at least ``minimum`` (the model checks the same)."""
    return {"x-kubernetes-validations": [{"rule": f"duration(self) >= duration('{minimum}')",
                                          "message": f"must be at least {minimum}"}]}


MAX_WEBHOOK_TIMEOUT = "5m"
"""The longest a webhook may take: a hook runs in the background, but its canary waits for it."""


def _between(minimum: str, maximum: str) -> dict[str, Any]:
    """The CRD rule that a duration field is within [``minimum``, ``maximum``] (the model checks the same)."""
    return {"x-kubernetes-validations": [{
        "rule": f"duration(self) >= duration('{minimum}') && duration(self) <= duration('{maximum}')",
        "message": f"must be between {minimum} and {maximum}"}]}


class HookType(StrEnum):
    """When a webhook is called, Flagger's names."""

    CONFIRM_ROLLOUT = "confirm-rollout"
    PRE_ROLLOUT = "pre-rollout"
    ROLLOUT = "rollout"
    CONFIRM_TRAFFIC_INCREASE = "confirm-traffic-increase"
    CONFIRM_PROMOTION = "confirm-promotion"
    POST_ROLLOUT = "post-rollout"
    ROLLBACK = "rollback"
    EVENT = "event"


class LocalObjectReference(Model):
    """A reference to an object in the Canary's namespace."""

    api_version: str | None = None
    kind: str | None = None
    name: Name


class TargetReference(Model):
    """The workload under release."""

    api_version: str = "apps/v1"
    kind: Literal["Deployment", "DaemonSet", "Service"] = "Deployment"
    name: Name


class CrossNamespaceObjectReference(Model):
    """A reference to an object, by default in the Canary's namespace."""

    api_version: str | None = None
    kind: str | None = None
    name: Name
    namespace: str | None = None


class ScalerReplicas(Model):
    """Replica bounds for the primary's autoscaler."""

    min_replicas: Annotated[int, Field(ge=1)] | None = None
    max_replicas: Annotated[int, Field(ge=1)] | None = None


class AutoscalerReference(Model):
    """The target's autoscaler, copied for the primary."""

    api_version: str = "autoscaling/v2"
    kind: Literal["HorizontalPodAutoscaler", "ScaledObject"] = "HorizontalPodAutoscaler"
    name: Name
    primary_scaler_queries: dict[str, str] | None = None
    primary_scaler_replicas: ScalerReplicas | None = None


class CustomMetadata(Model):
    """Labels and annotations added to a generated object."""

    labels: dict[str, str] | None = None
    annotations: dict[str, str] | None = None


class UnmanagedMetadata(Model):
    """Label and annotation keys on generated objects that the controller leaves alone."""

    annotations: list[str] | None = None
    labels: list[str] | None = None


class ParentReference(Model):
    """A Gateway API parent (usually a Gateway) of the generated HTTPRoute."""

    group: str | None = None
    kind: str | None = None
    namespace: str | None = None
    name: Name
    section_name: str | None = None
    port: Port | None = None


class StringMatch(Model):
    """Match a string exactly, by prefix, or by regular expression (exactly one)."""

    # oneOf with bare ``required`` costs the API server nothing, unlike a CEL rule per list item.
    model_config = ConfigDict(json_schema_extra={"oneOf": [{"required": [k]} for k in ("exact", "prefix", "regex")]})

    exact: str | None = None
    prefix: str | None = None
    regex: str | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> StringMatch:
        if sum(v is not None for v in (self.exact, self.prefix, self.regex)) != 1:
            raise ValueError("exactly one of exact, prefix, regex must be set")
        return self


class HTTPMatchRequest(OpenModel):
    """A request match (Istio's HTTPMatchRequest), for A/B testing; unknown mesh fields are kept."""

    name: str | None = None
    uri: StringMatch | None = None
    method: StringMatch | None = None
    headers: dict[str, StringMatch] | None = None
    query_params: dict[str, StringMatch] | None = None
    source_labels: dict[str, str] | None = None
    ignore_uri_case: bool | None = None


class HTTPRewrite(Model):
    """Rewrite of the request path and authority."""

    uri: str | None = None
    authority: str | None = None
    type: Literal["ReplaceFullPath", "ReplacePrefixMatch"] | None = None


class HTTPRetry(Model):
    """Retry policy of the generated route."""

    attempts: Annotated[int, Field(ge=0)] | None = None
    per_try_timeout: str | None = None
    retry_on: str | None = None


class HeaderOperations(Model):
    """Headers set, added or removed."""

    set: dict[str, str] | None = None
    add: dict[str, str] | None = None
    remove: list[str] | None = None


class Headers(Model):
    """Header manipulation of requests and responses."""

    request: HeaderOperations | None = None
    response: HeaderOperations | None = None


class CanaryService(Model):
    """The Service(s) and route generated for the target."""

    name: str | None = None
    port: Port
    port_name: str | None = None
    target_port: int | str | None = None
    app_protocol: str | None = None
    traffic_distribution: str | None = None
    port_discovery: bool = False
    headless: bool = False
    timeout: str | None = None
    backend_timeout: str | None = None
    gateways: list[str] | None = None
    gateway_refs: list[ParentReference] | None = None
    hosts: list[str] | None = None
    delegation: bool = False
    traffic_policy: OpenModel | None = None
    match: list[HTTPMatchRequest] | None = None
    rewrite: HTTPRewrite | None = None
    retries: HTTPRetry | None = None
    headers: Headers | None = None
    mirror: list[OpenModel] | None = None
    cors_policy: OpenModel | None = None
    mesh_name: str | None = None
    backends: list[str] | None = None
    apex: CustomMetadata | None = None
    primary: CustomMetadata | None = None
    canary: CustomMetadata | None = None
    unmanaged_metadata: UnmanagedMetadata | None = None


class ThresholdRange(Model):
    """Bounds a metric value must stay within (either may be open)."""

    model_config = ConfigDict(json_schema_extra={"x-kubernetes-validations": [{
        "rule": "!has(self.min) || !has(self.max) || self.min <= self.max",
        "message": "min must not be above max"}]})

    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _ordered(self) -> ThresholdRange:
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min must not be above max, got min {self.min:g} and max {self.max:g}")
        return self


class MetricComparison(Model):
    """Judge the metric by comparing canary with primary (our extension, after Kayenta's judge)."""

    confidence: Annotated[float, Field(ge=0.5, le=0.9999)] = 0.95
    direction: Literal["increase", "decrease", "either"] = "either"
    allowed_change: Annotated[float, Field(ge=0, le=10)] = 0.1


class ScoreThresholds(Model):
    """The comparison score (100 x passing / judged metrics) needed to pass, or to hold instead of failing."""

    pass_score: Annotated[float, Field(ge=0, le=100)] = 95
    marginal_score: Annotated[float, Field(ge=0, le=100)] = 75


class CanaryMetric(Model):
    """A check run at every analysis step."""

    name: Name
    interval: Annotated[Duration, Field(json_schema_extra=_at_least("1s"))] | None = Field(
        default=None, description="The query window; a Go duration of at least 1s (Flagger's default 1m).")
    threshold: float | None = None
    threshold_range: ThresholdRange | None = None
    query: str | None = None
    template_ref: CrossNamespaceObjectReference | None = None
    template_variables: dict[str, str] | None = None
    comparison: MetricComparison | None = Field(
        default=None, description="Compare the canary with the primary instead of a fixed range (our extension).")
    no_data: Literal["fail", "skip", "pause"] = Field(
        default="fail", description="What no data means (our extension): fail the check (Flagger), skip it "
        "(count neither way), or pause (hold the weight, count nothing, give up at progressDeadlineSeconds).")

    @model_validator(mode="after")
    def _window(self) -> CanaryMetric:
        if self.interval is not None and parse_duration(self.interval) < timedelta(seconds=1):
            raise ValueError(f"interval must be at least 1s, got {self.interval}")
        return self

    @property
    def window(self) -> timedelta:
        """The query window: the metric's own interval, else Flagger's 1m."""
        return parse_duration(self.interval or METRIC_INTERVAL)


class CanaryAlert(Model):
    """Where to send alerts about this canary, and from what severity."""

    name: Name
    severity: Severity | None = None
    provider_ref: CrossNamespaceObjectReference


MAX_WEBHOOKS = 64


class CanaryWebhook(Model):
    """An HTTP gate or notification at a point of the rollout."""

    type: HookType = HookType.ROLLOUT
    name: Name
    url: HttpURL
    mute_alert: bool = False
    timeout: Annotated[Duration, Field(json_schema_extra=_between("1ms", MAX_WEBHOOK_TIMEOUT))] | None = None
    metadata: dict[str, str] | None = None
    retries: Annotated[int, Field(ge=0)] | None = None

    @model_validator(mode="after")
    def _bounded_timeout(self) -> CanaryWebhook:
        if self.timeout is not None and not (
                timedelta(milliseconds=1) <= parse_duration(self.timeout) <= parse_duration(MAX_WEBHOOK_TIMEOUT)):
            raise ValueError(f"timeout must be between 1ms and {MAX_WEBHOOK_TIMEOUT}, got {self.timeout}")
        return self
    disable_tls: bool = False


class SessionAffinity(Model):
    """Keep a user on the canary once routed there (cookie based)."""

    cookie_name: str | None = None
    domain: str | None = None
    http_only: bool = False
    max_age: Annotated[int, Field(ge=0)] | None = None
    partitioned: bool = False
    path: str | None = None
    same_site: str | None = None
    secure: bool = False
    primary_cookie_name: str | None = None


class CanaryAnalysis(Model):
    """How the canary is judged and how traffic moves while it is."""

    model_config = ConfigDict(json_schema_extra={"x-kubernetes-validations": [{
        "rule": "[has(self.iterations), has(self.stepWeight), has(self.stepWeights)].filter(x, x).size() == 1",
        "message": "exactly one of iterations, stepWeight, stepWeights must be set"}]})

    interval: Annotated[Duration, Field(json_schema_extra=_at_least("1s"))] = ANALYSIS_INTERVAL
    iterations: Annotated[int, Field(ge=1)] | None = None
    mirror: bool = False
    mirror_weight: Percent | None = None
    max_weight: StepWeight | None = None
    step_weight: StepWeight | None = None
    step_weights: Annotated[list[StepWeight], Field(min_length=1)] | None = None
    step_weight_promotion: StepWeight | None = None
    threshold: Annotated[int, Field(ge=1)] = 1
    primary_ready_threshold: Percent | None = None
    canary_ready_threshold: Percent | None = None
    alerts: list[CanaryAlert] | None = None
    metrics: list[CanaryMetric] | None = None
    # Bounded so that the API server's CEL cost estimate admits the URL check of every hook.
    webhooks: Annotated[list[CanaryWebhook], Field(max_length=MAX_WEBHOOKS)] | None = None
    match: list[HTTPMatchRequest] | None = None
    session_affinity: SessionAffinity | None = None
    score_thresholds: ScoreThresholds = ScoreThresholds()

    @model_validator(mode="after")
    def _rules(self) -> CanaryAnalysis:
        chosen = [n for n in ("iterations", "step_weight", "step_weights") if getattr(self, n) is not None]
        if len(chosen) != 1:
            raise ValueError("exactly one of iterations, stepWeight, stepWeights must be set")
        if parse_duration(self.interval) < timedelta(seconds=1):
            raise ValueError(f"interval must be at least 1s, got {self.interval}")
        if self.step_weights is not None and list(self.step_weights) != sorted(set(self.step_weights)):
            raise ValueError("stepWeights must be strictly increasing")
        return self

    @property
    def interval_seconds(self) -> float:
        """The tick period in seconds."""
        return parse_duration(self.interval).total_seconds()

    @property
    def strategy(self) -> Strategy:
        """Flagger's rule: iterations with a match is A/B, iterations alone blue/green."""
        if self.iterations:
            return Strategy.AB_TESTING if self.match else Strategy.BLUE_GREEN
        return Strategy.CANARY

    @property
    def effective_max_weight(self) -> int:
        """The canary weight at which promotion starts."""
        if self.step_weights:
            return min(TOTAL_WEIGHT, self.step_weights[-1])
        return self.max_weight or TOTAL_WEIGHT

    @property
    def effective_primary_ready_threshold(self) -> int:
        """Percent of updated primary replicas that must be available."""
        return READY_THRESHOLD if self.primary_ready_threshold is None else self.primary_ready_threshold

    @property
    def effective_canary_ready_threshold(self) -> int:
        """Percent of updated canary replicas that must be available."""
        return READY_THRESHOLD if self.canary_ready_threshold is None else self.canary_ready_threshold

    def hooks(self, kind: HookType) -> list[CanaryWebhook]:
        """The webhooks of one type, in spec order."""
        return [w for w in self.webhooks or [] if w.type == kind]


class CanarySpec(Model):
    """What to release and how."""

    provider: Provider | None = None
    metrics_server: str | None = None
    target_ref: TargetReference
    autoscaler_ref: AutoscalerReference | None = None
    ingress_ref: LocalObjectReference | None = None
    route_ref: LocalObjectReference | None = None
    upstream_ref: CrossNamespaceObjectReference | None = None
    service: CanaryService
    analysis: CanaryAnalysis
    progress_deadline_seconds: Annotated[int, Field(ge=1)] = PROGRESS_DEADLINE_SECONDS
    skip_analysis: bool = False
    revert_on_deletion: bool = False
    suspend: bool = False

    @property
    def service_names(self) -> tuple[str, str, str]:
        """Names of the apex, primary and canary Services."""
        apex = self.service.name or self.target_ref.name
        return apex, f"{apex}-primary", f"{apex}-canary"

    @property
    def primary_name(self) -> str:
        """Name of the generated primary workload."""
        return f"{self.target_ref.name}-primary"


class ConditionStatus(StrEnum):
    """Kubernetes condition states."""

    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


class CanaryCondition(Model):
    """Flagger's ``Promoted`` condition (``kubectl wait --for=condition=Promoted``), and our ``Ready``,
    which is False with a reason while the Canary cannot be acted on (invalid spec, missing target)."""

    type: Literal["Promoted", "Ready"] = "Promoted"
    status: ConditionStatus
    last_update_time: datetime | None = None
    last_transition_time: datetime | None = None
    reason: str | None = None
    message: str | None = None


class MetricResult(Model):
    """One metric's verdict in one analysis step (our addition to Flagger's status)."""

    name: str
    value: float | None = None
    min: float | None = None
    max: float | None = None
    verdict: Literal["pass", "fail", "no-data", "error"]
    message: str | None = None
    time: datetime


TIMELINE_POINTS = 120
"""The most points a timeline keeps (its first and the newest): it lives in every watch cache."""
NOTE_LENGTH = 200
"""The longest note a timeline point keeps."""


class Band(Model):
    """A metric's range as the analysis judged it (either bound may be open)."""

    min: float | None = None
    max: float | None = None


class TimelinePoint(Model):
    """One step of a run where something changed (weight, phase, checks, a metric step, a note)."""

    time: datetime
    phase: Phase
    canary_weight: Weight
    failed_checks: Annotated[int, Field(ge=0)] = 0
    mirror: bool | None = Field(default=None, description="Requests were mirrored to the canary at this step.")
    # A metric without data is null: nullable, so the API server keeps it rather than pruning it.
    metrics: dict[str, Annotated[float | None, Field(json_schema_extra={"nullable": True})]] | None = Field(
        default=None, description="This step's metric values (null: no data).")
    note: Annotated[str, Field(max_length=NOTE_LENGTH)] | None = Field(
        default=None, description="Why something happened: promotion, rollback: <reason>, webhook <name> refused.")


class Timeline(Model):
    """The current or last run, step by step: begun when a run starts, kept until the next one."""

    revision: str = Field(description="The revision analysed in this run.")
    started: datetime
    points: list[TimelinePoint] = Field(default_factory=list, max_length=TIMELINE_POINTS)
    thresholds: dict[str, Band] | None = Field(
        default=None, description="Each metric's range in the analysis (the bands of a picture).")

    @model_validator(mode="before")
    @classmethod
    def _missing_metric_is_null(cls, data: object) -> object:
        """A metric without data comes back from the API server missing, not null (its merge patch drops
        nulls): a point's metric that the run knows of (in another point or the thresholds) is put back as null."""
        if not isinstance(data, dict) or not isinstance(data.get("points"), list):
            return data
        steps = [p for p in data["points"] if isinstance(p, dict) and isinstance(p.get("metrics"), dict)]
        names = {name for p in steps for name in p["metrics"]} | set(data.get("thresholds") or {})
        if all(names <= p["metrics"].keys() for p in steps):
            return data
        return {**data, "points": [{**p, "metrics": {n: p["metrics"].get(n) for n in sorted(names)}}
                                   if isinstance(p, dict) and isinstance(p.get("metrics"), dict) else p
                                   for p in data["points"]]}


class MetricDetail(Model):
    """A (metric, what it showed) pair shown under an alert."""

    name: str
    value: str


class PendingAlert(Model):
    """An alert of a transition, written with the transition and removed once delivered, so that a
    controller killed in between sends it after its restart (at least once)."""

    id: Annotated[str, Field(min_length=1, max_length=32)]
    severity: Severity
    message: str
    revision: str = ""
    phase: str = ""
    details: list[MetricDetail] | None = None


class CanaryStatus(Model):
    """Everything the controller needs to resume a canary lives here."""

    # Only the controller writes status: a field another version of it left is ignored (and removed
    # by the next status write) rather than making the Canary invalid.
    model_config = ConfigDict(extra="ignore")

    phase: Phase | None = None
    failed_checks: Annotated[int, Field(ge=0)] = 0
    canary_weight: Weight = 0
    iterations: Annotated[int, Field(ge=0)] = 0
    previous_session_affinity_cookie: str | None = None
    session_affinity_cookie: str | None = None
    primary_session_affinity_cookie: str | None = None
    tracked_configs: dict[str, str] | None = None
    last_applied_spec: str | None = None
    last_promoted_spec: str | None = None
    last_transition_time: datetime | None = None
    conditions: list[CanaryCondition] | None = None
    analysis: list[MetricResult] | None = None
    handled_request: str | None = None
    request_refused: str | None = Field(default=None, description="Why the request in handledRequest was not "
                                        "carried out (unset when it was).")
    no_data_since: datetime | None = None
    pending_alerts: list[PendingAlert] | None = Field(default=None, description="Alerts written with their "
                                                      "transition and not yet delivered.")
    timeline: Timeline | None = Field(default=None, description="The current or last run, step by step.")

    def latest_failures(self) -> list[MetricResult]:
        """The failing metrics of the last analysis step."""
        history = self.analysis or []
        latest = max((m.time for m in history), default=None)
        return [m for m in history if m.time == latest and m.verdict != "pass"]

    def failing_checks(self) -> tuple[tuple[str, str], ...]:
        """The failing metrics of the last analysis step, as (name, what it showed)."""
        return tuple((m.name, m.message or m.verdict) for m in self.latest_failures())


class ObjectMeta(OpenModel):
    """The parts of metadata the controller reads; the rest is kept as it came."""

    name: Name
    namespace: str | None = None
    uid: str | None = None
    generation: int | None = None
    resource_version: str | None = None
    labels: dict[str, str] | None = None
    annotations: dict[str, str] | None = None
    finalizers: list[str] | None = None
    creation_timestamp: datetime | None = None
    deletion_timestamp: datetime | None = None


class Canary(Model):
    """A Canary object as stored in the cluster."""

    api_version: Literal["canary.dev/v1alpha1"] = "canary.dev/v1alpha1"
    kind: Literal["Canary"] = "Canary"
    metadata: ObjectMeta
    spec: CanarySpec
    status: CanaryStatus = CanaryStatus()

    @classmethod
    def from_object(cls, obj: dict[str, Any]) -> Canary:
        """Parse an object read from the API server."""
        return cls.model_validate(obj)


class _Lenient(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore", frozen=True)


class _HeadMeta(_Lenient):
    name: str
    namespace: str = ""
    creation_timestamp: str = ""
    labels: dict[str, str] = {}


class _HeadTarget(_Lenient):
    kind: str = "Deployment"
    name: str | None = None


class _HeadSpec(_Lenient):
    target_ref: _HeadTarget = _HeadTarget()


class _HeadStatus(_Lenient):
    phase: str | None = None
    last_applied_spec: str | None = None
    last_promoted_spec: str | None = None


class CanaryHead(_Lenient):
    """Who a Canary is, what it targets and where its last release stands, read from any Canary
    object, valid or not: what indexes and the Git sync need, where an invalid spec must not hide
    that the Canary claims its target."""

    metadata: _HeadMeta
    spec: _HeadSpec = _HeadSpec()
    status: _HeadStatus = _HeadStatus()

    @classmethod
    def of(cls, obj: dict[str, Any]) -> CanaryHead:
        """The head of a Canary object; fields of the wrong type read as unset."""
        try:
            return cls.model_validate(obj)
        except ValidationError:
            meta = obj.get("metadata") or {}
            return cls(metadata=_HeadMeta(name=str(meta.get("name", "")), namespace=str(meta.get("namespace", ""))))

    @property
    def target(self) -> str | None:
        """The name of the target workload."""
        return self.spec.target_ref.name

    @property
    def rolled_back(self) -> bool:
        """The last release was rolled back and the target not since brought back to the promoted revision."""
        return self.status.phase == Phase.FAILED.value and \
            self.status.last_applied_spec != self.status.last_promoted_spec
