from __future__ import annotations

import re
import string
from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from analysis.errors import TemplateError
from analysis.templates import TemplateContext, promql_duration, render_promql

MINUTE = timedelta(minutes=1)
CTX = TemplateContext(name="podinfo", namespace="test", target="podinfo", service="podinfo-svc", interval=MINUTE,
                      variables={"cluster": "dev", "consumer_group": "my_consumer"})


def with_target(value: str) -> TemplateContext:
    return TemplateContext(name="n", namespace="ns", target=value, service="s", interval=MINUTE)


_SIMPLE_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v", "\\": "\\"}
_HEX_DIGITS = {"x": 2, "u": 4, "U": 8}


def read_literal(text: str, start: int) -> tuple[str, int]:
    """Read the PromQL string literal that opens at ``text[start]``: its value and the index after it.

    PromQL strings follow Go's string-literal rules, with single quotes allowed as well (escaping
    ``\\'`` instead of ``\\"``). json.loads is not a substitute: it lacks \\a, \\v, \\x, \\U and octal.
    """
    quote = text[start]
    if quote == "`":
        end = text.index("`", start + 1)
        return text[start + 1:end], end + 1
    value = bytearray()
    i = start + 1
    while (ch := text[i]) != quote:
        if ch == "\n":
            raise ValueError("a newline in a string literal")
        if ch != "\\":
            value += ch.encode()
            i += 1
            continue
        escape = text[i + 1]
        if escape in _SIMPLE_ESCAPES or escape == quote:
            value += _SIMPLE_ESCAPES.get(escape, quote).encode()
            i += 2
        elif escape in _HEX_DIGITS:
            digits = text[i + 2:i + 2 + _HEX_DIGITS[escape]]
            if len(digits) != _HEX_DIGITS[escape] or not set(digits) <= set(string.hexdigits):
                raise ValueError(f"bad \\{escape} escape")
            code = int(digits, 16)
            if escape != "x" and (0xD800 <= code <= 0xDFFF or code > 0x10FFFF):
                raise ValueError(f"\\{escape}{digits} is not a valid rune")
            value += bytes([code]) if escape == "x" else chr(code).encode()
            i += 2 + len(digits)
        elif escape in "01234567" and int(text[i + 1:i + 4], 8) <= 255:
            value.append(int(text[i + 1:i + 4], 8))
            i += 4
        else:
            raise ValueError(f"invalid escape \\{escape}")
    return value.decode(), i + 1


def test_the_literal_reader_follows_go_rules() -> None:
    assert read_literal(r'"a\"b\\c\n\x41\101\u00e9\U0001F600" tail', 0) == ('a"b\\c\nAAé\U0001F600', 35)
    assert read_literal(r"""'it\'s "x"' tail""", 0) == ("it's \"x\"", 11)
    with pytest.raises(ValueError, match="invalid escape"):
        read_literal(r'"\q"', 0)
    with pytest.raises(ValueError, match="invalid escape"):
        read_literal(r'"\'"', 0)


@given(st.text())
def test_a_value_in_a_double_quoted_string_reads_back_unchanged_and_never_ends_it(value: str) -> None:
    rendered = render_promql('x{a="{{ target }}", b="z"}', with_target(value))
    literal, end = read_literal(rendered, rendered.index('"'))
    assert literal == value
    assert rendered[end:] == ', b="z"}'


@given(st.text())
def test_a_value_in_a_single_quoted_string_reads_back_unchanged_and_never_ends_it(value: str) -> None:
    rendered = render_promql("x{a='{{ target }}', b='z'}", with_target(value))
    literal, end = read_literal(rendered, rendered.index("'"))
    assert literal == value
    assert rendered[end:] == ", b='z'}"


@given(st.text(), st.text())
def test_a_value_in_a_regex_matcher_matches_itself_and_nothing_else(value: str, other: str) -> None:
    rendered = render_promql('x{a=~"pre-{{ target }}"}', with_target(value))
    pattern, end = read_literal(rendered, rendered.index('"'))
    assert rendered[end:] == "}"
    assert re.fullmatch(pattern, f"pre-{value}")
    if other != value:
        assert re.fullmatch(pattern, f"pre-{other}") is None


@given(st.text())
def test_a_value_inside_brackets_is_used_only_when_it_is_a_duration(value: str) -> None:
    ctx = TemplateContext(name="n", namespace="ns", target="t", service="s", interval=MINUTE, variables={"w": value})
    try:
        rendered = render_promql("rate(x[{{ variables.w }}])", ctx)
    except TemplateError:
        assert not re.fullmatch(r"([0-9]+(ms|s|m|h|d|w|y))+", value)
    else:
        assert rendered == f"rate(x[{value}])"


