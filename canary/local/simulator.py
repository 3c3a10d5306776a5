"""The local stack's traffic simulator: request metrics in a real mesh's shape, for the demo and the tests.

``canary.local.stack`` starts it as ``python -m canary.local.simulator --kubeconfig PATH --port PORT``
and has Prometheus scrape it as job ``simulator``. Kwok's pods run no process, so nothing would
ever answer a request; instead, every period this process reads each Canary, its target and
primary Deployments, their pods and the weights its router holds (read by the router's own
``read_weights``, as the controller reads them), and counts the requests those workloads would
have served at a steady total rate. It reads from watch-backed caches (``canary.local.watched``),
so its API requests do not grow with the number of canaries; its User-Agent is ``USER_AGENT``.

- with weights, the rate is split by them (primary ``rate * w/100``, canary likewise), and the
  canary also receives the mirrored share (``rate * mirror/100``), counted as its destination
  proxy counts mirrored requests (nobody sees those answers);
- without (the kubernetes router), or when they send the target nothing while it runs (a
  blue/green run before its switch), the primary gets the whole rate and the target, while it
  has ready pods, a test load of ``rate / 2``, as Flagger's load tester would send to the canary
  Service;
- a workload without ready pods gets nothing.

How a workload answers comes from its pod template annotations: ``sim.canary.dev/error-rate``
(percent of requests answered 500, default 0) and ``sim.canary.dev/latency-ms`` (default 20).
Counts are deterministic: fractions of requests and of errors carry over between periods, so
exactly error-rate percent fail over time. The metrics, on ``/metrics`` (and ``/healthz``):

- ``istio_requests_total`` and ``istio_request_duration_milliseconds`` labelled
  ``reporter="destination"``, ``destination_workload``, ``destination_workload_namespace``,
  ``response_code`` (what Flagger's istio queries read);
- ``http_request_duration_seconds`` labelled ``kubernetes_namespace``, ``kubernetes_pod_name``,
  ``status``, spread over the ready pods (what its kubernetes and gatewayapi queries read);
- for canaries routed by ingress-nginx, ``nginx_ingress_controller_requests`` and
  ``nginx_ingress_controller_response_duration_seconds`` labelled ``namespace``, ``ingress`` (the
  ingressRef) and ``canary`` (the canary backend for requests the canary Ingress sent, empty for
  the rest), ``status`` (what its nginx queries read). The requests series is a gauge that only
  grows: prometheus_client would add ``_total`` to a counter's name, which ingress-nginx's has not;
- for canaries routed by Contour, Gloo or Kuma, Envoy's ``envoy_cluster_upstream_rq`` (a growing
  gauge, for the same reason) and ``envoy_cluster_upstream_rq_time`` labelled ``envoy_cluster_name``,
  ``envoy_response_code`` and ``service``: Contour's cluster is ``<namespace>_<service>_<port>``,
  Gloo's ``<upstream>_<namespace>`` (its upstreams ``<namespace>-<svc>-{primary,canary}upstream-<port>``),
  both with ``service`` empty; Kuma's proxy counts its inbound cluster ``localhost:<port>`` with
  ``service`` its Kuma service ``<service>_<namespace>_svc_<port>`` (what their queries read);
- for canaries routed by Traefik, ``traefik_service_request_duration_seconds`` labelled
  ``service`` (``<namespace>-<service>-<port>@kubernetescrd``) and ``code`` (its traefik queries);
- for canaries routed by Skipper, ``skipper_response_duration_seconds`` and
  ``skipper_serve_route_duration_seconds`` labelled ``code``, ``method`` and ``route``, the id
  Skipper gives the route that carried the request (``kube_<namespace>__<ingress>__<host>__<path>__<service>``;
  its skipper queries select the canary Ingress's routes to the canary Service by that id);
- for canaries in Linkerd (the linkerd router, or gatewayapi with a Service as the route's parent,
  as Flagger's Linkerd install runs), its proxies' ``response_total`` and ``response_latency_ms``
  labelled ``namespace``, ``deployment``, ``direction="inbound"``, ``status_code`` and, on the
  counter, ``classification`` (``success``, or ``failure`` for a 5xx) (its linkerd queries);
- for canaries routed by APISIX, its prometheus plugin's ``apisix_http_status`` (a growing gauge)
  labelled ``code``, ``route`` (``<namespace>_<ApisixRoute>_<http route>``, the canary route's, which
  carries primary and canary requests alike) and ``node`` (the backend Service), and
  ``apisix_http_latency`` (ms) labelled ``type="request"``, ``route`` and ``node`` (its apisix queries).
"""

