"""Each metric's Prometheus series over a run, for ``canary report --metrics-server``.

The query is the one the analysis runs (a MetricTemplate's, a built-in one of the canary's
router, or the metric's own), rendered for the canary as the controller renders it, and asked
of the Prometheus the user names as a range query over the run. A metric that has no such
series (a comparison, a template of another provider, no data) is said so, never left out
silently; a Prometheus that does not answer is an error.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from analysis.errors import AnalysisSpecError
from analysis.providers.base import Outcome
from analysis.providers.config import ProviderConfig
from analysis.providers.prometheus import from_config
from analysis.templates import render_promql
from canary.engine.checks import inline_query, metric_template, template_context
from canary.errors import PermanentError, TemporaryError
from canary.kube import Obj
from canary.models.canary import Canary, CanaryMetric
from canary.report.series import Run, Sample

POINTS = 240
"""About how many samples a series gets over the run."""
QUERY_SECONDS = 15.0


def with_prometheus(run: Run, canary: Canary, *, url: str, mesh: str,
                    templates: Callable[[str | None, str], Obj | None], timeout: float = QUERY_SECONDS) -> Run:
    """``run`` with each metric's series from the Prometheus at ``url``; ``mesh`` is the router whose
    built-in queries apply (the canary's spec.provider, else the controller's default). ``timeout`` bounds
    each query (the dashboard, which answers a page, asks with a short one and no second attempt)."""
    attempts = 1 if timeout < QUERY_SECONDS else ProviderConfig.attempts
    try:
        provider = from_config(ProviderConfig("prometheus", url, timeout=timeout, attempts=attempts),
                               field="--metrics-server")
    except AnalysisSpecError as exc:
        raise PermanentError(str(exc)) from exc
    start, end = run.started, max(run.ended, run.started + timedelta(seconds=1))
    step = max(timedelta(seconds=1), (end - start) / POINTS)
    specs = {m.name: m for m in canary.spec.analysis.metrics or []}
    found: dict[str, tuple[Sample, ...]] = {}
    missing: dict[str, str] = {}
    for series in run.metrics:
        metric = specs.get(series.name)
        if metric is None:
            missing[series.name] = "no longer in spec.analysis.metrics"
            continue
        try:
            query = _query(canary, metric, mesh=mesh, templates=templates)
        except (AnalysisSpecError, _NoSeries) as exc:
            missing[series.name] = str(exc)
            continue
        result = provider.query_range(query, start=start, end=end, step=step, deadline=timeout)
        if result.outcome is Outcome.UNAVAILABLE:
            raise TemporaryError(f"--metrics-server: {result.message}")
        if result.outcome is Outcome.VALUE:
            found[series.name] = tuple((datetime.fromtimestamp(t, UTC), v)
                                       for t, v in zip(result.times, result.values, strict=True))
        else:
            missing[series.name] = f"Prometheus: {result.outcome}: {result.message}"
    return run.with_prometheus(found, missing)


class _NoSeries(Exception):
    """The metric has no Prometheus series to draw; the message says why."""


def _query(canary: Canary, metric: CanaryMetric, *, mesh: str,
           templates: Callable[[str | None, str], Obj | None]) -> str:
    """The metric's query, rendered for the canary as the analysis renders it."""
    if metric.comparison is not None:
        raise _NoSeries("a comparison: its value is the canary's change against the primary, not one query's")
    template = metric_template(canary, metric, templates)
    if template is not None and template.spec.provider.type != "prometheus":
        raise _NoSeries(f"its MetricTemplate's provider is {template.spec.provider.type}, not Prometheus")
    text = template.spec.query if template is not None else inline_query(metric, mesh)
    return render_promql(text, template_context(canary, metric, canary.spec.target_ref.name))
