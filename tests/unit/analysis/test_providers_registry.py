from __future__ import annotations

from collections.abc import Callable

import pytest

from analysis.errors import AnalysisSpecError, CredentialsError, ProviderSpecError, UnknownProvider
from analysis.providers.cloudwatch import CloudWatchProvider
from analysis.providers.config import ProviderConfig
from analysis.providers.datadog import DatadogProvider
from analysis.providers.graphite import GraphiteProvider
from analysis.providers.influxdb import InfluxDBProvider
from analysis.providers.newrelic import NewRelicProvider
from analysis.providers.prometheus import PrometheusProvider
from analysis.providers.registry import KNOWN_TYPES, provider_for
from analysis.providers.web import WebProvider

FIELD = "MetricTemplate test/latency: spec.provider"


def test_each_type_builds_its_provider() -> None:
    built = {
        "prometheus": provider_for(ProviderConfig("prometheus", "http://prometheus:9090")),
        "graphite": provider_for(ProviderConfig("graphite", "http://graphite")),
        "influxdb": provider_for(ProviderConfig("influxdb", "http://influxdb:8086?db=telegraf")),
        "datadog": provider_for(ProviderConfig("datadog", credentials={"apiKey": "a", "applicationKey": "b"})),
        "newrelic": provider_for(ProviderConfig("newrelic", credentials={"apiKey": "NRAK-1", "accountId": "42"})),
        "cloudwatch": provider_for(ProviderConfig("cloudwatch", region="eu-west-1", credentials={
            "accessKeyId": "AKID", "secretAccessKey": "secret"})),
        "web": provider_for(ProviderConfig("web", "https://status.example.com/api")),
    }
    assert {kind: type(provider) for kind, provider in built.items()} == {
        "prometheus": PrometheusProvider, "graphite": GraphiteProvider, "influxdb": InfluxDBProvider,
        "datadog": DatadogProvider, "newrelic": NewRelicProvider, "cloudwatch": CloudWatchProvider,
        "web": WebProvider}
    assert set(built) == set(KNOWN_TYPES)


def test_back_ends_with_a_public_api_default_their_address() -> None:
    datadog = provider_for(ProviderConfig("datadog", credentials={"apiKey": "a", "applicationKey": "b"}))
    newrelic = provider_for(ProviderConfig("newrelic", credentials={"apiKey": "k", "accountId": "1"}))
    china = provider_for(ProviderConfig("cloudwatch", region="cn-north-1",
                                        credentials={"accessKeyId": "a", "secretAccessKey": "s"}))
    assert isinstance(datadog, DatadogProvider)
    assert datadog.url == "https://api.datadoghq.com"
    assert isinstance(newrelic, NewRelicProvider)
    assert newrelic.url == "https://api.newrelic.com/graphql"
    assert isinstance(china, CloudWatchProvider)
    assert china.url == "https://monitoring.cn-north-1.amazonaws.com.cn"


def test_an_unknown_type_names_the_field_and_the_known_types() -> None:
    with pytest.raises(UnknownProvider) as error:
        provider_for(ProviderConfig("stackdriver", "https://monitoring.googleapis.com"), field=FIELD)
    assert str(error.value) == (f'{FIELD}.type: unknown metric provider "stackdriver"; '
                                "known: cloudwatch, datadog, graphite, influxdb, newrelic, prometheus, web")
    assert isinstance(error.value, AnalysisSpecError)


def test_datadog_without_its_keys_names_the_secret_ref_and_the_keys() -> None:
    with pytest.raises(CredentialsError) as error:
        provider_for(ProviderConfig("datadog", credentials={"apiKey": "a"}))
    assert str(error.value) == ("spec.provider.secretRef: datadog needs keys apiKey and applicationKey "
                                "(or datadog_api_key and datadog_application_key)")


def test_datadog_takes_a_secret_written_for_flagger() -> None:
    config = ProviderConfig("datadog", credentials={"datadog_api_key": "a", "datadog_application_key": "b"})
    assert isinstance(provider_for(config), DatadogProvider)


@pytest.mark.parametrize(("config", "message"), [
    (ProviderConfig("newrelic", credentials={"apiKey": "k"}),
     f"{FIELD}.secretRef: newrelic needs keys apiKey and accountId"),
    (ProviderConfig("newrelic", credentials={"apiKey": "k", "accountId": "acme"}),
     f"{FIELD}.secretRef: newrelic's accountId must be a number, got 'acme'"),
    (ProviderConfig("cloudwatch", region="us-east-1"),
     f"{FIELD}.secretRef: cloudwatch needs keys accessKeyId and secretAccessKey"),
    (ProviderConfig("prometheus", "http://prometheus", credentials={"user": "u"}),
     f"{FIELD}.secretRef: prometheus needs key token, or keys username and password; the Secret has user"),
])
def test_missing_or_unusable_credentials_name_the_secret_ref(config: ProviderConfig, message: str) -> None:
    with pytest.raises(CredentialsError) as error:
        provider_for(config, field=FIELD)
    assert str(error.value) == message


@pytest.mark.parametrize(("config", "message"), [
    (ProviderConfig("prometheus"), f"{FIELD}.address: prometheus needs an address"),
    (ProviderConfig("graphite", ""), f"{FIELD}.address: graphite needs an address"),
    (ProviderConfig("web"), f"{FIELD}.address: web needs an address"),
    (ProviderConfig("cloudwatch", credentials={"accessKeyId": "a", "secretAccessKey": "s"}),
     f"{FIELD}.region: cloudwatch needs a region"),
])
def test_a_missing_address_or_region_names_its_field(config: ProviderConfig, message: str) -> None:
    with pytest.raises(ProviderSpecError) as error:
        provider_for(config, field=FIELD)
    assert str(error.value) == message


def test_a_ca_bundle_that_is_not_pem_is_a_spec_error() -> None:
    with pytest.raises(ProviderSpecError, match=r"spec.provider: the CA bundle is not PEM certificates"):
        provider_for(ProviderConfig("prometheus", "https://prometheus", ca_bundle="not a certificate"))


def test_a_config_hides_secrets_from_its_repr_and_can_key_a_cache() -> None:
    config = ProviderConfig("prometheus", "http://p", headers={"Authorization": "Bearer xyz"},
                            credentials={"password": "hunter2"})
    assert "hunter2" not in repr(config)
    assert "xyz" not in repr(config)
    same = ProviderConfig("prometheus", "http://p", headers={"Authorization": "Bearer xyz"},
                          credentials={"password": "hunter2"})
    rotated = ProviderConfig("prometheus", "http://p", headers={"Authorization": "Bearer xyz"},
                             credentials={"password": "new"})
    cache = {config: 1}
    assert cache.get(same) == 1
    assert rotated not in cache


@pytest.mark.parametrize("build", [lambda: ProviderConfig(timeout=0.0), lambda: ProviderConfig(attempts=0),
                                   lambda: ProviderConfig(window=-1.0)])
def test_a_config_refuses_impossible_time_settings(build: Callable[[], ProviderConfig]) -> None:
    with pytest.raises(ValueError, match="must be"):
        build()

