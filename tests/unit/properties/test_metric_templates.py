"""Any MetricTemplate is read or refused by field, a check over it never raises, and no value put
into a query can break out of the string or token it stands for."""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from analysis.errors import TemplateError
from analysis.templates import TemplateContext, render_promql
from canary.engine.checks import CheckRunner
from canary.kube import Obj
from canary.models.base import API_VERSION
from canary.models.canary import Canary
from canary.models.resources import MetricTemplate
from canary.webhooks import WebhookCaller
from tests.builders import make_canary, make_deployment
from tests.fakes import FakeKube, informer
from tests.unit.analysis.test_templates import read_literal
from tests.unit.engine.test_reconciler import Cluster
from tests.unit.properties.strategies import JUNK, NAMESPACE, PROPERTIES, junk, mostly, names_a_field_of

PROVIDER_TYPES = ["prometheus", "datadog", "cloudwatch", "newrelic", "graphite", "influxdb", "web"]
QUERIES = ['sum(rate(x{app="{{ target }}"}[{{ interval }}]))', "avg:errors{service:{{ target }}}",
           'x{a="{{ variables.region }}"}', "{{ nope }}", "{{ target | lower }}", "x{{", "", "1"]


def templates() -> st.SearchStrategy[Obj]:
    """MetricTemplate objects: well-formed metadata, a spec from plausible to junk."""
    m = JUNK.maybe
    provider = JUNK.fields(optional={
        "type": m(mostly(st.sampled_from(PROVIDER_TYPES), st.sampled_from(["stackdriver", "Prometheus", ""]))),
        "address": m(mostly(st.sampled_from(["http://prometheus:9090", "https://api.datadoghq.com"]),
                            st.sampled_from(["prometheus:9090", "http://", "ftp://x", ""]))),
        "headers": m(st.dictionaries(st.sampled_from(["X-Scope-OrgID", "Bad\nName"]),
                                     st.lists(st.sampled_from(["team", "a\r\nb", ""]), max_size=2), max_size=2)),
        "secretRef": m(JUNK.fields({"name": m(st.sampled_from(["creds", "missing", ""]))})),
        "region": m(st.sampled_from(["eu-west-1", "", "mars"])),
        "insecureSkipVerify": m(st.booleans()),
    })
    spec = JUNK.fields({"query": m(st.sampled_from(QUERIES))}, {"provider": m(provider)})
    return st.fixed_dictionaries({
        "apiVersion": st.just(API_VERSION), "kind": st.just("MetricTemplate"),
        "metadata": st.fixed_dictionaries({"name": st.just("latency"), "namespace": st.just(NAMESPACE)}),
        "spec": mostly(spec, junk)})


def secrets() -> st.SearchStrategy[Obj | None]:
    """The template's Secret, if any: keys the providers know, values base64 or not, text or not."""
    value = st.one_of(st.binary(max_size=8).map(lambda raw: base64.b64encode(raw).decode()),
                      st.sampled_from(["not base64!", "//79"]))
    keys = st.sampled_from(["apiKey", "applicationKey", "address", "ca.crt", "bearerToken", "username"])
    return st.one_of(st.none(), st.builds(lambda data: {"apiVersion": "v1", "kind": "Secret", "metadata": {
        "name": "creds", "namespace": NAMESPACE}, "data": data}, st.dictionaries(keys, value, max_size=3)))


@PROPERTIES
@given(templates())
def test_every_metric_template_is_read_or_refused_naming_each_field(obj: Obj) -> None:
    try:
        MetricTemplate.model_validate(obj)
    except ValidationError as exc:
        for error in exc.errors():
            part = ".".join(str(p) for p in error["loc"]) + ": " + error["msg"]
            assert names_a_field_of(obj, part), part


@PROPERTIES
@given(templates(), secrets())
def test_a_check_of_any_template_reports_problems_naming_the_field_and_never_raises(template: Obj,
                                                                                    secret: Obj | None) -> None:
    kube = FakeKube(template, *([secret] if secret else []))
    runner = CheckRunner(webhooks=WebhookCaller(), templates=informer(kube, API_VERSION, "MetricTemplate"),
                         secrets=informer(kube, "v1", "Secret"), metrics_server="http://prometheus",
                         clock=lambda: datetime(2026, 1, 1, tzinfo=UTC))
    canary = Canary.from_object(make_canary("web", NAMESPACE, analysis={
        "interval": "30s", "stepWeight": 10, "metrics": [{"name": "latency", "templateRef": {"name": "latency"},
                                                          "thresholdRange": {"max": 500}}]}))

    for problem in runner.problems(canary, provider="kubernetes"):
        assert problem.startswith(f"MetricTemplate {NAMESPACE}/latency: spec"), problem


@PROPERTIES
@given(templates())
def test_a_tick_of_a_canary_using_any_template_returns_and_names_the_templates_field(template: Obj) -> None:
    canary = make_canary("web", NAMESPACE, provider="kubernetes", analysis={
        "interval": "30s", "iterations": 2, "metrics": [{"name": "latency", "templateRef": {"name": "latency"}}]})
    cluster = Cluster(make_deployment("web", NAMESPACE), canary, template)

    assert isinstance(cluster.tick(), str)
    refusal = f"Canary {NAMESPACE}/web: MetricTemplate {NAMESPACE}/latency: spec"
    for condition in cluster.canary().get("status", {}).get("conditions", []):
        assert condition["status"] != "False" or condition["message"].startswith(refusal), condition["message"]


