"""The apex, primary and canary Services of a canary (every router builds on them).

``<svc>`` and ``<svc>-primary`` select the primary's pods, ``<svc>-canary`` the target's pods;
with the kubernetes router this alone is blue/green: the apex always serves the primary. With
spec.service.portDiscovery every other port of the target's containers (mesh proxies aside) is
added to the three Services, as Flagger does for every provider.
"""

from __future__ import annotations

from canary.defaults import FIELD_MANAGER
from canary.kube import Obj
from canary.kube.apply import apply_if_changed
from canary.kube.cache import Informer
from canary.kube.client import Kube
from canary.models.canary import Canary
from canary.routers.base import RouteTarget, Watch

KIND = ("v1", "Service")
WATCH = Watch(*KIND)
SIDECARS = frozenset({"istio-proxy", "envoy"})
"""Containers whose ports are a mesh's, not the application's."""


def discovered_ports(canary: Canary, pod_spec: Obj) -> tuple[tuple[str, int], ...]:
    """The container ports that spec.service.portDiscovery adds: all but the canary's own port (or
    targetPort) and the mesh proxies', named as the container names them (``tcp-<container>-<i>`` when not)."""
    service = canary.spec.service
    if not service.port_discovery:
        return ()
    found: dict[str, int] = {}
    for container in pod_spec.get("containers") or []:
        if container.get("name") in SIDECARS:
            continue
        for index, port in enumerate(container.get("ports") or []):
            number = int(port.get("containerPort") or 0)
            target = service.target_port if service.target_port is not None else service.port
            if number == target or port.get("name") == target:
                continue
            found[str(port.get("name") or f"tcp-{container.get('name')}-{index}")] = number
    return tuple(sorted(found.items()))


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
            "spec": {"type": "ClusterIP", "selector": {key: selects},
                     "ports": [service_port(route), *({"name": port_name, "port": number, "protocol": "TCP",
                                                        "targetPort": number} for port_name, number in route.ports)]},
        }
        if spec.service.headless and role != "apex":
            body["spec"]["clusterIP"] = "None"
        if spec.service.traffic_distribution:
            body["spec"]["trafficDistribution"] = spec.service.traffic_distribution
        services.append(body)
    return services


def reconcile(kube: Kube, cache: Informer, route: RouteTarget) -> None:
    """Create or correct the three Services, taking over one that exists already (the user's apex Service)."""
    for body in build(route):
        _take_over(kube, cache, body)
        apply_if_changed(kube, cache, body, field_manager=FIELD_MANAGER)


def _port_keys(ports: list[Obj]) -> set[tuple[int, str]]:
    return {(int(p.get("port") or 0), str(p.get("protocol") or "TCP")) for p in ports}


def _take_over(kube: Kube, cache: Informer, body: Obj) -> None:
    """Replace the ports and selector of an existing Service that has others than ours.

    Server-side apply merges a Service's ports by port number and keeps those another manager
    set (the user's ``kubectl apply``), so the user's port would stay beside ours, or clash with
    it by name; Flagger replaces them. A merge patch replaces the list whole, and the apply
    that follows then owns what is left.
    """
    meta = body["metadata"]
    current = cache.peek(meta["namespace"], meta["name"])
    if current is None:
        return
    spec = current.get("spec") or {}
    wanted = body["spec"]
    if _port_keys(spec.get("ports") or []) == _port_keys(wanted["ports"]) and \
            set(spec.get("selector") or {}) <= set(wanted["selector"]):
        return
    selector = {**{key: None for key in spec.get("selector") or {}}, **wanted["selector"]}
    cache.store(kube.merge_patch("v1", "Service", meta["name"], {"spec": {"ports": wanted["ports"],
                                                                          "selector": selector}},
                                 namespace=meta["namespace"]))


def release_apex(kube: Kube, cache: Informer, route: RouteTarget) -> None:
    """Point the apex Service at the target's pods and stop owning it, so it outlives the Canary."""
    key, value = route.selector
    apex = next(body for body in build(route) if body["metadata"]["name"] == route.canary.spec.service_names[0])
    apex["metadata"].pop("ownerReferences")
    apex["spec"]["selector"] = {key: value}
    apply_if_changed(kube, cache, apex, field_manager=FIELD_MANAGER)
