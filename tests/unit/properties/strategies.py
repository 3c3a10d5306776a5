"""Generators shared by the property tests (mostly plausible objects with junk mixed in), one settings
object so that every property runs the same examples in CI as on a laptop, and the check that a
refusal names a field of the object refused."""

from __future__ import annotations

import re
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from canary.kube import Obj
from canary.models.base import API_VERSION

PROPERTIES = settings(max_examples=80, derandomize=True, database=None, deadline=None,
                      suppress_health_check=[HealthCheck.too_slow])
"""Deterministic (derandomize: the same examples at every run) and modest, so that the folder stays fast.
``too_slow`` is suppressed because the nested object strategies are big by design."""

NAMESPACE = "apps"
Strategy = st.SearchStrategy[Any]

junk: Strategy = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(10**6), max_value=10**6),
    st.floats(allow_nan=False, width=32), st.text(max_size=6), st.lists(st.integers(), max_size=2),
    st.dictionaries(st.sampled_from(["a", "name", "x"]), st.integers(), max_size=2))
"""A value of any JSON type: what a field of the wrong type holds."""


def mostly(good: Strategy, bad: Strategy) -> Strategy:
    """``good`` nine times in ten, else ``bad`` (shrinking towards ``good``). Not ``one_of(good, good,
    good, bad)``: the repr of nested strategies listed thrice grows exponentially with their depth."""
    return st.integers(0, 9).flatmap(lambda pick: good if pick < 9 else bad)


durations = mostly(st.sampled_from(["1m", "30s", "1s", "10s", "1h30m", "2m0s", "1.5m"]),
                   st.sampled_from(["500ms", "0s", "10", "", "-1s", "1 m", "soon", "1d", "1m1"]))
urls = mostly(st.sampled_from(["http://hooks.apps/gate", "https://hooks.apps:8443/x?y=1"]),
              st.sampled_from(["ftp://hooks.apps/x", "not a url", "http://", "http://[::1", "http://h:99999/x", ""]))
names = mostly(st.sampled_from(["web", "api", "request-success-rate", "request-duration", "latency"]),
               st.sampled_from(["", "Web_1", "a.b"]))
weights = mostly(st.integers(min_value=1, max_value=100), st.sampled_from([-5, 0, 101, 150]))
PROVIDERS = ("kubernetes", "gatewayapi", "gatewayapi:v1beta1", "istio", "linkerd", "nginx", "contour", "traefik",
             "skipper", "gloo", "apisix", "kuma", "appmesh", "knative", "osm", "smi")
TICKABLE_PROVIDERS = ("kubernetes", "appmesh", "knative", "osm", "smi")
"""The providers a tick can meet in the reconciler's test cluster, which caches only what the kubernetes
router reads (the others are refused before any router is built)."""


