"""Answers to decide()'s checks: webhook gates, and the analysis (rollout hooks, then metrics).

Metric checks render a MetricTemplate's query (or a built-in one) for this canary, ask the
provider and judge the value against the metric's range. Any problem with a metric's definition
(a missing template, an unknown placeholder) fails that metric with a message saying why.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from datetime import datetime
from typing import Any

from analysis.builtin import BUILTIN_METRICS, builtin_query, default_bounds
from analysis.errors import AnalysisSpecError
from analysis.gates import MetricVerdict, judge
from analysis.providers.base import MetricProvider
from analysis.providers.registry import provider_for
from analysis.templates import TemplateContext, render_promql
from canary.engine.decide import Check, CheckResult
from canary.kube.cache import Informer
from canary.models.canary import Canary, CanaryMetric, CanaryWebhook, HookType, MetricResult, Phase
from canary.models.resources import MetricTemplate
from canary.webhooks import WebhookCaller, payload

_GATES = {Check.CONFIRM_ROLLOUT: HookType.CONFIRM_ROLLOUT, Check.CONFIRM_TRAFFIC_INCREASE:
          HookType.CONFIRM_TRAFFIC_INCREASE, Check.CONFIRM_PROMOTION: HookType.CONFIRM_PROMOTION,
          Check.PRE_ROLLOUT: HookType.PRE_ROLLOUT}


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
        self._providers: dict[tuple[str, str, tuple[tuple[str, str], ...]], MetricProvider] = {}

    def run(self, check: Check, canary: Canary, *, revision: str, provider: str) -> CheckResult:
        """Run one check for ``canary`` at ``revision``."""
        analysis = canary.spec.analysis

        def body(hook: CanaryWebhook) -> dict[str, Any]:
            phase = Phase.PROGRESSING if check is not Check.CONFIRM_ROLLOUT else canary.status.phase
            return payload(name=canary.metadata.name, namespace=canary.metadata.namespace or "", phase=phase,
                           revision=revision, hook=hook)

        if check is Check.ROLLBACK:
            passed, message = self._webhooks.any_pass(analysis.hooks(HookType.ROLLBACK), body)
            return CheckResult(passed=passed, message=message)
        if check in _GATES:
            passed, message = self._webhooks.all_pass(analysis.hooks(_GATES[check]), body)
            return CheckResult(passed=passed, message=message)
        passed, message = self._webhooks.all_pass(analysis.hooks(HookType.ROLLOUT), body)
        if not passed:
            return CheckResult(passed=False, message=message)
        return self._metrics(canary, provider)

    def _metrics(self, canary: Canary, mesh: str) -> CheckResult:
        now = self._clock()
        results = []
        for metric in canary.spec.analysis.metrics or []:
            verdict = self._judge(canary, metric, mesh)
            results.append(MetricResult(name=verdict.name, value=verdict.value, min=verdict.min, max=verdict.max,
                                        verdict=verdict.verdict, message=verdict.message, time=now))
        policies = {m.name: m.no_data for m in canary.spec.analysis.metrics or []}
        failed = [r for r in results if r.verdict != "pass" and not
                  (r.verdict == "no-data" and policies.get(r.name) in ("skip", "pause"))]
        held = [r for r in results if r.verdict == "no-data" and policies.get(r.name) == "pause"]
        if failed or not held:
            return CheckResult(passed=not failed, message="; ".join(r.message or r.name for r in failed),
                               metrics=tuple(results))
        return CheckResult(passed=False, hold=True, message="; ".join(r.message or r.name for r in held),
                           metrics=tuple(results))

    def _judge(self, canary: Canary, metric: CanaryMetric, mesh: str) -> MetricVerdict:
        bounds = metric.threshold_range
        low, high = (bounds.min, bounds.max) if bounds is not None else (None, None)
        try:
            query, provider = self._query(canary, metric, mesh)
            if bounds is None and metric.threshold is not None:
                low, high = default_bounds(metric.name, metric.threshold)
            context = TemplateContext(
                name=canary.metadata.name, namespace=canary.metadata.namespace or "",
                target=canary.spec.target_ref.name, service=canary.spec.service_names[0],
                interval=metric.effective_interval, variables=metric.template_variables or {})
            rendered = render_promql(query, context)
        except AnalysisSpecError as exc:
            return MetricVerdict(metric.name, None, low, high, "error", f"{metric.name}: {exc}")
        return judge(metric.name, provider.query(rendered), min=low, max=high)

    def _query(self, canary: Canary, metric: CanaryMetric, mesh: str) -> tuple[str, MetricProvider]:
        if metric.template_ref is not None:
            ref = metric.template_ref
            found = self._templates.get(ref.namespace or canary.metadata.namespace, ref.name)
            if found is None:
                raise AnalysisSpecError(f"spec.analysis.metrics[{metric.name}].templateRef: MetricTemplate "
                                        f"{ref.namespace or canary.metadata.namespace}/{ref.name} not found")
            template = MetricTemplate.model_validate(found)
            spec = template.spec.provider
            headers = {k: ", ".join(v) for k, v in (spec.headers or {}).items()}
            if spec.secret_ref is not None:
                headers.update(self._credentials(template, spec.secret_ref.name))
            return template.spec.query, self._provider(spec.type, spec.address or self._metrics_server, headers)
        server = canary.spec.metrics_server or self._metrics_server
        if metric.name in BUILTIN_METRICS:
            return builtin_query(mesh, metric.name), self._provider("prometheus", server, {})
        if metric.query:
            return metric.query, self._provider("prometheus", server, {})
        raise AnalysisSpecError(f"spec.analysis.metrics[{metric.name}]: not a built-in metric "
                                f"({', '.join(sorted(BUILTIN_METRICS))}) and no templateRef or query")

    def _credentials(self, template: MetricTemplate, secret: str) -> dict[str, str]:
        """An Authorization header from the template's Secret: ``token`` (bearer) or ``username``/``password``."""
        namespace = template.metadata.namespace
        where = f"MetricTemplate {namespace}/{template.metadata.name}: spec.provider.secretRef"
        found = self._secrets.get(namespace, secret)
        if found is None:
            raise AnalysisSpecError(f"{where}: Secret {secret} not found")
        data = {k: base64.b64decode(v).decode() for k, v in (found.get("data") or {}).items()}
        if "token" in data:
            return {"Authorization": f"Bearer {data['token']}"}
        if "username" in data and "password" in data:
            pair = base64.b64encode(f"{data['username']}:{data['password']}".encode()).decode()
            return {"Authorization": f"Basic {pair}"}
        raise AnalysisSpecError(f"{where}: Secret {secret} has neither a token nor a username and password")

    def _provider(self, kind: str, address: str, headers: dict[str, str]) -> MetricProvider:
        key = (kind, address, tuple(sorted(headers.items())))
        if key not in self._providers:
            self._providers[key] = provider_for(kind, address=address, headers=headers, timeout=self._timeout,
                                                field="spec.provider.type")
        return self._providers[key]
