"""Metric providers: one module per back end, each answering a query with a ``QueryResult``."""