# The rest: a query of code, label matchers and placeholders, rendered with any values, keeps its shape.

PLACES = ["target", "name", "namespace", "service", "ingress", "variables.a", "variables.b"]
QUOTE_META = frozenset("\\.+*?()|[]{}^$")
"""The characters Go's regexp.QuoteMeta escapes (and so the renderer, in a regex matcher)."""
values = st.one_of(st.text(max_size=12), st.sampled_from(
    ['"', "'", "`", "\\", "\n", "}", "{{ target }}", '"} or vector(1) #', "a\\", "web", "5m", "0.5", "le"]))


@dataclass(frozen=True)
class Code:
    text: str


@dataclass(frozen=True)
class Placeholder:
    name: str
    pipe: bool = False

    def action(self) -> str:
        return "{{ " + self.name + (" | nonWordToUnderscore" if self.pipe else "") + " }}"


@dataclass(frozen=True)
class Literal:
    """A string literal in the query, its text a mix of plain text and placeholders."""

    operator: str
    quote: str
    parts: tuple[str | Placeholder, ...]


@dataclass(frozen=True)
class Token:
    """A placeholder standing as code (``topk({{ v }}, ...)``) or in a range (``[{{ v }}]``)."""

    placeholder: Placeholder
    bracketed: bool


Segment = Code | Literal | Token
placeholders = st.builds(Placeholder, st.sampled_from(PLACES), st.booleans())
texts = st.sampled_from(["web-", ".*", "_", " ", "[0-9]+", "#"])
segments: st.SearchStrategy[Segment] = st.one_of(
    st.builds(Code, st.sampled_from(["sum(", ")", "rate(", "x", "{", "}", ", ", " ", "by (app)", "[5m]", "1", " + "])),
    st.builds(Literal, st.sampled_from(["app=", "app!=", "app=~", "app!~", "app =~ "]),
              st.sampled_from(['"', "'", "`"]), st.lists(st.one_of(texts, placeholders), max_size=4).map(tuple)),
    st.builds(Token, placeholders, st.booleans()))


def query_of(shape: list[Segment]) -> str:
    """The query text of ``shape``, its segments apart by a space (so that ``{`` and ``{{`` never touch)."""
    text = []
    for segment in shape:
        match segment:
            case Code(text=code):
                text.append(code)
            case Literal(operator=operator, quote=quote, parts=parts):
                inside = "".join(p.action() if isinstance(p, Placeholder) else p for p in parts)
                text.append(f"{operator}{quote}{inside}{quote}")
            case Token(placeholder=placeholder, bracketed=bracketed):
                text.append(f"[{placeholder.action()}]" if bracketed else placeholder.action())
    return " ".join(text)


def value_of(placeholder: Placeholder, ctx: TemplateContext) -> str:
    value = ctx.lookup(placeholder.name)
    return re.sub(r"\W", "_", value, flags=re.ASCII) if placeholder.pipe else value


def check_shape(rendered: str, shape: list[Segment], ctx: TemplateContext) -> None:
    """``rendered`` is ``shape`` with each value in place: each literal reads back (with PromQL's rules)
    as its text with the values in (quoted as regex in a regex matcher), and the code between is as written."""
    at = 0
    for index, segment in enumerate(shape):
        if index:
            assert rendered[at] == " "
            at += 1
        match segment:
            case Code(text=code):
                assert rendered.startswith(code, at)
                at += len(code)
            case Literal(operator=operator, quote=quote, parts=parts):
                assert rendered.startswith(operator, at)
                regex = "~" in operator
                wanted = "".join(p if isinstance(p, str) else "".join(
                    "\\" + ch if regex and ch in QUOTE_META else ch for ch in value_of(p, ctx)) for p in parts)
                literal, at = read_literal(rendered, at + len(operator))
                assert rendered[at - 1] == quote
                assert literal == wanted
            case Token(placeholder=placeholder, bracketed=bracketed):
                token = value_of(placeholder, ctx)
                expected = f"[{token}]" if bracketed else token
                assert rendered.startswith(expected, at)
                at += len(expected)
    assert at == len(rendered)


@PROPERTIES
@given(st.lists(segments, max_size=6), values, values, values, values)
def test_no_value_breaks_out_of_its_string_or_token(shape: list[Segment], target: str, namespace: str, a: str,
                                                    b: str) -> None:
    ctx = TemplateContext(name="web", namespace=namespace, target=target, service="web", interval=timedelta(minutes=1),
                          variables={"a": a, "b": b}, ingress="web-ingress")
    try:
        rendered = render_promql(query_of(shape), ctx)
    except TemplateError as exc:
        refusal = str(exc)
    else:
        check_shape(rendered, shape, ctx)
        return
    assert re.search(r'template variable "(\w|\.)+"', refusal), refusal


@PROPERTIES
@given(st.text(alphabet="{}|. \"'`[]#\\\nxa", max_size=20), values)
def test_any_query_text_renders_or_is_refused_naming_the_placeholder_or_action(query: str, value: str) -> None:
    ctx = TemplateContext(name="web", namespace=NAMESPACE, target=value, service="web", interval=timedelta(minutes=1))
    try:
        render_promql(query, ctx)
    except TemplateError as exc:
        refusal = str(exc)
    else:
        return
    assert re.search(r'template variable "|template action', refusal), refusal
