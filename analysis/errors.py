"""The errors of the ``analysis`` package: each one means the spec asks for something that can't be.

All are ValueErrors under one base, so the controller can turn any of them into a
status condition (a permanent error, not retried) with one ``except``::

    ValueError
    └── AnalysisSpecError
        ├── TemplateError      a query placeholder is unknown or its value can't be used there
        ├── UnknownMetric      no built-in metric of that name for that provider
        └── UnknownProvider    no metric provider of that kind
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
