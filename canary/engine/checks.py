"""Answers to decide()'s checks: webhook gates, and the analysis (rollout hooks, then metrics).

Metric checks render a MetricTemplate's query (or a built-in one) for this canary, ask the
provider and judge the value against the metric's range. A metric with ``comparison`` instead
runs its query over the canary and over the primary as range queries across its window and is
judged by ``analysis.compare``; the comparison score then passes, holds or fails the step. Any
problem with a metric's definition (a missing template, an unknown placeholder, a missing
Secret) fails that metric with a message saying why.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError

from analysis.builtin import BUILTIN_METRICS, builtin_query, default_bounds
from analysis.compare import Classification, Comparison, Direction, Verdict, compare, score, verdict
from analysis.errors import AnalysisSpecError
from analysis.gates import MetricVerdict, judge
from analysis.providers.base import MetricProvider, Outcome, RangeProvider
from analysis.providers.config import ProviderConfig
from analysis.providers.registry import provider_for
from analysis.templates import TemplateContext, render_promql
from canary.engine.canaries import validation_message
from canary.engine.decide import Check, CheckResult
from canary.kube import Obj
from canary.kube.cache import Informer
from canary.models.canary import Canary, CanaryMetric, CanaryWebhook, HookType, MetricResult, Phase
from canary.models.resources import MetricTemplate
from canary.webhooks import WebhookCaller, payload

_GATES = {Check.CONFIRM_ROLLOUT: HookType.CONFIRM_ROLLOUT, Check.CONFIRM_TRAFFIC_INCREASE:
          HookType.CONFIRM_TRAFFIC_INCREASE, Check.CONFIRM_PROMOTION: HookType.CONFIRM_PROMOTION,
          Check.PRE_ROLLOUT: HookType.PRE_ROLLOUT}
_OWN_PHASE = frozenset({Check.CONFIRM_ROLLOUT, Check.ROLLBACK})
_SAMPLES = 30
CA_KEY = "ca.crt"
WINDOW_INTERVALS = 10
"""Providers that take a time range look back this many metric intervals (Flagger's factor)."""


@dataclass(frozen=True)
class _Query:
    """A metric's query template and where to send it."""

    template: str
    config: ProviderConfig
    field: str


class CheckRunner:
    """Runs the checks of one controller; shared by every canary's tick."""

    def __init__(self, *, webhooks: WebhookCaller, templates: Informer, secrets: Informer, metrics_server: str,
                 clock: Callable[[], datetime], query_timeout: float = 5.0) -> None:
        self._webhooks = webhooks
        self._templates = templates
        self._secrets = secrets
        self._metrics_server = metrics_server
        self._clock = clock
        self._timeout = query_timeout
        self._providers: dict[tuple[ProviderConfig, str], MetricProvider] = {}

    def run(self, check: Check, canary: Canary, *, revision: str, provider: str) -> CheckResult:
        """Run one check for ``canary`` at ``revision``."""
        analysis = canary.spec.analysis

        def body(hook: CanaryWebhook) -> dict[str, Any]:
            # Flagger's phases: its own for confirm-rollout and rollback hooks, Progressing for the rest.
            phase = canary.status.phase if check in _OWN_PHASE else Phase.PROGRESSING
            return payload(name=canary.metadata.name, namespace=canary.metadata.namespace or "", phase=phase,
                           revision=revision, hook=hook)

        # Each gate runs in the background, so a hook that hangs holds this canary only (``Pending``).
        key = (canary.metadata.namespace or "", canary.metadata.name, revision, check.value)
        if check is Check.ROLLBACK:
            passed, message = self._webhooks.any_pass(analysis.hooks(HookType.ROLLBACK), body, key=key)
            return CheckResult(passed=passed, message=message)
        if check in _GATES:
            closed = self._webhooks.first_failure(analysis.hooks(_GATES[check]), body, key=key)
            if closed is None:
                return CheckResult(passed=True)
            return CheckResult(passed=False, message=closed.message, muted=closed.muted, hook=closed.name)
        failed = self._webhooks.first_failure(analysis.hooks(HookType.ROLLOUT), body, key=key)
        if failed is not None:
            return CheckResult(passed=False, message=failed.message, hook=failed.name)
        return self._metrics(canary, provider)

    def problems(self, canary: Canary, *, provider: str) -> list[str]:
        """What is wrong with the canary's metrics before any query runs: a name that is not a built-in
        metric of ``provider`` without a query or templateRef, a MetricTemplate that does not exist, a
        missing Secret. Reported at once, not at release time."""
        found = []
        for metric in canary.spec.analysis.metrics or []:
            try:
                self._provider(self._query(canary, metric, provider))
            except AnalysisSpecError as exc:
                found.append(str(exc))
        return found

    def _metrics(self, canary: Canary, mesh: str) -> CheckResult:
        now = self._clock()
        # The whole analysis shares one tick: each query gets a fair share of the interval.
        metrics = canary.spec.analysis.metrics or []
        deadline = max(1.0, canary.spec.analysis.interval_seconds * 0.8 / max(1, len(metrics)))
        results, comparisons = [], []
        for metric in metrics:
            if metric.comparison is not None:
                comparison = self._compare(canary, metric, mesh, now=now, deadline=deadline)
                comparisons.append(comparison)
                results.append(_comparison_result(metric, comparison, now))
            else:
                verdict_ = self._judge(canary, metric, mesh, deadline=deadline)
                results.append(MetricResult(name=verdict_.name, value=verdict_.value, min=verdict_.min,
                                            max=verdict_.max, verdict=verdict_.verdict, message=verdict_.message,
                                            time=now))
        return _overall(canary, results, comparisons)

    def _judge(self, canary: Canary, metric: CanaryMetric, mesh: str, *, deadline: float) -> MetricVerdict:
        bounds = metric.threshold_range
        low, high = (bounds.min, bounds.max) if bounds is not None else (None, None)
        try:
            query = self._query(canary, metric, mesh)
            if bounds is None and metric.threshold is not None:
                low, high = default_bounds(metric.name, metric.threshold)
            rendered = render_promql(query.template, template_context(canary, metric, canary.spec.target_ref.name))
            provider = self._provider(query)
        except AnalysisSpecError as exc:
            return MetricVerdict(metric.name, None, low, high, "error", f"{metric.name}: {exc}")
        return judge(metric.name, provider.query(rendered, deadline=deadline), min=low, max=high)

    def _compare(self, canary: Canary, metric: CanaryMetric, mesh: str, *, now: datetime,
                 deadline: float) -> Comparison:
        settings = metric.comparison
        assert settings is not None  # noqa: S101 - only called for comparison metrics
        window = metric.window
        step = max(timedelta(seconds=1), window / _SAMPLES)
        try:
            query = self._query(canary, metric, mesh)
            provider = self._provider(query)
            if not isinstance(provider, RangeProvider):
                raise AnalysisSpecError(f"{query.field}: {query.config.type} has no range queries, "
                                        "which a comparison needs")
            samples = {}
            for role, target in (("canary", canary.spec.target_ref.name), ("primary", canary.spec.primary_name)):
                rendered = render_promql(query.template, template_context(canary, metric, target))
                found = provider.query_range(rendered, start=now - window, end=now, step=step, deadline=deadline / 2)
                if found.outcome is not Outcome.VALUE:
                    return Comparison(Classification.NO_DATA, None, None, f"{role}: {found.message or found.outcome}")
                samples[role] = found.values
        except AnalysisSpecError as exc:
            return Comparison(Classification.NO_DATA, None, None, f"{exc}")
        return compare(samples["canary"], samples["primary"], confidence=settings.confidence,
                       direction=Direction(settings.direction), allowed_change=settings.allowed_change)

    def _query(self, canary: Canary, metric: CanaryMetric, mesh: str) -> _Query:
        template = metric_template(canary, metric, self._templates.get)
        if template is not None and metric.template_ref is not None:
            namespace = metric.template_ref.namespace or canary.metadata.namespace
            spec = template.spec.provider
            field = f"MetricTemplate {namespace}/{metric.template_ref.name}: spec.provider"
            credentials = self._credentials(namespace, spec.secret_ref.name, field) if spec.secret_ref else {}
            # A CA bundle travels in the same Secret (ca.crt, as in kubernetes.io/tls Secrets).
            ca_bundle = credentials.pop(CA_KEY, None)
            config = ProviderConfig(
                type=spec.type, address=spec.address or self._metrics_server,
                headers={k: ", ".join(v) for k, v in (spec.headers or {}).items()}, credentials=credentials,
                region=spec.region, insecure_skip_verify=spec.insecure_skip_verify, ca_bundle=ca_bundle,
                timeout=self._timeout, window=_window(metric))
            return _Query(template.spec.query, config, field)
        config = ProviderConfig("prometheus", canary.spec.metrics_server or self._metrics_server,
                                timeout=self._timeout, window=_window(metric))
        return _Query(inline_query(metric, mesh), config, "spec.metricsServer")

    def _credentials(self, namespace: str | None, secret: str, field: str) -> dict[str, str]:
        """The template's Secret, decoded; its keys are the provider's business."""
        found = self._secrets.get(namespace, secret)
        if found is None:
            raise AnalysisSpecError(f"{field}.secretRef: Secret {secret} not found")
        try:
            return {k: base64.b64decode(v).decode() for k, v in (found.get("data") or {}).items()}
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise AnalysisSpecError(f"{field}.secretRef: Secret {secret} holds a value that is not text") from exc

    def _provider(self, query: _Query) -> MetricProvider:
        key = (query.config, query.field)
        if key not in self._providers:
            self._providers[key] = provider_for(query.config, field=query.field)
        return self._providers[key]


def metric_template(canary: Canary, metric: CanaryMetric,
                    get: Callable[[str | None, str], Obj | None]) -> MetricTemplate | None:
    """The MetricTemplate of ``metric`` (read with ``get(namespace, name)``), None when it names none."""
    ref = metric.template_ref
    if ref is None:
        return None
    namespace = ref.namespace or canary.metadata.namespace
    found = get(namespace, ref.name)
    if found is None:
        raise AnalysisSpecError(f"spec.analysis.metrics[{metric.name}].templateRef: MetricTemplate "
                                f"{namespace}/{ref.name} not found")
    try:
        return MetricTemplate.model_validate(found)
    except ValidationError as exc:  # one the API server took under an older or looser CRD
        raise AnalysisSpecError(f"MetricTemplate {namespace}/{ref.name}: {validation_message(exc)}") from exc


def inline_query(metric: CanaryMetric, mesh: str) -> str:
    """The query template of a metric without templateRef: the built-in one of ``mesh``, or its own query."""
    if metric.name in BUILTIN_METRICS:
        return builtin_query(mesh, metric.name)
    if metric.query:
        return metric.query
    raise AnalysisSpecError(f"spec.analysis.metrics[{metric.name}]: not a built-in metric "
                            f"({', '.join(sorted(BUILTIN_METRICS))}) and no templateRef or query")


def template_context(canary: Canary, metric: CanaryMetric, target: str) -> TemplateContext:
    """What the placeholders of ``metric``'s query stand for, asked of ``target`` (the canary or the primary)."""
    spec = canary.spec
    return TemplateContext(name=canary.metadata.name, namespace=canary.metadata.namespace or "", target=target,
                           service=spec.service_names[0], interval=metric.window,
                           variables=metric.template_variables or {},
                           ingress=spec.ingress_ref.name if spec.ingress_ref else None,
                           route=spec.route_ref.name if spec.route_ref else None)


def _window(metric: CanaryMetric) -> float:
    """Seconds a provider that takes a time range looks back for ``metric``."""
    return WINDOW_INTERVALS * metric.window.total_seconds()


def _comparison_result(metric: CanaryMetric, comparison: Comparison, now: datetime) -> MetricResult:
    verdicts = {Classification.PASS: "pass", Classification.NO_DATA: "no-data"}
    return MetricResult(name=metric.name, value=comparison.change, verdict=verdicts.get(comparison.classification,
                                                                                         "fail"),
                        message=f"{metric.name}: {comparison.classification}: {comparison.message}", time=now)


def _overall(canary: Canary, results: list[MetricResult], comparisons: list[Comparison]) -> CheckResult:
    """Fixed-range failures fail the step; the comparison score passes, holds or fails it."""
    analysis = canary.spec.analysis
    policies = {m.name: m.no_data for m in analysis.metrics or []}
    compared = {m.name for m in analysis.metrics or [] if m.comparison is not None}
    # A comparison without data follows its metric's noData policy too: it is never a silent pass.
    failed = [r for r in results if r.verdict != "pass" and (r.name not in compared or r.verdict == "no-data")
              and not (r.verdict == "no-data" and policies.get(r.name) in ("skip", "pause"))]
    held = [r for r in results if r.verdict == "no-data" and policies.get(r.name) == "pause"]
    value = score(comparisons)
    if value is not None:
        thresholds = analysis.score_thresholds
        judged = verdict(value, pass_score=thresholds.pass_score, marginal_score=thresholds.marginal_score)
        outcome = f"comparison score {value:g}"
        if judged is Verdict.FAIL:
            failed += [r for r in results if r.name in compared and r.verdict == "fail"]
        elif judged is Verdict.HOLD:
            held += [r.model_copy(update={"message": f"{r.message} ({outcome}, marginal)"})
                     for r in results if r.name in compared and r.verdict == "fail"]
    if failed:
        return CheckResult(passed=False, message="; ".join(r.message or r.name for r in failed),
                           metrics=tuple(results))
    if held:
        return CheckResult(passed=False, hold=True, message="; ".join(r.message or r.name for r in held),
                           metrics=tuple(results))
    return CheckResult(passed=True, metrics=tuple(results))
