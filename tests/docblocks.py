"""Code blocks of the Markdown docs and the shell commands in them, for the tests that keep the docs true.

tests/unit/test_docs.py checks every block (YAML parses and validates, ``canary`` commands parse with the real
CLI, ``make`` targets and repository paths exist); tests/e2e/test_examples.py runs the blocks of each example's
README that a marker ``<!-- test: run -->`` (or ``setup``, ``cleanup``, ``skip``) on the line before the fence
names.
"""

from __future__ import annotations

import itertools
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

MARKERS = ("run", "setup", "cleanup", "skip")
"""``run``: the test runs it as written; ``setup``: a step the test provides itself (the local stack, the
controller it starts from the block's ``canary controller`` line); ``cleanup``: run after the outcome is checked;
``skip``: not part of the walk-through (tests/unit/test_docs.py still parses its commands)."""

_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>```+)(?P<info>[^`]*)$")
_MARKER = re.compile(r"^\s*<!--\s*test:\s*(?P<kind>[\w-]+)\s*-->\s*$")
_OPERATORS = {"&&", "||", ";", "|", "&", ";;", "|&"}
# Redirections with their target: `> file`, `2>&1`, `&> log`, `< in`; heredocs are not used in the docs.
_REDIRECTION = re.compile(r"(?<![\w=])(\d*|&)(>>?|<)(&\d+|\s*[^\s;&|]+)")
_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
_PLACEHOLDER = re.compile(r"<[A-Za-z][\w ./:-]*>|\.\.\.|…")
_OPTIONAL = re.compile(r"\[([^\[\]]*)\]")
_SUBSTITUTION = re.compile(r"\$\(([^()]*)\)")
_CANARY_PREFIXES = (("canary",), ("kubectl", "canary"), ("kubectl-canary",), ("python", "-m", "canary"),
                    ("python3", "-m", "canary"))


@dataclass(frozen=True)
class Block:
    """One fenced code block: where it is, its language, its text and its test marker ("" when unmarked)."""

    path: Path
    line: int
    lang: str
    text: str
    marker: str

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(REPO)}:{self.line}"


def blocks(path: Path) -> list[Block]:
    """The fenced code blocks of a Markdown file, in order."""
    found: list[Block] = []
    lines = path.read_text().splitlines()
    index = 0
    while index < len(lines):
        opening = _FENCE.match(lines[index])
        if opening is None:
            index += 1
            continue
        indent, fence = opening["indent"], opening["fence"]
        start = index
        body: list[str] = []
        index += 1
        while index < len(lines) and not lines[index].strip().startswith(fence):
            line = lines[index]
            body.append(line[len(indent):] if line.startswith(indent) else line.lstrip())
            index += 1
        previous = next((lines[i] for i in range(start - 1, -1, -1) if lines[i].strip()), "")
        marker = _MARKER.match(previous)
        info = opening["info"].strip().split()
        found.append(Block(path=path, line=start + 1, lang=info[0].lower() if info else "", text="\n".join(body) + "\n",
                           marker=marker["kind"] if marker else ""))
        index += 1
    return found


def logical_lines(text: str) -> list[str]:
    """Shell command lines: ``\\`` continuations and lines inside an open quote joined, comments dropped."""
    result: list[str] = []
    pending = ""
    for raw in text.splitlines():
        pending += raw
        if pending.endswith("\\"):
            pending = pending[:-1] + " "
            continue
        try:
            words = shlex.split(pending, comments=True)
        except ValueError:  # an open quote: the command goes on on the next line
            pending += "\n"
            continue
        if words:
            result.append(_without_comment(pending).strip())
        pending = ""
    if pending.strip():
        result.append(pending.strip())
    return result


def _without_comment(line: str) -> str:
    """The line up to an unquoted ``#`` that starts a word."""
    quote = ""
    for position, char in enumerate(line):
        if quote:
            if char == quote:
                quote = ""
        elif char in "'\"":
            quote = char
        elif char == "#" and (position == 0 or line[position - 1].isspace()):
            return line[:position]
    return line


def without_redirections(line: str) -> str:
    """The command line without its redirections (``> log 2>&1``) and a trailing ``&``."""
    return _REDIRECTION.sub(" ", line).strip().removesuffix("&").strip()


def has_placeholder(line: str) -> bool:
    """Whether the line holds a placeholder a reader replaces (``<name>``, ``...``), so it cannot be parsed."""
    return _PLACEHOLDER.search(_SUBSTITUTION.sub("", line)) is not None


def simple_commands(line: str) -> list[list[str]]:
    """The simple commands of a line, each as its words: split at ``&&``, ``|``, ``;`` and ``&``, redirections and
    leading ``VAR=value`` assignments dropped, and the commands inside ``$(...)`` included."""
    commands: list[list[str]] = []
    for inner in _SUBSTITUTION.findall(line):
        commands += simple_commands(inner)
    lexer = shlex.shlex(_REDIRECTION.sub(" ", line), posix=True, punctuation_chars="();<>|&")
    lexer.whitespace_split = True
    current: list[str] = []
    for word in lexer:
        if word in _OPERATORS or word in ("(", ")"):
            if current:
                commands.append(current)
            current = []
        elif current or not _ASSIGNMENT.match(word):
            current.append(word)
    if current:
        commands.append(current)
    return commands


def canary_arguments(words: list[str]) -> list[str] | None:
    """The arguments after ``canary`` (or ``.venv/bin/canary``, ``kubectl canary``, ``python -m canary``), or None
    when the command is not ours."""
    if not words:
        return None
    head = [Path(words[0]).name, *words[1:3]]
    for prefix in _CANARY_PREFIXES:
        if tuple(head[:len(prefix)]) == prefix:
            return words[len(prefix):]
    return None


def optional_variants(line: str, *, limit: int = 16) -> list[str]:
    """The line with each ``[optional]`` group left out or written in, and ``[a | b]`` as each alternative."""
    groups = _OPTIONAL.findall(line)
    if not groups:
        return [line]
    parts = _OPTIONAL.split(line)
    choices = [["", *(alternative.strip() for alternative in group.split("|"))] for group in groups]
    variants = []
    for picked in itertools.islice(itertools.product(*choices), limit):
        text = parts[0]
        for choice, rest in zip(picked, parts[2::2], strict=True):
            text += f" {choice} {rest}"
        variants.append(" ".join(text.split()))
    return variants


def docs() -> list[Path]:
    """The Markdown files whose code blocks must stay true: README.md, docs/*.md and examples/*/README.md."""
    return [REPO / "README.md", *sorted((REPO / "docs").glob("*.md")), *sorted((REPO / "examples").glob("*/README.md"))]