from __future__ import annotations

import argparse
import contextlib
import math
import signal
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import structlog
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, make_wsgi_app
from pydantic import ValidationError

from canary import __version__, logging
from canary.errors import PermanentError
from canary.kube import Obj
from canary.kube.client import Kube
from canary.kube.conditions import is_true
from canary.local.watched import WatchedCluster
from canary.models.base import API_VERSION as CANARY_API_VERSION
from canary.models.canary import Canary
from canary.routers import apisix, gloo, kuma, skipper
from canary.routers import registry as routers
from canary.routers.base import Weights
from canary.telemetry.server import HttpServer

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]

USER_AGENT = f"canary-simulator/{__version__}"
"""How the simulator's requests are told from the controllers' (in kube-apiserver's audit log, say)."""
ERROR_RATE = "sim.canary.dev/error-rate"
LATENCY_MS = "sim.canary.dev/latency-ms"
DEFAULT_LATENCY_MS = 20.0
TEST_LOAD_SHARE = 0.5
# Each request's latency is the declared one times the next of these, so histograms have a spread
# (a P99 between buckets) while every run produces the same numbers.
LATENCY_FACTORS = (1.0, 1.05, 1.1, 1.05, 1.0, 0.95, 0.9, 0.95)
ISTIO_BUCKETS_MS = (1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000)
LINKERD_BUCKETS_MS = (1, 2, 3, 4, 5, 10, 20, 30, 40, 50, 100, 200, 300, 400, 500, 1000, 2000, 3000, 4000, 5000,
                      10000, 20000, 30000, 40000, 50000)
POD_BUCKETS_SECONDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
# Sums of float shares (0.2 + 0.2 + ... ) land a hair below the whole number they mean.
_EPSILON = 1e-9

log = structlog.get_logger("canary.local.simulator")


@dataclass(frozen=True)
class Behaviour:
    """How a workload answers, from its pod template annotations."""

    error_rate: float = 0.0
    latency_ms: float = DEFAULT_LATENCY_MS


def behaviour_of(annotations: Mapping[str, str] | None, *, where: str) -> Behaviour:
    """The behaviour the ``sim.canary.dev/`` annotations declare; ``where`` names the object for errors."""
    found = annotations or {}
    error_rate = _number(found, ERROR_RATE, default=0.0, where=where)
    latency_ms = _number(found, LATENCY_MS, default=DEFAULT_LATENCY_MS, where=where)
    if not 0 <= error_rate <= 100:
        raise PermanentError(f"{where}: annotation {ERROR_RATE} must be between 0 and 100, got {found[ERROR_RATE]!r}")
    if latency_ms < 0:
        raise PermanentError(f"{where}: annotation {LATENCY_MS} must not be negative, got {found[LATENCY_MS]!r}")
    return Behaviour(error_rate=error_rate, latency_ms=latency_ms)


def _number(annotations: Mapping[str, str], key: str, *, default: float, where: str) -> float:
    if key not in annotations:
        return default
    try:
        value = float(annotations[key])
    except ValueError:
        raise PermanentError(f"{where}: annotation {key} must be a number, got {annotations[key]!r}") from None
    if not math.isfinite(value):
        raise PermanentError(f"{where}: annotation {key} must be a finite number, got {annotations[key]!r}")
    return value


@dataclass(frozen=True)
class Load:
    """Requests per second sent to the primary and to the canary (target) workload."""

    primary: float
    canary: float


def split_load(rate: float, *, weights: Weights | None, canary_ready: bool) -> Load:
    """Split ``rate`` by the router's weights; when they send the running canary nothing (no weights, or
    a blue/green run before its switch), add the load tester's traffic to the canary Service."""
    tester = rate * TEST_LOAD_SHARE if canary_ready else 0.0
    if weights is None:
        return Load(primary=rate, canary=tester)
    # Mirrored copies reach the canary on top of its share; their answers go nowhere.
    canary = rate * (weights.canary + weights.mirror) / 100
    return Load(primary=rate * weights.primary / 100, canary=canary or tester)


