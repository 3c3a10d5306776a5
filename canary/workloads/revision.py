"""The revision of a target: a digest of its pod template and of the configs it tracks.

Equal revisions mean nothing changed that a canary run should judge; status.lastAppliedSpec and
status.lastPromotedSpec hold revisions.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any


def revision(pod_template: Mapping[str, Any], tracked_configs: Mapping[str, str]) -> str:
    """A short stable digest of the pod template plus tracked config checksums."""
    payload = {"template": pod_template, "configs": dict(sorted(tracked_configs.items()))}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:16]
