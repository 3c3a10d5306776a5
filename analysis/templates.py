"""Render a MetricTemplate (or built-in) query: Flagger's ``{{ ... }}`` placeholders, filled in safely.

The controller's metric check calls ``render_promql`` with a ``TemplateContext`` built from the
canary, then hands the result to a metric provider.

Flagger renders queries with Go's text/template, which pastes values in verbatim: a variable
holding ``x"} or vector(100) #`` rewrites the query. Here every value is encoded for the place it
lands in, found by following PromQL's lexer through the template:

- inside a string literal: escaped as Go (and so PromQL) escapes string literals, so it can't end
  the string; inside a regex matcher's string (``=~``/``!~``) its regex metacharacters are quoted
  first, as Go's ``regexp.QuoteMeta`` does, so ``my.app`` matches only itself;
- inside ``[...]`` (a range or subquery): it must be a duration such as ``30s`` or ``1m``;
- elsewhere in the query: it must be a single identifier, number or duration;
- in a ``#`` comment: it must not hold a line break, which would end the comment.

Anything else is a ``TemplateError`` that names the placeholder.

A placeholder may pipe its value through one function, ``{{ ingress | nonWordToUnderscore }}``:
every character that is not an ASCII letter, digit or underscore becomes ``_``, as Skipper writes
names into its route ids (Flagger encodes its skipper queries' values the same way, in Go).

``interval`` is the metric's window as a duration; it is written in PromQL's own grammar
(``1m30s``, never Go's ``1.5m``, which Prometheus refuses), to the millisecond.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Literal

from analysis.errors import TemplateError

# Go templates call these functions (Flagger) or fields (``{{ .target }}``); both spellings work.
_ACTION = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)
_PLACEHOLDER = re.compile(r"\s*\.?([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)\s*(?:\|\s*([A-Za-z_]\w*)\s*)?", re.ASCII)
_NON_WORD = re.compile(r"\W", re.ASCII)
_FUNCTIONS: Mapping[str, Callable[[str], str]] = {"nonWordToUnderscore": lambda value: _NON_WORD.sub("_", value)}
_FIELDS = ("name", "namespace", "target", "service", "ingress", "route", "interval")

_DURATION = re.compile(r"([0-9]+(ms|s|m|h|d|w|y))+")
_NUMBER = re.compile(r"[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?")
_IDENTIFIER = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")

_REGEX_SPECIAL = frozenset("\\.+*?()|[]{}^$")
_NAMED_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v"}


@dataclass(frozen=True)
class TemplateContext:
    """The values a query's placeholders name, as in Flagger's MetricTemplateModel.

    ``ingress`` and ``route`` default to ``target``, as Flagger's do when the canary has no
    ingressRef or routeRef.
    """

    name: str
    namespace: str
    target: str
    service: str
    interval: timedelta
    variables: Mapping[str, str] = field(default_factory=dict)
    ingress: str | None = None
    route: str | None = None

    def lookup(self, placeholder: str) -> str:
        """The value of ``target``, ``variables.region`` and so on; ``TemplateError`` if there is none."""
        if placeholder in ("ingress", "route"):
            value: str | None = getattr(self, placeholder)
            return self.target if value is None else value
        if placeholder == "interval":
            return promql_duration(self.interval)
        if placeholder in _FIELDS:
            return str(getattr(self, placeholder))
        head, _, key = placeholder.partition(".")
        if head == "variables" and key in self.variables:
            return self.variables[key]
        known = [*_FIELDS, *(f"variables.{k}" for k in sorted(self.variables))]
        raise TemplateError(f'unknown template variable "{placeholder}"; known: {", ".join(known)}')


def promql_duration(window: timedelta) -> str:
    """``window`` in PromQL's duration grammar (``1h30m``, ``1m30s``, ``1s500ms``), rounded to milliseconds."""
    millis = round(window.total_seconds() * 1000)
    if millis <= 0:
        raise TemplateError(f"the interval must be positive, got {window}")
    parts = []
    for unit, size in (("h", 3_600_000), ("m", 60_000), ("s", 1000), ("ms", 1)):
        count, millis = divmod(millis, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)


def render_promql(query: str, ctx: TemplateContext) -> str:
    """``query`` with each placeholder replaced by its value, encoded for where it stands."""
    lexer = _Lexer()
    parts: list[str] = []
    for literal, placeholder, function in _split(query):
        lexer.feed(literal)
        parts.append(literal)
        if placeholder is not None:
            value = _encode(placeholder, function(ctx.lookup(placeholder)), lexer)
            lexer.feed(value)
            parts.append(value)
    return "".join(parts)