class Objects:
    """Strategies for the parts of our resources. Each field holds a plausible value (of the right type,
    right or wrong for the schema) or, when ``wrong``, now and then junk of another type or a key no
    schema knows."""

    def __init__(self, *, wrong: bool, providers: tuple[str, ...] = PROVIDERS) -> None:
        self.wrong = wrong
        self.providers = providers

    def maybe(self, strategy: Strategy) -> Strategy:
        """Mostly ``strategy``, sometimes (when ``wrong``) a value of the wrong type."""
        return mostly(strategy, junk) if self.wrong else strategy

    def fields(self, required: dict[str, Strategy] | None = None,
               optional: dict[str, Strategy] | None = None) -> Strategy:
        """An object with ``required`` keys and some of ``optional``; when ``wrong``, now and then with a key
        no schema knows."""
        known = st.fixed_dictionaries(required or {}, optional=optional or {})
        if not self.wrong:
            return known
        return mostly(known, st.builds(lambda body, extra: {**body, "unknownField": extra}, known, junk))

    def metric(self) -> Strategy:
        """One of ``spec.analysis.metrics``."""
        m = self.maybe
        bound = m(st.floats(min_value=-10, max_value=1000))
        return self.fields({"name": m(names)}, {
            "interval": m(durations),
            "threshold": bound,
            "thresholdRange": m(self.fields(optional={"min": bound, "max": bound})),
            "query": m(st.sampled_from(['sum(rate(x{a="{{ target }}"}[{{ interval }}]))', "1", "{{ nope }}", ""])),
            "templateRef": m(self.fields({"name": m(st.sampled_from(["latency", ""]))},
                                         {"namespace": m(st.sampled_from([NAMESPACE, "other"]))})),
            "templateVariables": m(st.dictionaries(st.sampled_from(["region", "w"]), st.text(max_size=8), max_size=2)),
            "comparison": m(self.fields(optional={"confidence": m(st.floats(0, 1)),
                                                  "direction": m(st.sampled_from(["increase", "either", "up"])),
                                                  "allowedChange": m(st.floats(-1, 20))})),
            "noData": m(st.sampled_from(["fail", "skip", "pause", "ignore"])),
        })

    def webhook(self) -> Strategy:
        """One of ``spec.analysis.webhooks``."""
        m = self.maybe
        return self.fields({"name": m(names), "url": m(urls)}, {
            "type": m(st.sampled_from(["confirm-rollout", "pre-rollout", "rollout", "post-rollout", "rollback",
                                       "event", "confirm-promotion", "during-rollout"])),
            "timeout": m(durations),
            "metadata": m(st.dictionaries(st.sampled_from(["cmd", "type"]), st.text(max_size=5), max_size=2)),
            "retries": m(st.integers(-2, 5)),
            "muteAlert": m(st.booleans()),
        })

    def match(self) -> Strategy:
        """A request match (A/B testing, and some routers' service.match)."""
        m = self.maybe
        string_match = self.fields(optional={"exact": m(st.text(max_size=4)), "prefix": m(st.text(max_size=4)),
                                             "regex": m(st.sampled_from(["^.*$", "(", ""]))})
        return self.fields(optional={
            "headers": m(st.dictionaries(st.sampled_from(["x-canary", "user-agent"]), m(string_match), max_size=2)),
            "uri": m(string_match),
            "sourceLabels": m(st.dictionaries(st.just("app"), st.text(max_size=4), max_size=1))})

    def analysis(self) -> Strategy:
        """``spec.analysis``: usually one of iterations, stepWeight or stepWeights (sometimes two or none);
        metrics, webhooks, alerts and matches."""
        m = self.maybe
        steps = {"iterations": m(mostly(st.integers(1, 12), st.sampled_from([-1, 0]))),
                 "stepWeight": m(weights),
                 "stepWeights": m(mostly(st.lists(st.integers(1, 100), min_size=1, max_size=4, unique=True).map(sorted),
                                         st.lists(weights, max_size=4)))}
        one = st.sampled_from(sorted(steps)).flatmap(lambda key: st.fixed_dictionaries({key: steps[key]}))
        chosen = mostly(one, st.fixed_dictionaries({}, optional=steps))
        rest = self.fields(optional={
            "interval": m(durations),
            "threshold": m(mostly(st.integers(1, 10), st.just(0))),
            "maxWeight": m(weights),
            "stepWeightPromotion": m(weights),
            "mirror": m(st.booleans()),
            "mirrorWeight": m(weights),
            "primaryReadyThreshold": m(weights),
            "metrics": m(st.lists(self.metric(), max_size=2)),
            "webhooks": m(st.lists(self.webhook(), max_size=2)),
            "alerts": m(st.lists(self.fields({"name": m(names), "providerRef": m(self.fields({"name": m(names)}))},
                                             {"severity": m(st.sampled_from(["info", "warn", "error", "fatal"]))}),
                                 max_size=1)),
            "match": m(st.lists(self.match(), max_size=2)),
            "sessionAffinity": m(self.fields(optional={"cookieName": m(st.text(max_size=5)),
                                                       "maxAge": m(st.integers(-5, 100))})),
        })
        return st.builds(lambda base, more: {**base, **more}, chosen, rest)

    def service(self) -> Strategy:
        """``spec.service``: the port and a few of the routing fields that routers may or may not implement."""
        m = self.maybe
        return self.fields({"port": m(mostly(st.integers(1, 65535), st.sampled_from([-1, 0, 70000])))}, {
            "name": m(names),
            "portDiscovery": m(st.booleans()),
            "targetPort": m(st.one_of(st.integers(0, 70000), st.sampled_from(["http", ""]))),
            "timeout": m(durations),
            "gateways": m(st.lists(st.sampled_from(["mesh", "public"]), max_size=2)),
            "hosts": m(st.lists(st.sampled_from(["web.apps", "*"]), max_size=2)),
            "headers": m(self.fields(optional={"request": self.fields(optional={"add": st.dictionaries(
                st.just("x-a"), st.text(max_size=3), max_size=1)})})),
            "match": m(st.lists(self.match(), max_size=1)),
        })

    def spec(self) -> Strategy:
        """``spec`` of a Canary, usually targeting the Deployment ``web``."""
        m = self.maybe
        return self.fields({
            "targetRef": m(self.fields({"name": m(mostly(st.just("web"), st.sampled_from(["missing", ""])))}, {
                "apiVersion": m(st.just("apps/v1")),
                "kind": m(mostly(st.just("Deployment"), st.sampled_from(["DaemonSet", "StatefulSet"]))),
            })),
            "service": m(self.service()),
            "analysis": m(self.analysis()),
        }, {
            "provider": m(mostly(st.sampled_from(self.providers), st.sampled_from(["flagger", ""]))),
            "progressDeadlineSeconds": m(mostly(st.integers(1, 1000), st.sampled_from([-1, 0]))),
            "skipAnalysis": m(st.booleans()),
            "suspend": m(st.booleans()),
            "revertOnDeletion": m(st.booleans()),
            "metricsServer": m(st.sampled_from(["http://prometheus:9090", ""])),
            "autoscalerRef": m(self.fields({"name": m(names)}, {"kind": m(st.sampled_from(
                ["HorizontalPodAutoscaler", "ScaledObject", "VPA"]))})),
        })


