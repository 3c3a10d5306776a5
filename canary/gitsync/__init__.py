"""The embedded Git sync: fetch a commit (source), render its manifests (render) and apply them (apply).

The controller's sync loop and the ``canary sync`` command call into these modules.
"""