def ready_pods(pods: Iterable[Obj], deployment: str) -> tuple[str, ...]:
    """Names of the Ready pods of the Deployment or DaemonSet ``deployment``, sorted.

    A pod belongs to a Deployment when its controlling ReplicaSet is
    ``<deployment>-<pod-template-hash>``, and to a DaemonSet when that controls it, which tells
    ``web``'s pods from ``web-primary``'s whatever their labels.
    """
    names = []
    for pod in pods:
        meta = pod.get("metadata") or {}
        template_hash = (meta.get("labels") or {}).get("pod-template-hash")
        controllers = {(ref.get("kind"), ref.get("name")) for ref in meta.get("ownerReferences") or []
                       if ref.get("controller")}
        owned = ("DaemonSet", deployment) in controllers or (
            template_hash is not None and ("ReplicaSet", f"{deployment}-{template_hash}") in controllers)
        if owned and not meta.get("deletionTimestamp") and is_true(pod, "Ready"):
            names.append(str(meta["name"]))
    return tuple(sorted(names))


@dataclass(frozen=True)
class Workload:
    """One Deployment to simulate in a period: where it runs, how it answers, what it receives."""

    namespace: str
    name: str
    pods: tuple[str, ...]
    behaviour: Behaviour
    rps: float
    ingress: str = ""
    """The Ingress in front of the workload (nginx canaries), for ingress-nginx's series."""
    canary_backend: str = ""
    """ingress-nginx's ``canary`` label: the canary upstream for the canary workload, else empty."""
    envoy_cluster: str = ""
    """Envoy's cluster of the workload's Service (Contour and Gloo canaries; Kuma's inbound), for Envoy's series."""
    kuma_service: str = ""
    """The Kuma service of the workload's proxy (Kuma canaries), Envoy's series' ``service`` label."""
    traefik_service: str = ""
    """Traefik's name of the workload's Service (Traefik canaries), for Traefik's series."""
    skipper_route: str = ""
    """The id of Skipper's route that carries the workload's requests (Skipper canaries), for Skipper's series."""
    linkerd: bool = False
    """Whether Linkerd's proxy counts the workload's requests (Linkerd canaries), for Linkerd's series."""
    apisix_route: str = ""
    """The APISIX route that carries the workload's requests (APISIX canaries), for APISIX's series."""
    apisix_node: str = ""
    """APISIX's upstream node of the workload: its primary or canary Service (APISIX canaries)."""

    @property
    def key(self) -> tuple[str, str]:
        """(namespace, name), which identifies the workload across periods."""
        return self.namespace, self.name


def plan(canary: Canary, *, target: Obj | None, primary: Obj | None, pods: Sequence[Obj], weights: Weights | None,
         rate: float, skipper_routes: Mapping[str, str] | None = None, apisix_route: str = "") -> list[Workload]:
    """The workloads of one canary and the load each receives; a Deployment that is missing is left out.

    ``skipper_routes`` maps the primary and canary Services to the ids of Skipper's routes to them;
    ``apisix_route`` is the name APISIX gives the canary route.

    Raises ``PermanentError`` for an annotation that cannot be read.
    """
    namespace = canary.metadata.namespace or "default"
    where = f"Canary {namespace}/{canary.metadata.name}"
    target_pods = ready_pods(pods, canary.spec.target_ref.name) if target is not None else ()
    load = split_load(rate, weights=weights, canary_ready=bool(target_pods))
    router = (canary.spec.provider or "").partition(":")[0]
    ingress = canary.spec.ingress_ref.name if canary.spec.ingress_ref and router == "nginx" else ""
    _, primary_service, canary_service = canary.spec.service_names
    port = canary.spec.service.port
    upstream = f"{namespace}-{canary_service}-{port}" if ingress else ""
    envoy = {"contour": [f"{namespace}_{s}_{port}" for s in (primary_service, canary_service)],
             "gloo": [f"{u}_{namespace}" for u in gloo.upstream_names(canary)],
             "kuma": [f"localhost:{port}"] * 2}.get(router, ["", ""])
    kuma_services = kuma.kuma_services(canary)[1:] if router == "kuma" else ("", "")
    # Linkerd proxies count requests whichever router splits them: the SMI TrafficSplit, or an
    # HTTPRoute whose parent is a Service (Gateway API in the mesh, as Flagger's Linkerd install runs it).
    linkerd = router == "linkerd" or (router == "gatewayapi" and any(
        (ref.kind or "") == "Service" for ref in canary.spec.service.gateway_refs or []))
    workloads = []
    for deployment, rps, backend, service, cluster, kuma_service in (
            (primary, load.primary, "", primary_service, envoy[0], kuma_services[0]),
            (target, load.canary, upstream, canary_service, envoy[1], kuma_services[1])):
        if deployment is None:
            continue
        name = str(deployment["metadata"]["name"])
        template = deployment.get("spec", {}).get("template", {}).get("metadata") or {}
        behaviour = behaviour_of(template.get("annotations"), where=f"{where}: Deployment {name}")
        workloads.append(Workload(namespace=namespace, name=name, pods=ready_pods(pods, name), behaviour=behaviour,
                                  rps=rps, ingress=ingress, canary_backend=backend,
                                  envoy_cluster=cluster, kuma_service=kuma_service,
                                  traefik_service=f"{namespace}-{service}-{port}@kubernetescrd"
                                  if router == "traefik" else "",
                                  skipper_route=(skipper_routes or {}).get(service, ""), linkerd=linkerd,
                                  apisix_route=apisix_route, apisix_node=service if apisix_route else ""))
    return workloads


