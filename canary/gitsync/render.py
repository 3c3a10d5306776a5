"""Turns the manifests of a checked-out commit into Kubernetes objects, each with its source.

Called by the sync (``canary.gitsync.apply`` through the sync loop and ``canary sync``) with the
repository's folder, the configured paths and the settings of its Helm charts. Every .yaml, .yml
and .json file under a path is read in sorted order of its path; a folder holding a kustomization
is built with ``kustomize build`` or ``kubectl kustomize`` (``canary.gitsync.kustomize``), and a folder
holding a Chart.yaml with ``helm template`` (``canary.gitsync.helm``), instead of reading its files.
Rendering goes on after a problem so that one ``RenderError`` reports every broken file at once: a
commit with any problem must apply nothing, and its author should see all of them in one go.

A ``DocumentCache`` (one per source, kept by the sync loop) keeps each plain file's parsed objects by
the digest of its bytes, so that a commit changing one file of thousands parses one file: rendered
objects are shared with the cache, never copied, and so never mutated by their readers.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import os
import stat
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from canary.errors import PermanentError
from canary.gitsync import kustomize
from canary.gitsync.helm import CHART_FILE, HELM_TIMEOUT, HelmChart, HelmError, template
from canary.gitsync.inventory import ObjectRef
from canary.gitsync.kustomize import KUSTOMIZE_ENV, KustomizeError
from canary.kube import Obj

MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")
KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
RACY_SECONDS = 2  # see DocumentCache
# libyaml's parser (with PyYAML's safe constructor) reads a tree of thousands of files five times faster.
_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
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


def digest(body: Obj) -> str:
    """A short digest of a manifest's content (its canonical JSON): equal manifests, equal digests."""
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()[:16]).decode().rstrip("=")


@dataclass(frozen=True)
class RenderedObject:
    """One Kubernetes object as written in Git; ``body`` is shared (with the render cache) and never changed."""

    body: Obj
    source: Source

    @functools.cached_property
    def ref(self) -> ObjectRef:
        """The object's address, worked out once."""
        return ObjectRef.of(self.body)

    @functools.cached_property
    def digest(self) -> str:
        """The digest of ``body`` (``digest``), worked out once."""
        return digest(self.body)


@dataclass(frozen=True)
class _Parsed:
    """One file as the cache keeps it: the digest of its bytes, what ``stat`` said of it, when it was read,
    and its objects."""

    key: bytes
    stat: tuple[int, int, int, int]
    read_at: int
    objects: tuple[RenderedObject, ...]


@dataclass
class DocumentCache:
    """The objects of each plain manifest file rendered last time, by the file's name and the digest of its
    bytes; files with problems are not kept (their problems are reported at every render).

    A file whose inode, size, modification and change times are those it had when it was read is
    not even read again, like the entries of Git's index; unless it changed within ``RACY_SECONDS``
    before that read, since a write in the same tick of the file system's clock would leave its
    times as they were (Git's "racily clean" files).
    """

    files: dict[str, _Parsed] = field(default_factory=dict)


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


def render(root: Path, paths: Sequence[str], *, charts: Sequence[HelmChart] = (),
           kustomize_timeout: float = KUSTOMIZE_TIMEOUT, helm_timeout: float = HELM_TIMEOUT,
           cache: DocumentCache | None = None) -> Rendered:
    """Render every manifest under ``paths`` (relative to ``root``), each chart with its settings from
    ``charts`` (by path; defaults for a chart not listed); raise ``RenderError`` on any problem. Plain
    files unchanged since the render that filled ``cache`` are not parsed again."""
    root = root.resolve()
    problems: list[str] = []
    units: dict[str, Path] = {}
    for path in paths:
        for unit in _units(root, path, problems):
            units.setdefault(_relative(root, unit), unit)
    settings = {_normal(chart.path): chart for chart in charts}
    objects: list[RenderedObject] = []
    kept: dict[str, _Parsed] = {}
    for name in sorted(units):
        unit = units[name]
        try:
            status = unit.stat()
        except OSError as exc:
            problems.append(f"{name}: cannot read: {exc}")
            continue
        if not stat.S_ISDIR(status.st_mode):
            objects.extend(_file_objects(unit, status, name, problems, cached=cache.files if cache else {}, kept=kept))
            continue
        if (unit / CHART_FILE).is_file():
            documents = _helm(root, unit, name, settings.pop(name, HelmChart(path=name)), problems,
                              timeout=helm_timeout)
        else:
            documents = [(Source(f"{name} (kustomize build)", index), body)
                         for index, body in _kustomize(root, unit, name, problems, timeout=kustomize_timeout)]
        for where, body in documents:
            missing = _missing_fields(body)
            if missing:
                problems.append(f"{where}: missing {', '.join(missing)}")
                continue
            objects.append(RenderedObject(body=body, source=where))
    for path in settings:
        problems.append(f"{path}: the source's charts name it, but there is no chart (a folder with {CHART_FILE}) "
                        "there under the source's paths")
    if cache is not None:
        cache.files = kept  # files gone from the tree leave the cache
    if problems:
        raise RenderError(problems)
    return Rendered(objects=tuple(objects))


