"""Turns the manifests of a checked-out commit into Kubernetes objects, each with its source.

Called by the sync (``canary.gitsync.apply`` through the sync loop and ``canary sync``) with the
repository's folder and the configured paths. Every .yaml, .yml and .json file under a path is
read in sorted order of its path; a folder holding a kustomization is built with ``kustomize
build`` (or ``kubectl kustomize``) instead of reading its files. Rendering goes on after a
problem so that one ``RenderError`` reports every broken file at once: a commit with any problem
must apply nothing, and its author should see all of them in one go.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from canary.errors import PermanentError
from canary.kube import Obj

MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")
KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
# A kustomization's entries that name files or folders it loads.
_KUSTOMIZE_PATH_FIELDS = ("resources", "bases", "components")
KUSTOMIZE_TIMEOUT = 60.0


@dataclass(frozen=True)
class Source:
    """Where a rendered object came from: a file (or kustomize folder) relative to the root, and
    its document's position there, counting from 1."""

    file: str
    document: int

    def __str__(self) -> str:
        return f"{self.file}, document {self.document}"


@dataclass(frozen=True)
class RenderedObject:
    """One Kubernetes object as written in Git."""

    body: Obj
    source: Source


@dataclass(frozen=True)
class Rendered:
    """Every object of a render, in file order and then document order."""

    objects: tuple[RenderedObject, ...]


class RenderError(PermanentError):
    """The manifests are broken; ``problems`` lists each one, naming the file and document."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = tuple(problems)
        super().__init__(f"{len(self.problems)} problem(s) in the manifests:\n" + "\n".join(
            f"  - {p}" for p in self.problems))


def render(root: Path, paths: Sequence[str], *, kustomize_timeout: float = KUSTOMIZE_TIMEOUT) -> Rendered:
    """Render every manifest under ``paths`` (relative to ``root``); raise ``RenderError`` on any problem."""
    root = root.resolve()
    problems: list[str] = []
    units: dict[str, Path] = {}
    for path in paths:
        for unit in _units(root, path, problems):
            units.setdefault(_relative(root, unit), unit)
    objects: list[RenderedObject] = []
    for name in sorted(units):
        unit = units[name]
        if unit.is_dir():
            documents = _kustomize(root, unit, name, problems, timeout=kustomize_timeout)
            label = f"{name} (kustomize build)"
        else:
            documents = _documents(unit, name, problems)
            label = name
        for index, body in documents:
            where = Source(label, index)
            missing = _missing_fields(body)
            if missing:
                problems.append(f"{where}: missing {', '.join(missing)}")
                continue
            objects.append(RenderedObject(body=body, source=where))
    if problems:
        raise RenderError(problems)
    return Rendered(objects=tuple(objects))


def _relative(root: Path, path: Path) -> str:
    return path.relative_to(root).as_posix() or "."


def _inside(root: Path, path: Path) -> bool:
    return path == root or root in path.parents


def _units(root: Path, path: str, problems: list[str]) -> Iterator[Path]:
    """The manifest files and kustomize folders under ``path``, symlinks resolved and confined to root."""
    start = (root / path).resolve()
    if not _inside(root, start):
        problems.append(f"{path}: resolves to {start}, outside the repository")
        return
    if not start.exists():
        problems.append(f"{path}: no such file or folder in the repository")
        return
    if start.is_file():
        yield start
        return
    yield from _walk(root, start, problems, seen=set())


def _walk(root: Path, folder: Path, problems: list[str], *, seen: set[Path]) -> Iterator[Path]:
    if folder in seen:  # a symlink loop inside the repository
        return
    seen.add(folder)
    if any((folder / name).is_file() for name in KUSTOMIZATION_FILES):
        yield folder
        return
    for entry in sorted(folder.iterdir()):
        if entry.name.startswith("."):
            continue  # .git and editor files are not manifests
        real = entry.resolve()
        if not _inside(root, real):
            if entry.is_dir() or entry.suffix in MANIFEST_SUFFIXES:
                problems.append(f"{_relative(root, folder / entry.name)}: a symlink to {real}, outside the repository")
            continue
        if real.is_dir():
            yield from _walk(root, real, problems, seen=seen)
        elif real.is_file() and entry.suffix in MANIFEST_SUFFIXES:
            # The real path, so a file linked twice inside the repository renders once.
            yield real


def _documents(path: Path, name: str, problems: list[str]) -> list[tuple[int, Obj]]:
    """The non-empty documents of one file with their positions; problems recorded, not raised."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        problems.append(f"{name}: cannot read: {exc}")
        return []
    if path.suffix == ".json":
        try:
            return _mappings([json.loads(text)], name, problems)
        except json.JSONDecodeError as exc:
            problems.append(f"{name}, document 1: JSON error at line {exc.lineno}: {exc.msg}")
        except (ValueError, RecursionError) as exc:
            problems.append(f"{name}, document 1: JSON error: {_unparsable(exc)}")
        return []
    return _yaml_documents(text, name, problems)


