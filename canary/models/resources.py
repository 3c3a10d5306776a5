"""MetricTemplate and AlertProvider: Flagger's resources of the same names, in ``canary.dev``."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from canary.models.base import HttpURL, Model, ProxyURL
from canary.models.canary import ObjectMeta

# Only the providers analysis/providers implements: Flagger's stackdriver, dynatrace, keptn and splunk
# are refused by the API server, naming spec.provider.type, rather than failing at release time.
MetricProviderType = Literal["prometheus", "datadog", "cloudwatch", "newrelic", "graphite", "influxdb", "web"]


class SecretReference(Model):
    """A Secret in the same namespace as the referring object."""

    name: Annotated[str, Field(min_length=1)]


class MetricTemplateProvider(Model):
    """Which metric back end runs the template's query, and how to reach it."""

    type: MetricProviderType = "prometheus"
    address: HttpURL | None = None
    headers: dict[str, list[str]] | None = None
    secret_ref: SecretReference | None = None
    region: str | None = None
    insecure_skip_verify: bool = False


class MetricTemplateSpec(Model):
    """A query with ``{{ ... }}`` placeholders, run at every analysis step."""

    provider: MetricTemplateProvider = MetricTemplateProvider()
    query: Annotated[str, Field(min_length=1)]


class MetricTemplate(Model):
    """A MetricTemplate object as stored in the cluster."""

    api_version: Literal["canary.dev/v1alpha1"] = "canary.dev/v1alpha1"
    kind: Literal["MetricTemplate"] = "MetricTemplate"
    metadata: ObjectMeta
    spec: MetricTemplateSpec


class AlertProviderSpec(Model):
    """A chat or webhook destination for alerts."""

    type: Literal["slack", "msteams", "discord", "rocket", "gchat", "generic"]
    channel: str | None = None
    username: str | None = None
    address: HttpURL | None = None
    proxy: ProxyURL | None = None
    secret_ref: SecretReference | None = None


class AlertProvider(Model):
    """An AlertProvider object as stored in the cluster."""

    api_version: Literal["canary.dev/v1alpha1"] = "canary.dev/v1alpha1"
    kind: Literal["AlertProvider"] = "AlertProvider"
    metadata: ObjectMeta
    spec: AlertProviderSpec