def _file_objects(path: Path, status: os.stat_result, name: str, problems: list[str], *,
                  cached: dict[str, _Parsed], kept: dict[str, _Parsed]) -> tuple[RenderedObject, ...]:
    """The objects of one manifest file: from ``cached`` when it is the same file (see ``DocumentCache``),
    else parsed (and put in ``kept`` when it has no problem)."""
    hit = cached.get(name)
    seen = (status.st_ino, status.st_size, status.st_mtime_ns, status.st_ctime_ns)
    if hit is not None and hit.stat == seen and status.st_ctime_ns < hit.read_at - RACY_SECONDS * 1_000_000_000:
        kept[name] = hit
        return hit.objects
    read_at = time.time_ns()
    try:
        data = path.read_bytes()
    except OSError as exc:
        problems.append(f"{name}: cannot read: {exc}")
        return ()
    key = hashlib.sha256(data).digest()
    if hit is not None and hit.key == key:
        kept[name] = _Parsed(key, seen, read_at, hit.objects)
        return hit.objects
    before = len(problems)
    found = []
    for index, body in _documents(path, data, name, problems):
        missing = _missing_fields(body)
        if missing:
            problems.append(f"{Source(name, index)}: missing {', '.join(missing)}")
        else:
            found.append(RenderedObject(body=body, source=Source(name, index)))
    if len(problems) == before:
        kept[name] = _Parsed(key, seen, read_at, tuple(found))
    return tuple(found)


def _normal(path: str) -> str:
    """A chart's path as ``_relative`` names folders: no ./, no trailing slash."""
    return PurePosixPath(path).as_posix() or "."


def _relative(root: Path, path: Path) -> str:
    # The strings, not pathlib's relative_to: a render names thousands of files, and both are resolved
    # paths, ``path`` inside ``root``.
    text, prefix = str(path), str(root)
    if text == prefix:
        return "."
    if text.startswith(prefix + os.sep):
        return text[len(prefix) + 1:].replace(os.sep, "/")
    return path.relative_to(root).as_posix()


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
    if (folder / CHART_FILE).is_file() or any((folder / name).is_file() for name in KUSTOMIZATION_FILES):
        yield folder  # rendered by helm or kustomize as a whole; its files are not manifests
        return
    with os.scandir(folder) as listing:
        found = sorted(listing, key=lambda e: e.name)
    for item in found:
        if item.name.startswith("."):
            continue  # .git and editor files are not manifests
        entry = folder / item.name
        if not item.is_symlink():
            # ``folder`` is a real path, so an entry that is no symlink is real too (no resolve: a
            # tree of thousands of files would pay a system call per part of each path).
            if item.is_dir(follow_symlinks=False):
                yield from _walk(root, entry, problems, seen=seen)
            elif item.is_file(follow_symlinks=False) and entry.suffix in MANIFEST_SUFFIXES:
                yield entry
            continue
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


