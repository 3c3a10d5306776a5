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

SHARD_LABEL = "canary.dev/shard"
"""A Canary (or an annotated Deployment) with this label is handled by the controller started with
``--shard <value>``; one without it by the controller started without ``--shard``."""


def shard_selector(shard: str | None) -> str:
    """The label selector of the Canaries the controller of ``shard`` (None: unsharded) handles."""
    return f"{SHARD_LABEL}={shard}" if shard else f"!{SHARD_LABEL}"


def in_shard(labels: dict[str, str] | None, shard: str | None) -> bool:
    """Whether an object with ``labels`` belongs to ``shard`` (None: unsharded)."""
    return (labels or {}).get(SHARD_LABEL) == shard