@pytest.mark.parametrize("placeholder",
                         ["{{ target }}", "{{target}}", "{{ .target }}", "{{.target}}", "{{\t target\n}}"])
def test_each_spelling_of_a_placeholder_is_replaced(placeholder: str) -> None:
    assert render_promql(f'x{{app="{placeholder}"}}', CTX) == 'x{app="podinfo"}'


@pytest.mark.parametrize(("field", "expected"), [
    ("name", "podinfo"), ("namespace", "test"), ("target", "podinfo"), ("service", "podinfo-svc"),
    ("interval", "1m"), ("variables.cluster", "dev"), (".variables.cluster", "dev"),
])
def test_each_placeholder_gives_its_value(field: str, expected: str) -> None:
    assert render_promql(f'"{{{{ {field} }}}}"', CTX) == f'"{expected}"'


def test_ingress_and_route_default_to_the_target_as_in_flagger() -> None:
    assert render_promql('"{{ ingress }}/{{ route }}"', CTX) == '"podinfo/podinfo"'
    ctx = TemplateContext(name="n", namespace="ns", target="t", service="s", interval=MINUTE, ingress="web", route="r")
    assert render_promql('"{{ ingress }}/{{ route }}"', ctx) == '"web/r"'


def test_flaggers_render_examples_give_flaggers_results() -> None:
    ctx = TemplateContext(name="standard", namespace="default", target="myapp", service="myapp", interval=MINUTE)
    assert (render_promql('sum(envoy_cluster_upstream_rq{envoy_cluster_name=~"{{ namespace }}_{{ target }}"})', ctx)
            == 'sum(envoy_cluster_upstream_rq{envoy_cluster_name=~"default_myapp"})')
    query = ('delta(max by (consumer_group) (kafka_consumer_current_offset{cluster="{{ variables.cluster }}", '
             'consumer_group="{{ variables.consumer_group }}"}[{{ interval }}]))')
    assert render_promql(query, CTX) == ('delta(max by (consumer_group) (kafka_consumer_current_offset{cluster="dev", '
                                         'consumer_group="my_consumer"}[1m]))')


def test_a_missing_variable_is_named_with_the_known_ones() -> None:
    with pytest.raises(TemplateError) as error:
        render_promql('x{region="{{ variables.region }}"}', CTX)
    assert str(error.value) == ('unknown template variable "variables.region"; known: name, namespace, target, '
                                'service, ingress, route, interval, variables.cluster, variables.consumer_group')


@pytest.mark.parametrize("placeholder", ["{{ pod }}", "{{ variables }}", "{{ target.name }}"])
def test_an_unknown_placeholder_is_an_error(placeholder: str) -> None:
    with pytest.raises(TemplateError, match="unknown template variable"):
        render_promql(f'x{{a="{placeholder}"}}', CTX)


def test_template_errors_are_value_errors() -> None:
    assert issubclass(TemplateError, ValueError)


@pytest.mark.parametrize("query", ['x{a="{{ target | lower }}"}', 'x{a="{{- target }}"}', 'x{a="{{ target"}'])
def test_other_template_actions_are_refused(query: str) -> None:
    with pytest.raises(TemplateError, match="template action"):
        render_promql(query, CTX)


def test_a_value_piped_through_non_word_to_underscore_keeps_only_word_characters() -> None:
    ctx = TemplateContext(name="n", namespace="team-a.prod", target="web", service="s", interval=MINUTE)
    assert render_promql('x{r=~"kube_{{ namespace | nonWordToUnderscore }}__.*", n="{{ .namespace|'
                         'nonWordToUnderscore }}"}', ctx) == 'x{r=~"kube_team_a_prod__.*", n="team_a_prod"}'


def test_an_unknown_function_is_refused_with_the_known_ones() -> None:
    with pytest.raises(TemplateError) as error:
        render_promql('x{a="{{ target | lower }}"}', CTX)
    assert str(error.value) == ("unsupported template action '{{ target | lower }}': no function 'lower'; "
                                "functions: nonWordToUnderscore")


def test_a_value_that_would_close_the_string_is_escaped() -> None:
    rendered = render_promql('x{app="{{ target }}"}', with_target('a"} or vector(100) #'))
    assert rendered == r'x{app="a\"} or vector(100) #"}'


