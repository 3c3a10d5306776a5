"""The Linkerd router: an SMI TrafficSplit ``<svc>`` whose backends ``<svc>-canary`` and ``<svc>-primary``
carry the weights, as Flagger's pkg/router/smi.go writes it for ``provider: linkerd``.

Flagger writes ``split.smi-spec.io/v1alpha1`` for Linkerd (its smi:v1alpha2/v1alpha3 providers
are other meshes), with the apex ``spec.service`` being spec.service.hosts[0] when set. In
v1alpha1 a weight is a Kubernetes quantity: Flagger sends strings such as ``"90"``; this router
writes plain integers, which Linkerd reads alike and which stay numbers when the API server stores
the object in a later version, and it reads either back. Weights only: SMI's TrafficSplit has no
header matches (Flagger's linkerd provider does A/B only through Gateway API). The CRD is vendored
under manifests/vendor/smi, converted to apiextensions.k8s.io/v1 by tools/smi_crd.py.
"""

from __future__ import annotations

import re

from canary.errors import PermanentError
from canary.kube import Obj
from canary.models.canary import Canary
from canary.routers.base import Getter, RouteTarget, Weights, split_of
from canary.routers.weighted import WeightedRouter

TRAFFIC_SPLIT = ("split.smi-spec.io/v1alpha1", "TrafficSplit")
_WHOLE = re.compile(r"[0-9]+")


def build(route: RouteTarget, weights: Weights) -> Obj:
    """The TrafficSplit of ``route`` with ``weights``."""
    spec = route.canary.spec
    apex, primary, canary = spec.service_names
    meta = spec.service.apex
    return {"apiVersion": TRAFFIC_SPLIT[0], "kind": "TrafficSplit",
            "metadata": {"name": apex, "namespace": route.namespace, "ownerReferences": [route.owner],
                         "labels": dict(meta.labels or {}) if meta else {},
                         "annotations": dict(meta.annotations or {}) if meta else {}},
            "spec": {"service": spec.service.hosts[0] if spec.service.hosts else apex,
                     "backends": [{"service": canary, "weight": weights.canary},
                                  {"service": primary, "weight": weights.primary}]}}


def _weight(value: object, *, where: str) -> int:
    """A backend's weight: an integer, or a quantity string of a whole number (as Flagger writes)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and _WHOLE.fullmatch(value):
        return int(value)
    raise PermanentError(f"{where} must be a whole number, got {value!r}")


def split_weights(found: Obj, canary: Canary) -> Weights:
    """The split of a TrafficSplit's backends."""
    meta = found["metadata"]
    where = f"TrafficSplit {meta.get('namespace')}/{meta['name']}: spec.backends"
    backends = (found.get("spec") or {}).get("backends") or []
    weights = {str(b.get("service")): _weight(b.get("weight"), where=f"{where}[{i}].weight")
               for i, b in enumerate(backends)}
    return split_of(weights, canary.spec.service_names[1:], where=where)


def read_weights(get: Getter, canary: Canary) -> Weights | None:
    """The split of the canary's TrafficSplit, or None before there is one."""
    found = get(*TRAFFIC_SPLIT, canary.metadata.namespace or "default", canary.spec.service_names[0])
    return split_weights(found, canary) if found is not None else None


class LinkerdRouter(WeightedRouter):
    """Weighted routing through an SMI TrafficSplit."""

    name = "linkerd"
    kind = TRAFFIC_SPLIT
    supported = frozenset({"service.hosts"})
    read = staticmethod(read_weights)

    def build(self, route: RouteTarget, weights: Weights) -> Obj:
        """The TrafficSplit for ``weights``."""
        return build(route, weights)


PLUGIN = LinkerdRouter.plugin(crds=("smi",))