def _documents(path: Path, data: bytes, name: str, problems: list[str]) -> list[tuple[int, Obj]]:
    """The non-empty documents of one file (its bytes ``data``) with their positions; problems recorded, not
    raised."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
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
    try:
        return _mappings(list(yaml.load_all(text, Loader=_LOADER)), name, problems)
    except (yaml.YAMLError, ValueError, RecursionError):
        # Read it again with PyYAML's own parser, whose messages (and the documents read before the
        # problem) are the ones to report; only broken files pay for the second read.
        return _yaml_documents_slowly(text, name, problems)


def _yaml_documents_slowly(text: str, name: str, problems: list[str]) -> list[tuple[int, Obj]]:
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
    """The command that builds a kustomization: ``kustomize build`` (``CANARY_KUSTOMIZE``, the pinned build,
    or PATH's; ``canary.gitsync.kustomize``), else ``kubectl kustomize``."""
    return kustomize.command()


def _kustomize(root: Path, folder: Path, name: str, problems: list[str], *, timeout: float) -> list[tuple[int, Obj]]:
    escapes = _escaping_entries(root, folder, name)
    if escapes:
        problems.extend(escapes)
        return []
    try:
        command = kustomize_command()
    except KustomizeError as exc:
        problems.append(f"{name}: {exc}")
        return []
    if command is None:
        problems.append(f"{name}: has a kustomization, which needs kustomize: set {KUSTOMIZE_ENV}, run `canary "
                        "local build` in a checkout of canary-delivery, or put `kustomize` or `kubectl` on PATH")
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
    for key in _KUSTOMIZE_PATH_FIELDS:
        entries = kustomization.get(key) or []
        for entry in entries if isinstance(entries, list) else []:
            if not isinstance(entry, str):
                continue
            if "://" in entry or entry.startswith(("github.com/", "git@")):
                problems.append(f"{name}/{path.name}: {key} entry {entry!r} is remote; only files in the "
                                "repository may be rendered")
            elif not _inside(root, (folder / entry).resolve()):
                problems.append(f"{name}/{path.name}: {key} entry {entry!r} resolves outside the repository")
    return problems


def _helm(root: Path, folder: Path, name: str, chart: HelmChart, problems: list[str], *,
          timeout: float) -> list[tuple[Source, Obj]]:
    """The documents of ``helm template`` of a chart, each named by its template's path; objects without
    a namespace get the release's (cluster-scoped ones lose it again when applied)."""
    if any((folder / n).is_file() for n in KUSTOMIZATION_FILES):
        problems.append(f"{name}: has both a {CHART_FILE} and a kustomization; keep one (render the chart from "
                        "the kustomization with helmCharts, or the other way round)")
        return []
    escapes = [f"{name}: {problem}" for problem in _chart_escapes(root, folder)]
    values_files = []
    for entry in chart.values_files:
        path = (root / entry).resolve()
        if not _inside(root, path):
            escapes.append(f"{name}: values file {entry} resolves outside the repository")
        elif not path.is_file():
            problems.append(f"{name}: values file {entry}: no such file in the repository")
        else:
            values_files.append(path)
    if escapes:
        problems.extend(escapes)
        return []
    if len(values_files) < len(chart.values_files):
        return []
    try:
        templates = template(folder, root=root, label=name, chart=chart, values_files=values_files, timeout=timeout)
    except HelmError as exc:
        problems.append(f"{name}: {exc}")
        return []
    documents = []
    counts: dict[str, int] = {}
    for found in templates:
        label = f"{found.path} (helm template)"
        for _, body in _yaml_documents(found.text, label, problems):
            counts[label] = counts.get(label, 0) + 1
            metadata = body.get("metadata")
            if isinstance(metadata, dict) and not metadata.get("namespace"):
                metadata["namespace"] = chart.namespace
            documents.append((Source(label, counts[label]), body))
    return documents


def _chart_escapes(root: Path, folder: Path) -> list[str]:
    """Files and folders of a chart that are symlinks out of the repository: helm follows symlinks, and a
    chart's ``.Files`` would read whatever they point at on the controller's disk."""
    problems = []
    seen: set[Path] = set()
    pending = [folder]
    while pending:
        current = pending.pop()
        if current.resolve() in seen:
            continue
        seen.add(current.resolve())
        for entry in sorted(current.iterdir()):
            real = entry.resolve()
            if not _inside(root, real):
                problems.append(f"{_relative(root, folder)}/{entry.relative_to(folder).as_posix()}: a symlink to "
                                f"{real}, outside the repository")
            elif real.is_dir():
                pending.append(entry)
    return problems