JUNK = Objects(wrong=True)
PLAUSIBLE = Objects(wrong=False)


def canaries(name: str = "web", *, providers: tuple[str, ...] = PROVIDERS) -> st.SearchStrategy[dict[str, Any]]:
    """Canary objects as the API server hands them out: metadata well formed (the server sees to that),
    ``spec`` anything from a good release to junk of the wrong types, or missing."""
    metadata = st.fixed_dictionaries(
        {"name": st.just(name), "namespace": st.just(NAMESPACE), "resourceVersion": st.integers(1, 10**6).map(str)},
        optional={"annotations": st.dictionaries(st.sampled_from(["canary.dev/request", "note"]),
                                                 st.sampled_from(["promote/1", "abort/2", "pause/3", "x", ""]),
                                                 max_size=1),
                  "generation": st.integers(1, 5)})
    return st.fixed_dictionaries({"apiVersion": st.just(API_VERSION), "kind": st.just("Canary"), "metadata": metadata,
                                  "spec": mostly(st.one_of(Objects(wrong=False, providers=providers).spec(),
                                                           Objects(wrong=True, providers=providers).spec()), junk)})


_TOP_LEVEL = ("apiVersion", "kind", "metadata", "spec", "status")
_TYPE_TAG = re.compile(r"int|str|float|bool|\[key\]|[\w-]+\[.*\]")
"""What pydantic appends to a location past the field: the union member or validator it tried."""


def names_a_field_of(obj: Obj, part: str) -> bool:
    """Whether ``part`` ("spec.analysis.interval: ...") opens with the path of a field of ``obj``: each
    step of the path is in the object, but for a last one that is missing (a required field) and the
    names of the types pydantic tried (``spec.service.targetPort.int``)."""
    path, sep, _ = part.partition(": ")
    steps = path.split(".")
    if not sep or steps[0] not in _TOP_LEVEL:
        return False
    node: Any = obj
    for index, step in enumerate(steps):
        if isinstance(node, dict) and step in node:
            node = node[step]
        elif isinstance(node, list) and step.isdigit() and int(step) < len(node):
            node = node[int(step)]
        else:
            rest = steps[index:]
            return all(_TYPE_TAG.fullmatch(s) for s in rest) or (isinstance(node, dict) and len(rest) == 1)
    return True
