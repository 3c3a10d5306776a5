"""The API server enforces our CRDs' schemas: bad Canaries are refused with the field named."""

from __future__ import annotations

import re
from typing import Any

import pytest

from canary.errors import InvalidObject
from canary.kube.client import Kube
from canary.models.canary import Canary


def _canary(namespace: str, **analysis: Any) -> dict[str, Any]:
    return {
        "apiVersion": "canary.dev/v1alpha1", "kind": "Canary",
        "metadata": {"name": "podinfo", "namespace": namespace},
        "spec": {"targetRef": {"name": "podinfo"}, "service": {"port": 9898},
                 "analysis": {"interval": "1s", "threshold": 2, **analysis}},
    }


@pytest.mark.usefixtures("canary_crds")
@pytest.mark.parametrize(
    ("analysis", "field", "message"),
    [
        ({"stepWeight": 150}, "spec.analysis.stepWeight", "less than or equal to 100"),
        ({"stepWeight": 10, "iterations": 3}, "spec.analysis", "exactly one of iterations, stepWeight, stepWeights"),
        ({"stepWeights": [10, 200]}, "spec.analysis.stepWeights[1]", "less than or equal to 100"),
        ({"stepWeight": 10, "interval": "500ms"}, "spec.analysis.interval", "must be at least 1s"),
        ({"iterations": 2, "webhooks": [{"name": "x", "type": "sometimes", "url": "http://x"}]},
         "spec.analysis.webhooks[0].type", "supported values"),
        # What no consumer can use is refused where it is written, with the field named.
        ({"iterations": 2, "metrics": [{"name": "m", "query": "up", "interval": "500ms"}]},
         "spec.analysis.metrics[0].interval", "must be at least 1s"),
        ({"iterations": 2, "webhooks": [{"name": "x", "url": "http://x", "timeout": "0s"}]},
         "spec.analysis.webhooks[0].timeout", "must be between 1ms and 5m"),
        ({"iterations": 2, "webhooks": [{"name": "x", "url": "http://x", "timeout": "1h"}]},
         "spec.analysis.webhooks[0].timeout", "must be between 1ms and 5m"),
        ({"iterations": 2, "metrics": [{"name": "m", "query": "up", "thresholdRange": {"min": 2, "max": 1}}]},
         "spec.analysis.metrics[0].thresholdRange", "min must not be above max"),
        ({"iterations": 2, "webhooks": [{"name": "x", "url": "http://[::1"}]},
         "spec.analysis.webhooks[0].url", "must be a URL with scheme http or https"),
        ({"iterations": 2, "webhooks": [{"name": "x", "url": "ftp://hooks"}]},
         "spec.analysis.webhooks[0].url", "must be a URL with scheme http or https"),
    ],
)
def test_the_api_server_refuses_an_invalid_canary_naming_the_field(
    kube: Kube, namespace: str, analysis: dict[str, Any], field: str, message: str
) -> None:
    with pytest.raises(InvalidObject) as caught:
        kube.create(_canary(namespace, **analysis))
    assert re.search(rf"{re.escape(field)}: .*{re.escape(message)}", str(caught.value)), str(caught.value)


@pytest.mark.usefixtures("canary_crds")
def test_a_valid_canary_is_stored_as_written_and_reads_back_into_the_model(kube: Kube, namespace: str) -> None:
    kube.create(_canary(namespace, stepWeight=10, maxWeight=50))
    stored = kube.get("canary.dev/v1alpha1", "Canary", "podinfo", namespace=namespace)
    assert stored is not None
    assert stored["spec"]["analysis"] == {"interval": "1s", "threshold": 2, "stepWeight": 10, "maxWeight": 50}
    canary = Canary.from_object(stored)
    assert canary.spec.analysis.effective_max_weight == 50
    assert canary.spec.progress_deadline_seconds == 600

    kube.merge_patch("canary.dev/v1alpha1", "Canary", "podinfo", {"status": {"phase": "Progressing",
                     "canaryWeight": 10, "failedChecks": 0}}, namespace=namespace, subresource="status")
    canary = Canary.from_object(kube.get("canary.dev/v1alpha1", "Canary", "podinfo", namespace=namespace) or {})
    assert canary.status.phase == "Progressing"
    assert canary.status.canary_weight == 10


@pytest.mark.usefixtures("canary_crds")
def test_what_the_api_server_accepts_as_a_duration_the_model_reads_alike(kube: Kube, namespace: str) -> None:
    kube.create(_canary(namespace, iterations=2, interval="1.5m", metrics=[
        {"name": "m", "query": "sum(rate(x[{{ interval }}]))", "interval": "1.5m"}],
        webhooks=[{"name": "gate", "url": "http://gate", "timeout": "1m30s"}]))
    stored = kube.get("canary.dev/v1alpha1", "Canary", "podinfo", namespace=namespace)
    analysis = Canary.from_object(stored or {}).spec.analysis
    assert analysis.interval_seconds == 90
    assert [m.window.total_seconds() for m in analysis.metrics or []] == [90]


@pytest.mark.usefixtures("canary_crds")
@pytest.mark.parametrize(("spec", "field", "message"), [
    ({"type": "slack", "address": "http://[::1"}, "spec.address", "must be a URL with scheme http or https"),
    ({"type": "slack", "address": "hooks.slack.com/T0K3N"}, "spec.address", "must be a URL"),
    ({"type": "slack", "proxy": "http://proxy:port"}, "spec.proxy", "must be a URL"),
])
def test_the_api_server_refuses_an_alert_provider_address_that_is_not_a_url(
    kube: Kube, namespace: str, spec: dict[str, Any], field: str, message: str
) -> None:
    with pytest.raises(InvalidObject) as caught:
        kube.create({"apiVersion": "canary.dev/v1alpha1", "kind": "AlertProvider",
                     "metadata": {"name": "chat", "namespace": namespace}, "spec": spec})
    assert re.search(rf"{re.escape(field)}: .*{re.escape(message)}", str(caught.value)), str(caught.value)
    assert "T0K3N" not in str(caught.value), "the value, which may be a credential, is not repeated"
