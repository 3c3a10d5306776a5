"""Flagger's built-in metrics as data: PromQL templates per mesh or ingress provider.

The controller's metric check calls ``builtin_query`` for a canary metric named
``request-success-rate`` or ``request-duration`` that has no query or templateRef, renders it with
``analysis.templates.render_promql``, and judges the value with bounds from ``default_bounds``
when the metric has the legacy ``threshold`` instead of ``thresholdRange``.

The queries are Flagger's (pkg/metrics/observers), with two deliberate differences: every
duration query returns milliseconds in PromQL itself, where Flagger scales some in Go; and an
unknown provider is an error, where Flagger falls back to Istio's queries.
"""

from __future__ import annotations

from collections.abc import Mapping

from analysis.errors import UnknownMetric

SUCCESS_RATE = "request-success-rate"
DURATION = "request-duration"
BUILTIN_METRICS = frozenset({SUCCESS_RATE, DURATION})


def _rate(metric: str, labels: str) -> str:
    return f"rate({metric}{{{labels}}}[{{{{ interval }}}}])"


def _success_rate(counter: str, labels: str, success: str) -> str:
    """Percent of requests that succeeded."""
    return f"sum({_rate(counter, f'{labels}, {success}')}) / sum({_rate(counter, labels)}) * 100"


def _p99(bucket: str, labels: str, *, scale: str = "") -> str:
    """The 99th percentile of a histogram, times ``scale`` to make it milliseconds."""
    return f"histogram_quantile(0.99, sum({_rate(bucket, labels)}) by (le)){scale}"


_ISTIO_LABELS = ('reporter="destination", destination_workload_namespace="{{ namespace }}", '
                 'destination_workload=~"{{ target }}"')
_ISTIO = {
    SUCCESS_RATE: _success_rate("istio_requests_total", _ISTIO_LABELS, 'response_code!~"5.*"'),
    DURATION: _p99("istio_request_duration_milliseconds_bucket", _ISTIO_LABELS),
}

_LINKERD_LABELS = 'namespace="{{ namespace }}", deployment=~"{{ target }}", direction="inbound"'

_NGINX_LABELS = 'namespace="{{ namespace }}", ingress="{{ ingress }}", canary!=""'

_CONTOUR_LABELS = 'envoy_cluster_name=~"{{ namespace }}_{{ service }}-canary_[0-9a-zA-Z-]+"'

_TRAEFIK_LABELS = 'service=~"{{ namespace }}-{{ target }}-canary-[0-9a-zA-Z-]+@kubernetescrd"'

# Gloo's Envoy names an upstream's cluster <upstream>_<upstream namespace>; Flagger's canary upstream
# is <namespace>-<service>-canaryupstream-<port>.
_GLOO_LABELS = 'envoy_cluster_name=~"{{ namespace }}-{{ target }}-canaryupstream-[0-9a-zA-Z-]+_[0-9a-zA-Z-]+"'

# APISIX's prometheus plugin (prefer_name) labels requests with <namespace>_<ApisixRoute>_<http route>:
# the canary ApisixRoute's, which carries the primary's requests too.
_APISIX_ROUTE = 'route=~"{{ namespace }}_{{ route }}-{{ target }}-canary_.+"'

# Kuma labels a data plane proxy's series with its own Kuma service: the canary pods' proxies here.
_KUMA_LABELS = 'service=~"{{ target }}-canary_{{ namespace }}_svc_[0-9a-zA-Z-]+"'

# Skipper's routes on the canary Ingress that lead to the canary Service, by the ids Skipper gives
# them; Flagger writes every value into the id with its non-word characters made "_", as Skipper does.
_SKIPPER_ROUTE = ('route=~"kube(ew)?_{{ namespace | nonWordToUnderscore }}__{{ ingress | nonWordToUnderscore }}'
                  '_canary__.*__{{ service | nonWordToUnderscore }}_canary(_[0-9]+)?"')

# Flagger's "kubernetes" and "gatewayapi" providers read the app's own HTTP histogram from its pods.
_POD_LABELS = 'kubernetes_namespace="{{ namespace }}", kubernetes_pod_name=~"{{ target }}-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)"'

