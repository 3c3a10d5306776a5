from __future__ import annotations

from datetime import timedelta

import pytest

from analysis.builtin import BUILTIN_METRICS, builtin_query, default_bounds
from analysis.errors import UnknownMetric
from analysis.templates import TemplateContext, render_promql

PROVIDERS = ["istio", "linkerd", "nginx", "contour", "gatewayapi", "kubernetes", "gloo", "apisix", "kuma"]
MINUTE = timedelta(minutes=1)
CTX = TemplateContext(name="podinfo", namespace="test", target="podinfo", service="podinfo", interval=MINUTE)


def test_the_built_in_metrics_are_flaggers_two() -> None:
    assert frozenset({"request-success-rate", "request-duration"}) == BUILTIN_METRICS


@pytest.mark.parametrize("provider", PROVIDERS)
@pytest.mark.parametrize("metric", sorted(BUILTIN_METRICS))
def test_every_provider_has_both_metrics_and_they_render(provider: str, metric: str) -> None:
    rendered = render_promql(builtin_query(provider, metric), CTX)
    assert "{{" not in rendered
    assert '"test' in rendered or "_test_" in rendered, "the query selects the canary's namespace"


def test_istios_success_rate_is_flaggers_query() -> None:
    assert render_promql(builtin_query("istio", "request-success-rate"), CTX) == (
        'sum(rate(istio_requests_total{reporter="destination", destination_workload_namespace="test", '
        'destination_workload=~"podinfo", response_code!~"5.*"}[1m])) / '
        'sum(rate(istio_requests_total{reporter="destination", destination_workload_namespace="test", '
        'destination_workload=~"podinfo"}[1m])) * 100')


def test_istios_duration_is_the_p99_in_milliseconds() -> None:
    assert render_promql(builtin_query("istio", "request-duration"), CTX) == (
        'histogram_quantile(0.99, sum(rate(istio_request_duration_milliseconds_bucket{reporter="destination", '
        'destination_workload_namespace="test", destination_workload=~"podinfo"}[1m])) by (le))')


def test_a_seconds_histogram_is_scaled_to_milliseconds() -> None:
    assert builtin_query("gatewayapi", "request-duration").endswith(" by (le)) * 1000")
    assert builtin_query("nginx", "request-duration").endswith(" * 1000")


def test_nginx_selects_the_ingress() -> None:
    ctx = TemplateContext(name="podinfo", namespace="test", target="podinfo", service="podinfo", interval=MINUTE,
                          ingress="web")
    assert 'ingress="web"' in render_promql(builtin_query("nginx", "request-success-rate"), ctx)


def test_skippers_queries_are_flaggers_with_the_names_written_as_skipper_writes_them_in_route_ids() -> None:
    ctx = TemplateContext(name="web", namespace="t-1", target="web", service="web.svc", interval=MINUTE,
                          ingress="web-ingress")
    route = 'route=~"kube(ew)?_t_1__web_ingress_canary__.*__web_svc_canary(_[0-9]+)?"'
    assert render_promql(builtin_query("skipper", "request-success-rate"), ctx) == (
        f'sum(rate(skipper_response_duration_seconds_bucket{{{route}, le="+Inf", code!~"5.."}}[1m])) / '
        f'sum(rate(skipper_response_duration_seconds_bucket{{{route}, le="+Inf"}}[1m])) * 100')
    assert render_promql(builtin_query("skipper", "request-duration"), ctx) == (
        f"sum(rate(skipper_serve_route_duration_seconds_sum{{{route}}}[1m])) / "
        f"sum(rate(skipper_serve_route_duration_seconds_count{{{route}}}[1m])) * 1000")


def test_gloos_and_kumas_queries_are_flaggers_over_envoys_upstream_series() -> None:
    gloo = 'envoy_cluster_name=~"test-podinfo-canaryupstream-[0-9a-zA-Z-]+_[0-9a-zA-Z-]+"'
    assert render_promql(builtin_query("gloo", "request-success-rate"), CTX) == (
        f'sum(rate(envoy_cluster_upstream_rq{{{gloo}, envoy_response_code!~"5.*"}}[1m])) / '
        f'sum(rate(envoy_cluster_upstream_rq{{{gloo}}}[1m])) * 100')
    kuma = 'service=~"podinfo-canary_test_svc_[0-9a-zA-Z-]+"'
    assert render_promql(builtin_query("kuma", "request-duration"), CTX) == (
        f"histogram_quantile(0.99, sum(rate(envoy_cluster_upstream_rq_time_bucket{{{kuma}}}[1m])) by (le))")


def test_apisixs_queries_select_the_canary_route_made_from_the_route_ref() -> None:
    ctx = TemplateContext(name="podinfo", namespace="test", target="podinfo", service="podinfo", interval=MINUTE,
                          route="web")
    route = 'route=~"test_web-podinfo-canary_.+"'
    assert render_promql(builtin_query("apisix", "request-success-rate"), ctx) == (
        f'sum(rate(apisix_http_status{{{route}, code!~"5.."}}[1m])) / '
        f'sum(rate(apisix_http_status{{{route}}}[1m])) * 100')
    assert render_promql(builtin_query("apisix", "request-duration"), ctx) == (
        f'histogram_quantile(0.99, sum(rate(apisix_http_latency_bucket{{type=~"request", {route}}}[1m])) by (le))')


def test_kubernetes_and_gatewayapi_read_the_pods_own_http_histogram_as_flagger_does() -> None:
    for metric in BUILTIN_METRICS:
        assert builtin_query("kubernetes", metric) == builtin_query("gatewayapi", metric)
        assert "http_request_duration_seconds" in builtin_query("kubernetes", metric)


def test_a_provider_version_suffix_is_ignored() -> None:
    assert builtin_query("gatewayapi:v1beta1", "request-duration") == builtin_query("gatewayapi", "request-duration")


def test_an_unknown_metric_is_named_with_the_ones_that_exist() -> None:
    with pytest.raises(UnknownMetric) as error:
        builtin_query("istio", "error-rate")
    assert str(error.value) == ('no built-in metric "error-rate" for provider "istio"; '
                                'built-in metrics: request-duration, request-success-rate')


def test_an_unknown_provider_is_named_with_the_ones_that_exist() -> None:
    with pytest.raises(UnknownMetric) as error:
        builtin_query("kong", "request-duration")
    assert str(error.value) == ('no built-in metrics for provider "kong"; providers with built-in metrics: '
                                'apisix, contour, gatewayapi, gloo, istio, kubernetes, kuma, linkerd, nginx, '
                                'skipper, traefik')
    assert isinstance(error.value, ValueError)


def test_a_success_rate_threshold_is_a_minimum() -> None:
    assert default_bounds("request-success-rate", 99) == (99, None)


@pytest.mark.parametrize("metric", ["request-duration", "my-custom-metric"])
def test_any_other_threshold_is_a_maximum(metric: str) -> None:
    assert default_bounds(metric, 500) == (None, 500)