@dataclass(frozen=True)
class Request:
    """One simulated request: the pod that answered, its status code and its latency."""

    pod: str
    code: int
    latency_ms: float


class WorkloadTraffic:
    """The requests of one workload, period after period, with every fraction carried over.

    Requests go round-robin over the ready pods. Each pod fails whenever its accumulated share of
    errors reaches a whole request, so errors are spread evenly over time and over the pods, and
    every pod fails exactly error-rate percent of its requests in the long run.
    """

    def __init__(self) -> None:
        self._requests = 0.0
        self._errors: dict[str, float] = {}
        self._sent = 0

    def step(self, *, rps: float, seconds: float, behaviour: Behaviour, pods: Sequence[str]) -> list[Request]:
        """The requests of the next ``seconds`` at ``rps``; none when no pod is ready."""
        if not pods:
            return []
        self._requests += rps * seconds
        count = math.floor(self._requests + _EPSILON)
        self._requests -= count
        self._errors = {pod: self._errors.get(pod, 0.0) for pod in pods}
        requests = []
        for _ in range(count):
            pod = pods[self._sent % len(pods)]
            self._errors[pod] += behaviour.error_rate / 100
            failed = self._errors[pod] >= 1 - _EPSILON
            if failed:
                self._errors[pod] -= 1
            factor = LATENCY_FACTORS[self._sent % len(LATENCY_FACTORS)]
            requests.append(Request(pod=pod, code=500 if failed else 200, latency_ms=behaviour.latency_ms * factor))
            self._sent += 1
        return requests