def test_regex_metacharacters_are_quoted_only_in_regex_matchers() -> None:
    ctx = with_target("my.app")
    assert render_promql('x{a=~"{{ target }}"}', ctx) == r'x{a=~"my\\.app"}'
    assert render_promql('x{a!~"{{ target }}"}', ctx) == r'x{a!~"my\\.app"}'
    assert render_promql('x{a =~ "{{ target }}"}', ctx) == r'x{a =~ "my\\.app"}'
    assert render_promql('x{a="{{ target }}"}', ctx) == 'x{a="my.app"}'
    assert render_promql('x{a!="{{ target }}"}', ctx) == 'x{a!="my.app"}'


def test_every_placeholder_in_a_regex_string_is_quoted_and_the_template_regex_is_kept() -> None:
    ctx = TemplateContext(name="n", namespace="te.st", target="t", service="web+api", interval=MINUTE)
    rendered = render_promql('x{c=~"{{ namespace }}_{{ service }}-canary_[0-9a-z-]+"}', ctx)
    assert rendered == r'x{c=~"te\\.st_web\\+api-canary_[0-9a-z-]+"}'


def test_a_raw_string_takes_the_value_without_escapes_but_refuses_a_backquote() -> None:
    assert render_promql("x{a=~`{{ target }}`}", with_target('my.app"')) == r'x{a=~`my\.app"`}'
    with pytest.raises(TemplateError, match="backquote"):
        render_promql("x{a=`{{ target }}`}", with_target("a`b"))


def test_a_value_in_brackets_that_is_not_a_duration_is_refused_by_name() -> None:
    ctx = TemplateContext(name="n", namespace="ns", target="t", service="s", interval=MINUTE,
                          variables={"window": "1 minute"})
    with pytest.raises(TemplateError, match=r'"variables.window" is inside \[...\], so its value must be a duration'):
        render_promql("rate(x[{{ variables.window }}])", ctx)


def test_the_interval_is_written_as_a_promql_duration() -> None:
    ctx = TemplateContext(name="n", namespace="ns", target="t", service="s", interval=timedelta(seconds=90))
    assert render_promql("rate(x[{{ interval }}:10s])", ctx) == "rate(x[1m30s:10s])"


@pytest.mark.parametrize(("window", "text"), [
    (timedelta(minutes=1), "1m"), (timedelta(seconds=90), "1m30s"), (timedelta(hours=1, minutes=30), "1h30m"),
    (timedelta(seconds=1.5), "1s500ms"), (timedelta(days=1), "24h"), (timedelta(seconds=30), "30s"),
    (timedelta(microseconds=1_000_400), "1s"),
])
def test_promql_durations_have_no_fractions(window: timedelta, text: str) -> None:
    assert promql_duration(window) == text
    assert re.fullmatch(r"([0-9]+(ms|s|m|h))+", text)


@pytest.mark.parametrize("value", ["5", "0.99", "1e3", "job", "le", "5m"])
def test_a_single_token_may_stand_outside_a_string(value: str) -> None:
    ctx = TemplateContext(name="n", namespace="ns", target="t", service="s", interval=MINUTE, variables={"v": value})
    assert render_promql("topk({{ variables.v }}, x)", ctx) == f"topk({value}, x)"


@pytest.mark.parametrize("value", ["5, y) or vector(1", "", "my-app", '"a"'])
def test_anything_else_outside_a_string_is_refused(value: str) -> None:
    ctx = TemplateContext(name="n", namespace="ns", target="t", service="s", interval=MINUTE, variables={"v": value})
    with pytest.raises(TemplateError, match=r'"variables.v" is outside a string literal'):
        render_promql("topk({{ variables.v }}, x)", ctx)


def test_brackets_and_hashes_inside_strings_are_not_code() -> None:
    ctx = TemplateContext(name="n", namespace="ns", target="t", service="s", interval=MINUTE, variables={"n": "2"})
    assert render_promql('x{a=~"[0-9]+#"} * {{ variables.n }}', ctx) == 'x{a=~"[0-9]+#"} * 2'


def test_a_comment_may_hold_a_value_but_not_a_line_break() -> None:
    assert render_promql("x # for {{ target }}\n", with_target("my app")) == "x # for my app\n"
    with pytest.raises(TemplateError, match="comment"):
        render_promql("x # for {{ target }}\n", with_target("a\nvector(1)"))


def test_a_placeholder_after_a_backslash_is_refused() -> None:
    with pytest.raises(TemplateError, match="backslash"):
        render_promql(r'x{a="\{{ target }}"}', CTX)


def test_a_quote_escaped_in_the_template_does_not_end_its_string() -> None:
    assert render_promql(r'x{a="say \"{{ target }}\""}', with_target("a.b")) == r'x{a="say \"a.b\""}'
