from __future__ import annotations

import pytest

from analysis.errors import UnknownProvider
from analysis.providers.prometheus import PrometheusProvider
from analysis.providers.registry import provider_for


def test_prometheus_is_a_provider() -> None:
    provider = provider_for("prometheus", address="http://prometheus:9090", headers={"X-Scope-OrgID": "a"})
    assert isinstance(provider, PrometheusProvider)
    assert provider.url == "http://prometheus:9090"


def test_an_unknown_kind_names_the_field_and_the_known_kinds() -> None:
    with pytest.raises(UnknownProvider) as error:
        provider_for("datadog", address="https://api.datadoghq.com",
                     field="MetricTemplate test/latency: spec.provider.type")
    assert str(error.value) == ('MetricTemplate test/latency: spec.provider.type: unknown metric provider "datadog"; '
                                'known: prometheus')
    assert isinstance(error.value, ValueError)