_POD_HISTOGRAM = {
    SUCCESS_RATE: _success_rate("http_request_duration_seconds_count", _POD_LABELS, 'status!~"5.*"'),
    DURATION: _p99("http_request_duration_seconds_bucket", _POD_LABELS, scale=" * 1000"),
}

_QUERIES: Mapping[str, Mapping[str, str]] = {
    "istio": _ISTIO,
    "linkerd": {
        SUCCESS_RATE: _success_rate("response_total", _LINKERD_LABELS, 'classification!="failure"'),
        DURATION: _p99("response_latency_ms_bucket", _LINKERD_LABELS),
    },
    "nginx": {
        SUCCESS_RATE: _success_rate("nginx_ingress_controller_requests", _NGINX_LABELS, 'status!~"5.*"'),
        # Flagger's nginx duration is the mean response time, not a percentile.
        DURATION: f"sum({_rate('nginx_ingress_controller_response_duration_seconds_sum', _NGINX_LABELS)}) / "
                  f"sum({_rate('nginx_ingress_controller_response_duration_seconds_count', _NGINX_LABELS)}) * 1000",
    },
    "contour": {
        SUCCESS_RATE: _success_rate("envoy_cluster_upstream_rq", _CONTOUR_LABELS, 'envoy_response_code!~"5.*"'),
        DURATION: _p99("envoy_cluster_upstream_rq_time_bucket", _CONTOUR_LABELS),
    },
    "traefik": {
        SUCCESS_RATE: _success_rate("traefik_service_request_duration_seconds_bucket", f'{_TRAEFIK_LABELS}, le="+Inf"',
                                    'code!~"5.."'),
        DURATION: _p99("traefik_service_request_duration_seconds_bucket", _TRAEFIK_LABELS, scale=" * 1000"),
    },
    "skipper": {
        SUCCESS_RATE: _success_rate("skipper_response_duration_seconds_bucket", f'{_SKIPPER_ROUTE}, le="+Inf"',
                                    'code!~"5.."'),
        # Flagger's skipper duration is the mean time to serve the route, not a percentile.
        DURATION: f"sum({_rate('skipper_serve_route_duration_seconds_sum', _SKIPPER_ROUTE)}) / "
                  f"sum({_rate('skipper_serve_route_duration_seconds_count', _SKIPPER_ROUTE)}) * 1000",
    },
    "gloo": {
        SUCCESS_RATE: _success_rate("envoy_cluster_upstream_rq", _GLOO_LABELS, 'envoy_response_code!~"5.*"'),
        DURATION: _p99("envoy_cluster_upstream_rq_time_bucket", _GLOO_LABELS),
    },
    "apisix": {
        SUCCESS_RATE: _success_rate("apisix_http_status", _APISIX_ROUTE, 'code!~"5.."'),
        DURATION: _p99("apisix_http_latency_bucket", f'type=~"request", {_APISIX_ROUTE}'),
    },
    "kuma": {
        SUCCESS_RATE: _success_rate("envoy_cluster_upstream_rq", _KUMA_LABELS, 'envoy_response_code!~"5.*"'),
        DURATION: _p99("envoy_cluster_upstream_rq_time_bucket", _KUMA_LABELS),
    },
    "gatewayapi": _POD_HISTOGRAM,
    "kubernetes": _POD_HISTOGRAM,
}


def builtin_query(provider: str, metric: str) -> str:
    """The query template of built-in ``metric`` for ``provider`` (``gatewayapi:v1`` is ``gatewayapi``)."""
    queries = _QUERIES.get(provider.partition(":")[0])
    if queries is None:
        raise UnknownMetric(f'no built-in metrics for provider "{provider}"; '
                            f'providers with built-in metrics: {", ".join(sorted(_QUERIES))}')
    if metric not in queries:
        raise UnknownMetric(f'no built-in metric "{metric}" for provider "{provider}"; '
                            f'built-in metrics: {", ".join(sorted(queries))}')
    return queries[metric]


def default_bounds(metric: str, threshold: float) -> tuple[float | None, float | None]:
    """(min, max) from Flagger's legacy ``threshold``: a minimum success rate, else a maximum."""
    if metric == SUCCESS_RATE:
        return threshold, None
    return None, threshold
