"""The apex, primary and canary Services of a canary (every router builds on them).

``<svc>`` and ``<svc>-primary`` select the primary's pods, ``<svc>-canary`` the target's pods;
with the kubernetes router this alone is blue/green: the apex always serves the primary.
"""

from __future__ import annotations

from canary.defaults import FIELD_MANAGER
from canary.kube import Obj
from canary.kube.apply import apply_if_changed
from canary.kube.cache import Informer
from canary.kube.client import Kube
from canary.routers.base import RouteTarget, Watch

KIND = ("v1", "Service")
WATCH = Watch(*KIND)


def service_port(route: RouteTarget) -> Obj:
    """The Service port of a canary's spec.service."""
    service = route.canary.spec.service
    port: Obj = {"name": service.port_name or "http", "port": service.port, "protocol": "TCP",
                 "targetPort": service.target_port if service.target_port is not None else service.port}
    if service.app_protocol:
        port["appProtocol"] = service.app_protocol
    return port


def build(route: RouteTarget) -> list[Obj]:
    """The three Services, owned by the Canary."""
    key, value = route.selector
    spec = route.canary.spec
    apex, primary, canary = spec.service_names
    metadata = {"apex": spec.service.apex, "primary": spec.service.primary, "canary": spec.service.canary}
    selected = {apex: ("apex", f"{value}-primary"), primary: ("primary", f"{value}-primary"),
                canary: ("canary", value)}
    services = []
    for name, (role, selects) in selected.items():
        extra = metadata[role]
        body: Obj = {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": name, "namespace": route.namespace, "ownerReferences": [route.owner],
                         "labels": {key: name, **((extra.labels or {}) if extra else {})},
                         "annotations": dict((extra.annotations or {}) if extra else {})},
            "spec": {"type": "ClusterIP", "selector": {key: selects}, "ports": [service_port(route)]},
        }
        if spec.service.headless and role != "apex":
            body["spec"]["clusterIP"] = "None"
        if spec.service.traffic_distribution:
            body["spec"]["trafficDistribution"] = spec.service.traffic_distribution
        services.append(body)
    return services


def reconcile(kube: Kube, cache: Informer, route: RouteTarget) -> None:
    """Create or correct the three Services."""
    for body in build(route):
        apply_if_changed(kube, cache, body, field_manager=FIELD_MANAGER)


def release_apex(kube: Kube, cache: Informer, route: RouteTarget) -> None:
    """Point the apex Service at the target's pods and stop owning it, so it outlives the Canary."""
    key, value = route.selector
    apex = next(body for body in build(route) if body["metadata"]["name"] == route.canary.spec.service_names[0])
    apex["metadata"].pop("ownerReferences")
    apex["spec"]["selector"] = {key: value}
    apply_if_changed(kube, cache, apex, field_manager=FIELD_MANAGER)
