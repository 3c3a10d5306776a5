"""Kubernetes Events about our objects (``kubectl describe`` and ``kubectl get events`` show them)."""

from __future__ import annotations

import datetime as dt
import os
from typing import Any

import structlog

from canary.defaults import CONTROLLER_NAME
from canary.errors import CanaryError
from canary.kube.client import Kube

log = structlog.get_logger(__name__)
COMPONENT = CONTROLLER_NAME


class EventRecorder:
    """Creates core/v1 Events; a failure to record is logged, never raised."""

    def __init__(self, kube: Kube) -> None:
        self._kube = kube

    def record(self, obj: dict[str, Any], *, reason: str, message: str, warning: bool = False) -> None:
        """Attach an Event to ``obj``."""
        meta = obj["metadata"]
        now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": f"{meta['name']}.{os.urandom(6).hex()}", "namespace": meta["namespace"]},
            "involvedObject": {"apiVersion": obj["apiVersion"], "kind": obj["kind"], "name": meta["name"],
                               "namespace": meta["namespace"], "uid": meta.get("uid"),
                               "resourceVersion": meta.get("resourceVersion")},
            "reason": reason,
            "message": message[:1024],
            "type": "Warning" if warning else "Normal",
            "source": {"component": COMPONENT},
            "reportingComponent": COMPONENT,
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        }
        try:
            self._kube.create(event)
        except CanaryError as exc:
            log.warning("event not recorded", reason=reason, error=str(exc))