def _yaml_documents(text: str, name: str, problems: list[str]) -> list[tuple[int, Obj]]:
    loaded: list[Any] = []
    try:
        for document in yaml.safe_load_all(text):
            loaded.append(document)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        problems.append(f"{name}, document {len(loaded) + 1}: YAML error{line}: {problem}")
    except (ValueError, RecursionError) as exc:
        problems.append(f"{name}, document {len(loaded) + 1}: YAML error: {_unparsable(exc)}")
    return _mappings(loaded, name, problems)


def _unparsable(exc: ValueError | RecursionError) -> str:
    """What the parsers raise besides their own errors: PyYAML hands a scalar that looks like a date or
    a number to ``datetime``, ``int`` or ``float``, which may refuse it (2001-13-45, 5000 digits), and
    both parsers recurse once per level of nesting."""
    return "nested too deeply" if isinstance(exc, RecursionError) else f"a value that cannot be read: {exc}"


def _mappings(documents: list[Any], name: str, problems: list[str]) -> list[tuple[int, Obj]]:
    found = []
    for index, document in enumerate(documents, start=1):
        if document is None:
            continue  # "---" separators around nothing, comments only
        if not isinstance(document, dict):
            problems.append(f"{name}, document {index}: expected a mapping (an object), got {type(document).__name__}")
            continue
        found.append((index, document))
    return found


def _missing_fields(body: Obj) -> list[str]:
    missing = [field for field in ("apiVersion", "kind") if not isinstance(body.get(field), str) or not body[field]]
    metadata = body.get("metadata")
    name = metadata.get("name") if isinstance(metadata, dict) else None
    if not isinstance(name, str) or not name:
        missing.append("metadata.name")
    return missing


def kustomize_command() -> list[str] | None:
    """The command that builds a kustomization: ``kustomize build``, else ``kubectl kustomize``."""
    if (kustomize := shutil.which("kustomize")) is not None:
        return [kustomize, "build"]
    if (kubectl := shutil.which("kubectl")) is not None:
        return [kubectl, "kustomize"]
    return None


def _kustomize(root: Path, folder: Path, name: str, problems: list[str], *, timeout: float) -> list[tuple[int, Obj]]:
    escapes = _escaping_entries(root, folder, name)
    if escapes:
        problems.extend(escapes)
        return []
    command = kustomize_command()
    if command is None:
        problems.append(f"{name}: has a kustomization, which needs `kustomize` or `kubectl` on PATH; neither was found")
        return []
    try:
        done = subprocess.run([*command, str(folder)], capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        problems.append(f"{name}: `{' '.join(command[-2:])}` did not finish within {timeout:g}s")
        return []
    if done.returncode != 0:
        problems.append(f"{name}: `{' '.join(command[-2:])}` failed: {done.stderr.strip() or done.returncode}")
        return []
    return _yaml_documents(done.stdout, f"{name} (kustomize build)", problems)


def _escaping_entries(root: Path, folder: Path, name: str) -> list[str]:
    """Entries of a kustomization that load from outside the repository (or from the network).

    kustomize confines files to the kustomization's folder but not the folders of bases, so a
    base could name any folder on the controller's disk; a render must depend on the commit alone.
    """
    path = next(folder / n for n in KUSTOMIZATION_FILES if (folder / n).is_file())
    try:
        kustomization = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        return [f"{name}/{path.name}: cannot read: {exc}"]
    except (ValueError, RecursionError) as exc:
        return [f"{name}/{path.name}: YAML error: {_unparsable(exc)}"]
    if not isinstance(kustomization, dict):
        return [f"{name}/{path.name}: expected a mapping"]
    problems = []
    for field in _KUSTOMIZE_PATH_FIELDS:
        entries = kustomization.get(field) or []
        for entry in entries if isinstance(entries, list) else []:
            if not isinstance(entry, str):
                continue
            if "://" in entry or entry.startswith(("github.com/", "git@")):
                problems.append(f"{name}/{path.name}: {field} entry {entry!r} is remote; only files in the "
                                "repository may be rendered")
            elif not _inside(root, (folder / entry).resolve()):
                problems.append(f"{name}/{path.name}: {field} entry {entry!r} resolves outside the repository")
    return problems
