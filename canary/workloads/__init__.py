"""Targets and what is generated for them: primary copies, tracked configs, readiness, revisions.

The modules here hold pure builders and checks over plain dicts; ``deployments`` is the one that
reads and writes through ``canary.kube``.
"""
