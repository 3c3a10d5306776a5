"""canary-delivery: progressive delivery for Kubernetes.

The controller application lives in the sub-packages; ``canary.cli`` is the composition root
and the entry point of the ``canary`` command.
"""

__version__ = "0.1.0"