def _split(query: str) -> Iterator[tuple[str, str | None, Callable[[str], str]]]:
    """(text, placeholder that follows it, the function its value goes through), the last with no placeholder."""
    start = 0
    for action in _ACTION.finditer(query):
        placeholder = _PLACEHOLDER.fullmatch(action.group(1))
        if placeholder is None:
            raise TemplateError(f"unsupported template action {action.group(0)!r}; "
                                f"use a placeholder such as {{{{ target }}}} or {{{{ variables.KEY }}}}")
        name = placeholder.group(2)
        if name is not None and name not in _FUNCTIONS:
            raise TemplateError(f"unsupported template action {action.group(0)!r}: no function {name!r}; "
                                f"functions: {', '.join(sorted(_FUNCTIONS))}")
        yield query[start:action.start()], placeholder.group(1), _FUNCTIONS[name] if name else str
        start = action.end()
    rest = query[start:]
    if "{{" in rest:
        raise TemplateError(f"unclosed template action at {rest[rest.index('{{'):][:40]!r}")
    yield rest, None, str


@dataclass
class _Lexer:
    """Just enough of PromQL's lexer to know whether the next character is in a string, and which."""

    mode: Literal["code", "string", "comment"] = "code"
    quote: str = ""
    regex: bool = False
    escaping: bool = False
    brackets: int = 0
    last_two: str = ""

    def feed(self, text: str) -> None:
        for ch in text:
            self._step(ch)

    def _step(self, ch: str) -> None:
        if self.mode == "string":
            if self.escaping:
                self.escaping = False
            elif ch == "\\" and self.quote != "`":
                self.escaping = True
            elif ch == self.quote:
                self.mode, self.last_two = "code", ch
        elif self.mode == "comment":
            if ch in "\r\n":
                self.mode = "code"
        elif ch in "\"'`":
            self.mode, self.quote = "string", ch
            self.regex = self.last_two in ("=~", "!~")
        elif ch == "#":
            self.mode = "comment"
        elif not ch.isspace():
            self.brackets = max(0, self.brackets + (ch == "[") - (ch == "]"))
            self.last_two = (self.last_two + ch)[-2:]


def _encode(placeholder: str, value: str, lexer: _Lexer) -> str:
    where = f'template variable "{placeholder}"'
    if lexer.mode == "string":
        if lexer.escaping:
            raise TemplateError(f"{where} follows a backslash in a string literal")
        text = "".join("\\" + ch if ch in _REGEX_SPECIAL else ch for ch in value) if lexer.regex else value
        return _quote(text, lexer.quote, where)
    if lexer.mode == "comment":
        if "\n" in value or "\r" in value:
            raise TemplateError(f"{where} is in a comment, so its value must not hold a line break, got {value!r}")
        return value
    if lexer.brackets:
        if not _DURATION.fullmatch(value):
            raise TemplateError(f"{where} is inside [...], so its value must be a duration like 30s or 1m, "
                                f"got {value!r}")
        return value
    if not any(p.fullmatch(value) for p in (_IDENTIFIER, _NUMBER, _DURATION)):
        raise TemplateError(f"{where} is outside a string literal, so its value must be an identifier, "
                            f"number or duration, got {value!r}; put it in quotes if it is a label value")
    return value


def _quote(text: str, quote: str, where: str) -> str:
    """``text`` as the inside of a PromQL string literal opened with ``quote``."""
    if any(0xD800 <= ord(ch) <= 0xDFFF for ch in text):
        raise TemplateError(f"{where} holds a lone surrogate, which is not valid Unicode")
    if quote == "`":
        # Raw strings have no escapes: the only value that can't go in is one that would close it.
        if "`" in text:
            raise TemplateError(f"{where} is in a `raw string` and its value holds a backquote: {text!r}")
        return text
    return "".join(_escape_char(ch, quote) for ch in text)


def _escape_char(ch: str, quote: str) -> str:
    if ch in ("\\", quote):
        return "\\" + ch
    if ch in _NAMED_ESCAPES:
        return _NAMED_ESCAPES[ch]
    if not ch.isprintable():
        return f"\\u{ord(ch):04x}" if ord(ch) <= 0xFFFF else f"\\U{ord(ch):08x}"
    return ch
