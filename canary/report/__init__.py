"""``canary report``: a picture of one run of a canary, from its status.timeline.

``series`` turns the timeline into the data of the picture (pure, and what the tests check),
``prometheus`` adds each metric's Prometheus series over the run, and ``draw`` renders it with
matplotlib, imported only when a picture is drawn. Called by the CLI and by ``canary demo``.
"""
