from __future__ import annotations

import pytest
import yaml
from typer.testing import CliRunner

from canary import cli
from canary.errors import PermanentError
from canary.models.flagger import convert

FLAGGER = """
apiVersion: flagger.app/v1beta1
kind: Canary
metadata: {name: podinfo, namespace: test}
spec:
  provider: gatewayapi:v1
  targetRef: {apiVersion: apps/v1, kind: Deployment, name: podinfo}
  service:
    port: 9898
    gatewayRefs: [{name: gateway, namespace: istio-ingress}]
  canaryAnalysis:
    interval: 1m
    threshold: 5
    maxWeight: 50
    stepWeight: 10
    metrics:
    - name: request-success-rate
      thresholdRange: {min: 99}
      interval: 1m
    webhooks:
    - name: load-test
      url: http://flagger-loadtester.test/
      timeout: 5s
      metadata: {cmd: "hey -z 1m -q 10 -c 2 http://podinfo-canary.test:9898/"}
---
apiVersion: flagger.app/v1beta1
kind: MetricTemplate
metadata: {name: latency, namespace: test}
spec:
  provider: {type: prometheus, address: "http://prometheus.istio-system:9090"}
  query: histogram_quantile(0.99, sum(rate(x_bucket{ns="{{ namespace }}"}[{{ interval }}])) by (le))
---
apiVersion: v1
kind: Service
metadata: {name: untouched}
"""


def test_a_flagger_canary_and_template_become_ours_and_other_documents_pass_through() -> None:
    canary, template, service = convert(list(yaml.safe_load_all(FLAGGER)), source="flagger.yaml")
    assert canary["apiVersion"] == template["apiVersion"] == "canary.dev/v1alpha1"
    assert "canaryAnalysis" not in canary["spec"]
    assert canary["spec"]["analysis"]["stepWeight"] == 10
    assert canary["spec"]["analysis"]["webhooks"][0]["metadata"]["cmd"].startswith("hey")
    assert service == {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "untouched"}}


def test_an_invalid_flagger_canary_is_reported_with_document_and_field() -> None:
    documents = list(yaml.safe_load_all(FLAGGER))
    documents[0]["spec"]["canaryAnalysis"]["stepWeight"] = 150
    with pytest.raises(PermanentError, match=r"flagger.yaml document 0: Canary podinfo: spec.analysis.stepWeight: "):
        convert(documents, source="flagger.yaml")


def test_a_canary_without_a_provider_gets_flaggers_default_written_out() -> None:
    documents = list(yaml.safe_load_all(FLAGGER))
    del documents[0]["spec"]["provider"]
    assert convert(documents, source="f.yaml")[0]["spec"]["provider"] == "istio"
    assert convert(documents, source="f.yaml", mesh_provider="nginx")[0]["spec"]["provider"] == "nginx"


def test_older_flagger_versions_convert_and_unknown_ones_are_refused() -> None:
    documents = list(yaml.safe_load_all(FLAGGER))
    documents[0]["apiVersion"] = "flagger.app/v1alpha3"
    assert convert(documents, source="f.yaml")[0]["apiVersion"] == "canary.dev/v1alpha1"
    documents[0]["apiVersion"] = "flagger.app/v2"
    with pytest.raises(PermanentError, match=r"f.yaml document 0: Canary podinfo: apiVersion flagger.app/v2: only"):
        convert(documents, source="f.yaml")


@pytest.mark.parametrize(("text", "words"), [("", "no YAML document"), ("--- just text\n", "not a Kubernetes object")])
def test_an_empty_or_odd_input_is_an_error(text: str, words: str) -> None:
    with pytest.raises(PermanentError, match=words):
        convert(list(yaml.safe_load_all(text)), source="f.yaml")


def test_the_cli_reads_standard_input_and_lists_what_it_passed_through() -> None:
    result = CliRunner().invoke(cli.app, ["convert", "-"], input=FLAGGER, env={"COLUMNS": "300"})
    assert result.exit_code == 0, result.output
    assert result.stdout.count("apiVersion: canary.dev/v1alpha1") == 2
    assert "standard input document 2: Service untouched is not Flagger's: passed through unchanged" in result.stderr