class Exporter:
    """The simulator's metrics in ``registry``; series of workloads and pods that went away are removed."""

    def __init__(self, registry: CollectorRegistry) -> None:
        istio_labels = ["reporter", "destination_workload", "destination_workload_namespace", "response_code"]
        self._istio_total = Counter("istio_requests", "Requests, as Istio's destination proxy counts them.",
                                    istio_labels, registry=registry)
        self._istio_duration = Histogram("istio_request_duration_milliseconds", "Request duration, Istio's histogram.",
                                         istio_labels, buckets=ISTIO_BUCKETS_MS, registry=registry)
        self._pod_duration = Histogram("http_request_duration_seconds", "Request duration, as each pod measures it.",
                                       ["kubernetes_namespace", "kubernetes_pod_name", "status"],
                                       buckets=POD_BUCKETS_SECONDS, registry=registry)
        nginx_labels = ["namespace", "ingress", "canary"]
        self._nginx_total = Gauge("nginx_ingress_controller_requests", "Requests, as ingress-nginx counts them.",
                                  [*nginx_labels, "status"], registry=registry)
        self._nginx_duration = Histogram("nginx_ingress_controller_response_duration_seconds",
                                         "Response time, ingress-nginx's histogram.", nginx_labels,
                                         buckets=POD_BUCKETS_SECONDS, registry=registry)
        self._envoy_total = Gauge("envoy_cluster_upstream_rq", "Requests, as Envoy counts them per cluster.",
                                  ["envoy_cluster_name", "envoy_response_code", "service"], registry=registry)
        self._envoy_duration = Histogram("envoy_cluster_upstream_rq_time", "Request time in ms, Envoy's histogram.",
                                         ["envoy_cluster_name", "service"], buckets=ISTIO_BUCKETS_MS, registry=registry)
        self._envoy_series: dict[tuple[str, str], set[tuple[str, str, str]]] = {}
        self._traefik_duration = Histogram("traefik_service_request_duration_seconds",
                                           "Request duration per Traefik service, Traefik's histogram.",
                                           ["service", "code"], buckets=POD_BUCKETS_SECONDS, registry=registry)
        self._traefik_series: dict[tuple[str, str], set[tuple[str, str]]] = {}
        skipper_labels = ["code", "method", "route"]
        self._skipper_response = Histogram("skipper_response_duration_seconds", "Duration of a response, Skipper's.",
                                           skipper_labels, buckets=POD_BUCKETS_SECONDS, registry=registry)
        self._skipper_serve = Histogram("skipper_serve_route_duration_seconds", "Duration of serving a route, "
                                        "Skipper's.", skipper_labels, buckets=POD_BUCKETS_SECONDS, registry=registry)
        self._skipper_series: dict[tuple[str, str], set[tuple[str, str, str]]] = {}
        linkerd_labels = ["namespace", "deployment", "direction", "status_code"]
        self._linkerd_total = Counter("response", "Responses, as Linkerd's proxy counts them.",
                                      [*linkerd_labels, "classification"], registry=registry)
        self._linkerd_latency = Histogram("response_latency_ms", "Response latency in ms, Linkerd's proxy histogram.",
                                          linkerd_labels, buckets=LINKERD_BUCKETS_MS, registry=registry)
        self._linkerd_series: dict[tuple[str, str], set[str]] = {}
        self._apisix_status = Gauge("apisix_http_status", "Requests per route and status, APISIX's prometheus plugin.",
                                    ["code", "route", "node"], registry=registry)
        self._apisix_latency = Histogram("apisix_http_latency", "Request latency in ms, APISIX's histogram.",
                                         ["type", "route", "node"], buckets=ISTIO_BUCKETS_MS, registry=registry)
        self._apisix_series: dict[tuple[str, str], set[tuple[str, str, str]]] = {}
        self._workload_series: dict[tuple[str, str], set[str]] = {}
        self._pod_series: dict[tuple[str, str], set[str]] = {}
        self._nginx_series: dict[tuple[str, str], set[tuple[str, str, str, str]]] = {}

    def record(self, workload: Workload, requests: Iterable[Request]) -> None:
        """Count ``requests`` as answered by ``workload``'s pods."""
        for request in requests:
            code = str(request.code)
            istio = ("destination", workload.name, workload.namespace, code)
            self._istio_total.labels(*istio).inc()
            self._istio_duration.labels(*istio).observe(request.latency_ms)
            self._pod_duration.labels(workload.namespace, request.pod, code).observe(request.latency_ms / 1000)
            if workload.ingress:
                nginx = (workload.namespace, workload.ingress, workload.canary_backend)
                self._nginx_total.labels(*nginx, code).inc()
                self._nginx_duration.labels(*nginx).observe(request.latency_ms / 1000)
                self._nginx_series.setdefault(workload.key, set()).add((*nginx, code))
            if workload.envoy_cluster:
                envoy = (workload.envoy_cluster, workload.kuma_service)
                self._envoy_total.labels(workload.envoy_cluster, code, workload.kuma_service).inc()
                self._envoy_duration.labels(*envoy).observe(request.latency_ms)
                self._envoy_series.setdefault(workload.key, set()).add((*envoy, code))
            if workload.traefik_service:
                self._traefik_duration.labels(workload.traefik_service, code).observe(request.latency_ms / 1000)
                self._traefik_series.setdefault(workload.key, set()).add((workload.traefik_service, code))
            if workload.skipper_route:
                route = (code, "GET", workload.skipper_route)
                self._skipper_response.labels(*route).observe(request.latency_ms / 1000)
                self._skipper_serve.labels(*route).observe(request.latency_ms / 1000)
                self._skipper_series.setdefault(workload.key, set()).add(route)
            if workload.linkerd:
                linkerd = (workload.namespace, workload.name, "inbound", code)
                self._linkerd_total.labels(*linkerd, "failure" if request.code >= 500 else "success").inc()
                self._linkerd_latency.labels(*linkerd).observe(request.latency_ms)
                self._linkerd_series.setdefault(workload.key, set()).add(code)
            if workload.apisix_route:
                apisix_series = (code, workload.apisix_route, workload.apisix_node)
                self._apisix_status.labels(*apisix_series).inc()
                self._apisix_latency.labels("request", *apisix_series[1:]).observe(request.latency_ms)
                self._apisix_series.setdefault(workload.key, set()).add(apisix_series)
            self._workload_series.setdefault(workload.key, set()).add(code)
            self._pod_series.setdefault((workload.namespace, request.pod), set()).add(code)

    def keep_only(self, workloads: Iterable[Workload]) -> None:
        """Remove the series of every workload and pod not in ``workloads`` (deleted, or no longer ready)."""
        current = list(workloads)
        keys = {w.key for w in current}
        pods = {(w.namespace, pod) for w in current for pod in w.pods}
        for (namespace, name) in [k for k in self._workload_series if k not in keys]:
            for code in self._workload_series.pop((namespace, name)):
                self._istio_total.remove("destination", name, namespace, code)
                self._istio_duration.remove("destination", name, namespace, code)
        for key in [k for k in self._nginx_series if k not in keys]:
            for *nginx, code in self._nginx_series.pop(key):
                self._nginx_total.remove(*nginx, code)
                with contextlib.suppress(KeyError):  # shared by the status codes of one workload
                    self._nginx_duration.remove(*nginx)
        for key in [k for k in self._envoy_series if k not in keys]:
            for cluster, service, code in self._envoy_series.pop(key):
                self._envoy_total.remove(cluster, code, service)
                with contextlib.suppress(KeyError):  # shared by the status codes of one workload
                    self._envoy_duration.remove(cluster, service)
        for key in [k for k in self._traefik_series if k not in keys]:
            for service, code in self._traefik_series.pop(key):
                self._traefik_duration.remove(service, code)
        self._keep_only_more_series(keys)
        for (namespace, pod) in [k for k in self._pod_series if k not in pods]:
            for code in self._pod_series.pop((namespace, pod)):
                self._pod_duration.remove(namespace, pod, code)


    def _keep_only_more_series(self, keys: set[tuple[str, str]]) -> None:
        """keep_only for Skipper's, Linkerd's and APISIX's series (apart, to keep keep_only short)."""
        for key in [k for k in self._skipper_series if k not in keys]:
            for route in self._skipper_series.pop(key):
                self._skipper_response.remove(*route)
                self._skipper_serve.remove(*route)
        for (namespace, name) in [k for k in self._linkerd_series if k not in keys]:
            for code in self._linkerd_series.pop((namespace, name)):
                self._linkerd_total.remove(namespace, name, "inbound", code, "failure" if code[0] == "5" else "success")
                self._linkerd_latency.remove(namespace, name, "inbound", code)
        for key in [k for k in self._apisix_series if k not in keys]:
            for status, apisix_route, node in self._apisix_series.pop(key):
                self._apisix_status.remove(status, apisix_route, node)
                with contextlib.suppress(KeyError):  # shared by the status codes of one workload
                    self._apisix_latency.remove("request", apisix_route, node)


