"""The metric provider registry: a ``ProviderConfig``'s ``type`` to a provider instance.

The controller's metric check calls ``provider_for`` with a config built from a MetricTemplate's
``spec.provider`` and its Secret (or from the canary's ``metricsServer``). Adding a back end is
one module in this package, with a ``from_config``, and one line in ``_FACTORIES``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from analysis.errors import UnknownProvider
from analysis.providers import cloudwatch, datadog, graphite, influxdb, newrelic, prometheus, web
from analysis.providers.base import MetricProvider
from analysis.providers.config import ProviderConfig


class _Factory(Protocol):
    def __call__(self, config: ProviderConfig, /, *, field: str) -> MetricProvider: ...


_FACTORIES: Mapping[str, _Factory] = {
    "prometheus": prometheus.from_config,
    "graphite": graphite.from_config,
    "influxdb": influxdb.from_config,
    "datadog": datadog.from_config,
    "newrelic": newrelic.from_config,
    "cloudwatch": cloudwatch.from_config,
    "web": web.from_config,
}

KNOWN_TYPES = tuple(sorted(_FACTORIES))


def provider_for(config: ProviderConfig, *, field: str = "spec.provider") -> MetricProvider:
    """The provider that ``config`` describes.

    ``field`` is the path of the provider spec, such as ``MetricTemplate test/latency:
    spec.provider``; errors name the field under it (``.type``, ``.address``, ``.secretRef``).
    Raises ``UnknownProvider`` for an unregistered type and ``ProviderSpecError`` (or its
    ``CredentialsError``) when the spec or its Secret lacks what the type needs.
    """
    factory = _FACTORIES.get(config.type)
    if factory is None:
        raise UnknownProvider(f'{field}.type: unknown metric provider "{config.type}"; known: {", ".join(KNOWN_TYPES)}')
    return factory(config, field=field)
