"""The metric provider registry: a MetricTemplate's ``spec.provider.type`` to a provider instance.

The controller's metric check calls ``provider_for`` with the template's (or the canary's
``metricsServer``) address and headers. Adding a back end is one module in this package and
one line in ``_FACTORIES``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from analysis.errors import UnknownProvider
from analysis.providers.base import MetricProvider
from analysis.providers.prometheus import PrometheusProvider


class _Factory(Protocol):
    def __call__(self, address: str, /, *, timeout: float, headers: dict[str, str] | None) -> MetricProvider: ...


_FACTORIES: Mapping[str, _Factory] = {
    "prometheus": PrometheusProvider,
}


def provider_for(kind: str, *, address: str, headers: Mapping[str, str] | None = None, timeout: float = 5.0,
                 field: str = "spec.provider.type") -> MetricProvider:
    """A provider of ``kind`` at ``address``; ``field`` is where ``kind`` came from, for the error."""
    factory = _FACTORIES.get(kind)
    if factory is None:
        raise UnknownProvider(f'{field}: unknown metric provider "{kind}"; known: {", ".join(sorted(_FACTORIES))}')
    return factory(address, timeout=timeout, headers=None if headers is None else dict(headers))
