"""Small, faithful edits of manifest files: the changes between two objects, applied to a document
in Git without disturbing its comments, key order, quoting or indentation.

Used by the ``revert`` rollback policy (``canary.gitsync.rollbacks``): the difference between the
failed and the promoted pod template, both as the API server returns them (defaults included, so
the defaults cancel out), is applied to the Deployment's document in the repository. Lists of
named items (containers, env, volumes, ports with names) are matched by name, so a changed image
edits one line; other lists are replaced whole.
"""

from __future__ import annotations

import difflib
import io
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from canary.errors import PermanentError
from canary.kube import Obj

# (mapping, sequence, offset) indentations seen in Kubernetes manifests; the one that reproduces a
# file best is used to write it back.
_STYLES = ((2, 2, 0), (2, 4, 2), (4, 4, 2), (4, 6, 4))
# Folding widths: PyYAML's and ruamel's default, and none (what people write by hand).
_WIDTHS = (80, 4096)
_DOCUMENT_START = re.compile(r"^---(\s|$)")


class EditError(PermanentError):
    """The file cannot take the edit (for example the document is gone or is not a mapping)."""


@dataclass(frozen=True)
class Named:
    """A list item chosen by its ``name``."""

    name: str

    def __str__(self) -> str:
        return f"[name={self.name}]"


PathItem = str | Named


@dataclass(frozen=True)
class Change:
    """Set the value at ``path`` (or remove it when ``remove``)."""

    path: tuple[PathItem, ...]
    value: Any = None
    remove: bool = False

    def __str__(self) -> str:
        where = "".join(f".{p}" if isinstance(p, str) else str(p) for p in self.path)
        return f"remove {where}" if self.remove else f"set {where}"


def _named(items: Sequence[Any]) -> bool:
    names = [i.get("name") if isinstance(i, Mapping) else None for i in items]
    return bool(items) and all(isinstance(n, str) for n in names) and len(set(names)) == len(names)


def changes(old: Any, new: Any, path: tuple[PathItem, ...] = ()) -> list[Change]:  # noqa: ANN401 - any YAML value
    """What turns ``old`` into ``new``, as few and as deep changes as possible."""
    if isinstance(old, Mapping) and isinstance(new, Mapping):
        found = [c for key in new if key in old for c in changes(old[key], new[key], (*path, str(key)))]
        found += [Change((*path, str(key)), new[key]) for key in new if key not in old]
        found += [Change((*path, str(key)), remove=True) for key in old if key not in new]
        return found
    if isinstance(old, list) and isinstance(new, list) and _named(old) and _named(new):
        before = {i["name"]: i for i in old}
        after = {i["name"]: i for i in new}
        found = [c for name, item in after.items() if name in before
                 for c in changes(before[name], item, (*path, Named(name)))]
        found += [Change((*path, Named(name)), item) for name, item in after.items() if name not in before]
        found += [Change((*path, Named(name)), remove=True) for name in before if name not in after]
        return found
    return [] if old == new else [Change(path, new)]


def _index(items: list[Any], item: Named) -> int | None:
    return next((i for i, x in enumerate(items) if isinstance(x, Mapping) and x.get("name") == item.name), None)


def _step(node: Any, item: PathItem, *, where: str) -> Any:  # noqa: ANN401 - any YAML value
    if isinstance(item, Named):
        index = _index(node, item) if isinstance(node, list) else None
        if index is None:
            raise EditError(f"{where}: no item named {item.name!r}")
        return node[index]
    if not isinstance(node, dict):
        raise EditError(f"{where}: expected a mapping at {item!r}")
    if node.get(item) is None:
        node[item] = {}
    return node[item]


def patch(document: Obj, edits: Sequence[Change], *, where: str) -> None:
    """Apply ``edits`` to ``document`` in place; ``where`` names the document in errors."""
    for change in edits:
        node: Any = document
        for item in change.path[:-1]:
            node = _step(node, item, where=f"{where}, {change}")
        last = change.path[-1]
        if isinstance(last, Named):
            if not isinstance(node, list):
                raise EditError(f"{where}, {change}: expected a list")
            index = _index(node, last)
            if change.remove:
                if index is not None:
                    del node[index]
            elif index is None:
                node.append(change.value)
            else:
                node[index] = change.value
        elif not isinstance(node, dict):
            raise EditError(f"{where}, {change}: expected a mapping")
        elif change.remove:
            node.pop(last, None)
        else:
            node[last] = change.value


def _yaml(style: tuple[int, int, int], *, width: int, explicit_start: bool) -> YAML:
    handler = YAML()
    handler.preserve_quotes = True
    handler.width = width
    handler.explicit_start = explicit_start
    handler.indent(mapping=style[0], sequence=style[1], offset=style[2])
    return handler


def _dump(handler: YAML, document: Any) -> str:  # noqa: ANN401 - any YAML value
    out = io.StringIO()
    handler.dump(document, out)
    return out.getvalue()


def _closest_handler(text: str) -> YAML:
    """The indentation and line width that write the unchanged document back with the fewest differing lines."""
    explicit = _DOCUMENT_START.match(text) is not None

    def distance(handler: YAML) -> int:
        again = _dump(handler, handler.load(text)).splitlines()
        return sum(1 for line in difflib.ndiff(text.splitlines(), again) if line[:1] in "+-")
    return min((_yaml(style, width=width, explicit_start=explicit) for style in _STYLES for width in _WIDTHS),
               key=distance)


def _documents(text: str) -> list[str]:
    """The file cut at its ``---`` lines, each part with its own marker, so that the parts joined are the file."""
    parts: list[list[str]] = [[]]
    for line in text.splitlines(keepends=True):
        if _DOCUMENT_START.match(line) and parts[-1]:
            parts.append([])
        parts[-1].append(line)
    return ["".join(part) for part in parts if part]


def edit_file(name: str, text: str, select: Callable[[Obj], bool], edit: Callable[[Obj], None]) -> str:
    """``text`` (the file ``name``) with ``edit`` applied to the one document ``select`` picks.

    Only that document is written again; the others stay as they were, byte for byte.
    """
    if name.endswith(".json"):
        try:
            document = json.loads(text)
        except ValueError as exc:
            raise EditError(f"{name}: not valid JSON: {exc}") from exc
        if not isinstance(document, dict) or not select(document):
            raise EditError(f"{name}: the object is not in this file")
        edit(document)
        return json.dumps(document, indent=2) + "\n"
    parts = _documents(text)
    try:
        loaded = [YAML().load(part) for part in parts]
    except YAMLError as exc:
        raise EditError(f"{name}: not valid YAML: {exc}") from exc
    picked = [i for i, document in enumerate(loaded) if isinstance(document, dict) and select(document)]
    if len(picked) != 1:
        raise EditError(f"{name}: expected the object once in this file, found it {len(picked)} times")
    index = picked[0]
    handler = _closest_handler(parts[index])
    document = handler.load(parts[index])
    edit(document)
    written = _dump(handler, document)
    if not parts[index].endswith("\n"):
        written = written.rstrip("\n")
    return "".join([*parts[:index], written, *parts[index + 1:]])
