"""The errors of the ``analysis`` package: each one means the spec asks for something that can't be.

All are ValueErrors under one base, so the controller can turn any of them into a
status condition (a permanent error, not retried) with one ``except``::

    ValueError
    └── AnalysisSpecError
        ├── TemplateError          a query placeholder is unknown or its value can't be used there
        ├── UnknownMetric          no built-in metric of that name for that provider
        ├── UnknownProvider        no metric provider of that kind
        └── ProviderSpecError      a provider spec lacks what its type needs (address, region) or is malformed
            └── CredentialsError   the provider's Secret lacks keys it needs, or holds unusable values

Messages start with the field they are about (``spec.provider.secretRef: ...``), prefixed with
whatever the caller passed as the field's path.
"""

from __future__ import annotations


class AnalysisSpecError(ValueError):
    """The analysis part of a spec can't be carried out as written."""


class TemplateError(AnalysisSpecError):
    """A query template names an unknown placeholder, or a value that would change the query's meaning."""


class UnknownMetric(AnalysisSpecError):
    """A built-in metric was asked for that doesn't exist for the provider."""


class UnknownProvider(AnalysisSpecError):
    """A metric provider kind that isn't registered."""


class ProviderSpecError(AnalysisSpecError):
    """A provider spec lacks a field its type needs (an address, a region) or holds an unusable one."""


class CredentialsError(ProviderSpecError):
    """The provider's Secret lacks keys the provider needs, or a key's value can't be used."""