class Simulator:
    """Turns each period's workloads into counted requests; knows nothing of the cluster."""

    def __init__(self, exporter: Exporter) -> None:
        self._exporter = exporter
        self._traffic: dict[tuple[str, str], WorkloadTraffic] = {}

    def tick(self, workloads: Sequence[Workload], *, seconds: float) -> None:
        """Count ``seconds`` of traffic for ``workloads``, and forget every workload not among them."""
        self._traffic = {w.key: self._traffic.get(w.key) or WorkloadTraffic() for w in workloads}
        for workload in workloads:
            requests = self._traffic[workload.key].step(rps=workload.rps, seconds=seconds,
                                                        behaviour=workload.behaviour, pods=workload.pods)
            self._exporter.record(workload, requests)
        self._exporter.keep_only(workloads)


class Cluster(Protocol):
    """The reads the simulator makes (``canary.kube.client.Kube`` has them)."""

    def get(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> Obj | None:
        """The object, or None when it does not exist."""
        ...

    def list_objects(
        self, api_version: str, kind: str, *, namespace: str | None = None, label_selector: str | None = None
    ) -> list[Obj]:
        """Every object of a kind, in one namespace or in all."""
        ...


class LogOnce:
    """Logs each distinct problem once, so a broken object does not flood the log every second."""

    def __init__(self) -> None:
        self._seen: set[str] = set()

    def warn(self, message: str) -> None:
        """Log ``message`` as a warning unless it was logged before."""
        if message not in self._seen:
            self._seen.add(message)
            log.warning(message)


def observe(kube: Cluster, *, rate: float, problems: LogOnce) -> list[Workload]:
    """Read every Canary and what it routes to; a canary that cannot be simulated is logged and skipped."""
    try:
        canaries = kube.list_objects(CANARY_API_VERSION, "Canary")
    except PermanentError as exc:
        # Before `canary_crds` or `kubectl apply -f manifests/crds` there is no Canary kind: nothing to do.
        problems.warn(f"no canaries to simulate: {exc}")
        return []
    workloads: list[Workload] = []
    pods = PodsByOwner(kube)
    for obj in canaries:
        meta = obj.get("metadata") or {}
        where = f"Canary {meta.get('namespace')}/{meta.get('name')}"
        try:
            canary = Canary.from_object(obj)
        except ValidationError as exc:
            problems.warn(f"{where} is not simulated: {exc}")
            continue
        if canary.spec.target_ref.kind not in ("Deployment", "DaemonSet"):
            problems.warn(f"{where} is not simulated: spec.targetRef.kind is {canary.spec.target_ref.kind}; "
                          "only Deployments and DaemonSets are")
            continue
        try:
            workloads.extend(_observe_canary(kube, canary, pods=pods, rate=rate, problems=problems))
        except PermanentError as exc:
            problems.warn(f"{where} is not simulated: {exc}")
    return workloads


class PodsByOwner:
    """The pods of each namespace, read once per pass and grouped by the workload that controls them.

    Handing ``plan`` only the pods of a canary's two workloads, instead of every pod of the
    namespace, keeps a pass linear in the number of pods (1000 canaries in one namespace would
    otherwise look at each of their 2000 pods 2000 times); ``ready_pods`` picks from them as before.
    """

    def __init__(self, kube: Cluster) -> None:
        self._kube = kube
        self._namespaces: dict[str, dict[str, list[Obj]]] = {}

    def of(self, namespace: str, workloads: Iterable[str]) -> list[Obj]:
        """The pods of ``namespace`` that a ReplicaSet of, or a DaemonSet named as, one of ``workloads`` controls."""
        if namespace not in self._namespaces:
            grouped: dict[str, list[Obj]] = {}
            for pod in self._kube.list_objects("v1", "Pod", namespace=namespace):
                for owner in _owner_workloads(pod):
                    grouped.setdefault(owner, []).append(pod)
            self._namespaces[namespace] = grouped
        found = self._namespaces[namespace]
        return [pod for name in dict.fromkeys(workloads) for pod in found.get(name, [])]


def _owner_workloads(pod: Obj) -> set[str]:
    """Names of the Deployments (by their ReplicaSets' ``<name>-<pod-template-hash>``) and DaemonSets
    that may control ``pod``; ``ready_pods`` decides."""
    meta = pod.get("metadata") or {}
    template_hash = (meta.get("labels") or {}).get("pod-template-hash")
    names = set()
    for ref in meta.get("ownerReferences") or []:
        if not ref.get("controller"):
            continue
        name = str(ref.get("name") or "")
        if ref.get("kind") == "DaemonSet":
            names.add(name)
        elif ref.get("kind") == "ReplicaSet" and template_hash is not None and name.endswith(f"-{template_hash}"):
            names.add(name.removesuffix(f"-{template_hash}"))
    return names


def _observe_canary(kube: Cluster, canary: Canary, *, pods: PodsByOwner, rate: float,
                    problems: LogOnce) -> list[Workload]:
    namespace = canary.metadata.namespace or "default"
    spec = canary.spec
    kind = spec.target_ref.kind
    target = kube.get("apps/v1", kind, spec.target_ref.name, namespace=namespace)
    primary = kube.get("apps/v1", kind, spec.primary_name, namespace=namespace)
    if target is None and primary is None:
        return []

    def get(api_version: str, kind: str, namespace: str, name: str) -> Obj | None:
        try:
            return kube.get(api_version, kind, name, namespace=namespace)
        except PermanentError as exc:
            problems.warn(f"no {kind} is read (its CRDs are not installed?): {exc}")
            return None

    weights = routers.read_weights(get, canary)
    skipper_routes = skipper.served_routes(get, canary) if spec.provider == "skipper" else {}
    apisix_route = apisix.metric_route(get, canary) if spec.provider == "apisix" else ""
    workload_pods = pods.of(namespace, (spec.target_ref.name, spec.primary_name))
    return plan(canary, target=target, primary=primary, pods=workload_pods, weights=weights, rate=rate,
                skipper_routes=skipper_routes, apisix_route=apisix_route)


def wsgi_app(registry: CollectorRegistry) -> WSGIApp:
    """/metrics from ``registry``, /healthz, and 404 for anything else."""
    metrics = make_wsgi_app(registry)

    def route(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == "/metrics":
            return metrics(environ, start_response)  # type: ignore[no-any-return]
        if path == "/healthz":
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [b"ok\n"]
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found\n"]

    return route


def run(kube: Cluster, simulator: Simulator, *, rate: float, period: float, stop: threading.Event) -> None:
    """Read the cluster and count traffic every ``period`` seconds until ``stop`` is set.

    Reads run in a thread of their own: while the API server does not answer (a restart refuses
    reads, then holds them for seconds) traffic goes on as last read, as a mesh's data plane keeps
    routing on its last configuration."""
    latest: list[list[Workload]] = []
    reader = threading.Thread(target=_read, args=(kube, latest), kwargs={"rate": rate, "period": period, "stop": stop},
                              name="simulator-reads", daemon=True)
    reader.start()
    last = time.monotonic()
    while not stop.wait(period):
        now = time.monotonic()
        # The time that really passed, not ``period``: a late wake-up must not lower the rate Prometheus sees.
        seconds, last = now - last, now
        if latest:
            simulator.tick(latest[-1], seconds=seconds)
    reader.join(timeout=period)


def _read(kube: Cluster, latest: list[list[Workload]], *, rate: float, period: float, stop: threading.Event) -> None:
    """Keep ``latest`` holding the workloads of the last read that succeeded, one read a period."""
    problems = LogOnce()
    while not stop.is_set():
        try:
            latest[:] = [observe(kube, rate=rate, problems=problems)]
        except Exception as exc:  # the API server may be away for a while (a restart): try again next period
            problems.warn(f"cannot read the cluster: {type(exc).__name__}: {exc}")
        stop.wait(period)


def _positive(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


def main(argv: Sequence[str] | None = None) -> None:
    """The command line: serve the metrics and simulate until SIGTERM or SIGINT."""
    parser = argparse.ArgumentParser(prog="python -m canary.local.simulator", description=__doc__.splitlines()[0])
    parser.add_argument("--kubeconfig", type=Path, required=True, help="the cluster to read")
    parser.add_argument("--port", type=int, required=True, help="serve /metrics and /healthz on 127.0.0.1:PORT")
    parser.add_argument("--rate", type=_positive, default=20.0, help="requests per second per canary (default 20)")
    parser.add_argument("--period", type=_positive, default=1.0, help="seconds between reads (default 1)")
    args = parser.parse_args(argv)

    logging.configure()
    registry = CollectorRegistry()
    simulator = Simulator(Exporter(registry))
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    server = HttpServer(args.port, wsgi_app(registry), host="127.0.0.1").start()
    # Missing kinds (routers' CRDs not installed, or installed a moment ago) are looked for at most once a
    # period for all of them: each look is several requests.
    kube = Kube.from_kubeconfig(args.kubeconfig, rediscover_seconds=args.period, user_agent=USER_AGENT)
    cluster = WatchedCluster(kube)
    log.info("simulating traffic", port=server.port, rate=args.rate, period=args.period)
    try:
        run(cluster, simulator, rate=args.rate, period=args.period, stop=stop)
    finally:
        server.stop()
        cluster.close()
        kube.close()
    log.info("stopped")


if __name__ == "__main__":
    main()
