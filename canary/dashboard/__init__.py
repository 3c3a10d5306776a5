"""The web dashboard: every canary live, one canary's run in charts, and the manual controls.

``canary dashboard`` serves it on loopback with the user's kubeconfig (``serve``); ``canary controller
--dashboard`` serves it read-only on its own port, next to /metrics and /healthz (the CLI hands the
controller ``serve.for_controller``). ``app`` is the Starlette app, ``feed`` turns the Canary watch into
server-sent events, ``views`` and ``charts`` are the pure parts (what a page shows, and its pictures),
``actions`` guards and carries out the controls, ``gitstate`` is the Git sync panel. Nothing here
imports the kubernetes client: the cluster is reached through canary.kube.
"""
