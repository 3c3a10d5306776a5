"""Pydantic models of our custom resources (spec and status), and their CRDs.

The models are the single source of truth: manifests/crds/ is generated from them
(``canary.models.crds``), and a test fails when the two drift apart.
"""
