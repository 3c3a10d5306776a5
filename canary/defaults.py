"""Names and defaults that several packages share, each defined once.

The controller's own namespace holds its leader Lease and the Git sync's state; the field
manager names the controller's writes (server-side apply and merge patches alike), so that
``kubectl`` users and the Git sync can tell them apart.
"""

from __future__ import annotations

CONTROLLER_NAMESPACE = "canary-system"
CONTROLLER_NAME = "canary-controller"
"""Who the controller is to the cluster: field manager, Event source, leader Lease, managed-by label."""
FIELD_MANAGER = CONTROLLER_NAME
GIT_BRANCH = "main"
