"""The canaries both controllers get: the same Deployments, Canaries and MetricTemplate, in one namespace each.

``run.py`` creates a fleet for Flagger (``flagger.app/v1beta1``) and one for ours (``canary.dev/v1alpha1``):
the spec is field for field the same (our kinds are Flagger's), built with the tests' builders. Each
canary is blue/green on the kubernetes router (``iterations``), ticks every 10 s and is judged by one
MetricTemplate against the stack's Prometheus, so both controllers do the same work: a rendered query
per canary per tick while a release runs.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from canary.kube import Obj
from canary.kube.client import Kube
from canary.models.base import API_VERSION
from canary.models.flagger import FLAGGER_API_VERSION
from tests.builders import make_canary, make_deployment

INTERVAL_SECONDS = 10
ITERATIONS = 3
TEMPLATE = "success-rate"
FIELD_MANAGER = "bench-flagger"
# Prometheus's own HTTP requests, of which the controllers' queries are most: a success rate that has data
# in both namespaces without the traffic simulator (the bench runs without it). The variables make each
# canary's query its own string, rendered by each controller as it renders any template.
QUERY = ('100 * sum(prometheus_http_requests_total{code=~"2..",handler!="{{ namespace }}/{{ target }}"}) '
         '/ sum(prometheus_http_requests_total{handler!="{{ namespace }}/{{ target }}"})')


@dataclass(frozen=True)
class Fleet:
    """N canaries ``app-0000``... in ``namespace``, of ``api_version``'s kinds (Flagger's or ours)."""

    namespace: str
    api_version: str
    size: int
    prometheus_url: str
    members: tuple[str, ...] = ()
    """The canaries of a share of the fleet (``share``); empty for the whole fleet."""

    @property
    def names(self) -> list[str]:
        if self.members:
            return list(self.members)
        width = max(4, len(str(self.size - 1)))
        return [f"app-{index:0{width}d}" for index in range(self.size)]

    def share(self, index: int, count: int) -> Fleet:
        """Every ``count``-th canary from the ``index``-th: the canaries of one of ``count`` shards."""
        if not 0 <= index < count:
            raise ValueError(f"share {index} of {count} does not exist")
        members = tuple(self.names[index::count])
        return dataclasses.replace(self, size=len(members), members=members)

    def template(self) -> Obj:
        """The MetricTemplate every canary of the fleet refers to."""
        return {"apiVersion": self.api_version, "kind": "MetricTemplate",
                "metadata": {"name": TEMPLATE, "namespace": self.namespace},
                "spec": {"provider": {"type": "prometheus", "address": self.prometheus_url}, "query": QUERY}}

    def canary(self, name: str) -> Obj:
        """Canary ``name``: blue/green, ``ITERATIONS`` checks of the template 10 s apart, then promotion."""
        built = make_canary(name, self.namespace, provider="kubernetes", analysis={
            "interval": f"{INTERVAL_SECONDS}s", "threshold": 2, "iterations": ITERATIONS,
            "metrics": [{"name": TEMPLATE, "templateRef": {"name": TEMPLATE},
                         "thresholdRange": {"min": 90}, "interval": "1m"}]})
        return {**built, "apiVersion": self.api_version}

    def deployment(self, name: str) -> Obj:
        """The canary's target: one replica, which kwok runs."""
        return make_deployment(name, self.namespace, replicas=1, image="ghcr.io/stefanprodan/podinfo:6.7.0")

    def prepare(self, kube: Kube) -> None:
        """The namespace and the template, before the controller starts."""
        kube.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": self.namespace}},
                   field_manager=FIELD_MANAGER)
        kube.apply(self.template(), field_manager=FIELD_MANAGER)

    def add(self, kube: Kube, name: str) -> None:
        """Canary ``name`` and its Deployment."""
        kube.apply(self.deployment(name), field_manager=FIELD_MANAGER)
        kube.apply(self.canary(name), field_manager=FIELD_MANAGER)


def flagger_fleet(size: int, prometheus_url: str, namespace: str = "bench-flagger") -> Fleet:
    """The fleet for Flagger: its own kinds, in its own namespace."""
    return Fleet(namespace=namespace, api_version=FLAGGER_API_VERSION, size=size, prometheus_url=prometheus_url)


def our_fleet(size: int, prometheus_url: str, namespace: str = "bench-ours") -> Fleet:
    """The fleet for our controller."""
    return Fleet(namespace=namespace, api_version=API_VERSION, size=size, prometheus_url=prometheus_url)
