"""Helm for the Git sync: where the ``helm`` binary is, and ``helm template`` of a chart kept in Git.

``canary.gitsync.render`` calls :func:`template` for every folder with a Chart.yaml under a source's
paths, with that chart's settings (:class:`HelmChart`, from the sources file; defaults otherwise).
Helm is found by :func:`locate`: the ``CANARY_HELM`` variable, else the binary that ``canary local
build`` builds from the pinned module in tools/helm (in a checkout of this project), else ``helm``
on PATH.

helm runs as an argument list with a timeout and a home of its own, so no user's repositories,
plugins or registry logins take part; ``helm template`` reads only the chart's folder and the
values files, and talks to no cluster or registry: a chart's dependencies must be in its
``charts/`` folder in Git, as the commit alone decides what is applied.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from canary.errors import PermanentError
from canary.gitsync import pinned

HELM_ENV = "CANARY_HELM"
MODULE_DIR = pinned.REPO_ROOT / "tools" / "helm"
HELM_MODULE = "helm.sh/helm/v3"
HELM_PACKAGE = f"{HELM_MODULE}/cmd/helm"
CHART_FILE = "Chart.yaml"
DEFAULT_NAMESPACE = "default"
HELM_TIMEOUT = 60.0
RELEASE_NAME = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
RELEASE_NAME_MAX = 53  # helm's own limit: release names end up in labels with suffixes
_SOURCE_LINE = re.compile(r"^# Source: (?P<path>.+)$", re.MULTILINE)
_SEPARATOR = re.compile(r"^---[ \t]*$", re.MULTILINE)
_HINT = re.compile(r"^Use --debug flag")


class HelmError(PermanentError):
    """helm is missing or refused a chart; the message says which and why."""


@dataclass(frozen=True)
class HelmChart:
    """How one chart kept in Git is rendered: like a Flux HelmRelease of a chart in a GitRepository.

    ``path`` is the chart's folder relative to the repository. Values are merged as Helm merges
    them: the chart's values.yaml, then ``values_files`` (relative to the repository) in order,
    then the inline ``values``.
    """

    path: str
    release_name: str | None = None  # default: the chart's name, from its Chart.yaml
    namespace: str = DEFAULT_NAMESPACE
    values: Mapping[str, Any] = field(default_factory=dict, hash=False)
    values_files: tuple[str, ...] = ()


@dataclass(frozen=True)
class Template:
    """The output of one template file of a chart: its path relative to the repository, and its YAML text."""

    path: str
    text: str


def cache_root() -> Path:
    """The same root as the control plane's binaries (``canary.local.binaries.cache_root``)."""
    return pinned.cache_root()


def pinned_version(module_dir: Path = MODULE_DIR) -> str:
    """The version of Helm that tools/helm/go.mod pins, e.g. ``v3.22.0``."""
    return _required(module_dir, HELM_MODULE)


def kubernetes_minor(module_dir: Path = MODULE_DIR) -> str:
    """The Kubernetes minor version Helm is built against (its client-go's), as Helm's Makefile derives it."""
    return _required(module_dir, "k8s.io/client-go").lstrip("v").split(".")[1]


def _required(module_dir: Path, module: str) -> str:
    version = pinned.required_version(module_dir, module)
    if version is None:
        raise HelmError(f"{module_dir / 'go.mod'}: no version of {module}")
    return version


def built_path(module_dir: Path = MODULE_DIR, platform: str | None = None) -> Path:
    """Where ``canary local build`` puts helm: a folder named after the pin and a hash of the module
    (``canary.gitsync.pinned.built_path``; ``platform`` such as ``linux/arm64`` for another machine's)."""
    return pinned.built_path("helm", module_dir, pinned_version(module_dir), platform)


def locate() -> Path | None:
    """The helm to run: ``CANARY_HELM``, else the one built from tools/helm, else ``helm`` on PATH."""
    return pinned.locate(HELM_ENV, "helm", lambda: built_path() if (MODULE_DIR / "go.mod").is_file() else None,
                         HelmError)


def chart_name(folder: Path) -> str:
    """The ``name`` of the chart in ``folder``, from its Chart.yaml."""
    try:
        meta = yaml.safe_load((folder / CHART_FILE).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError, ValueError, RecursionError) as exc:
        raise HelmError(f"{CHART_FILE}: cannot read: {exc}") from exc
    name = meta.get("name") if isinstance(meta, dict) else None
    if not isinstance(name, str) or not name:
        raise HelmError(f"{CHART_FILE}: has no name")
    return name


def release_name(chart: HelmChart, name: str) -> str:
    """The release name: the chart's settings', else the chart's ``name``; a valid Helm release name."""
    release = chart.release_name or name
    if not re.match(RELEASE_NAME, release) or len(release) > RELEASE_NAME_MAX:
        raise HelmError(f"release name {release!r} is not a valid Helm release name (lowercase letters, digits "
                        f"and '-', at most {RELEASE_NAME_MAX} characters); set releaseName in the chart's settings")
    return release


def template(folder: Path, *, root: Path, label: str, chart: HelmChart, values_files: Sequence[Path],
             timeout: float = HELM_TIMEOUT) -> list[Template]:
    """``helm template`` of the chart in ``folder`` (``label`` is its path in the repository).

    Raises ``HelmError`` naming what failed, with files named by their paths in the repository.
    """
    helm = locate()
    if helm is None:
        raise HelmError(f"is a Helm chart ({CHART_FILE}), which needs helm: set {HELM_ENV}, run `canary local "
                        "build` in a checkout of canary-delivery, or put helm on PATH")
    name = chart_name(folder)
    with tempfile.TemporaryDirectory(prefix="canary-helm-") as scratch:
        home = Path(scratch)
        argv = [str(helm), "template", release_name(chart, name), str(folder), "--namespace", chart.namespace,
                "--include-crds", "--skip-tests"]
        for path in values_files:
            argv += ["--values", str(path)]
        if chart.values:
            inline = home / "inline-values.yaml"
            inline.write_text(json.dumps(chart.values))  # JSON is YAML, and cannot carry tags
            argv += ["--values", str(inline)]
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False,
                                  env=_environment(home), cwd=home)
        except subprocess.TimeoutExpired as exc:
            raise HelmError(f"`helm template` did not finish within {timeout:g}s") from exc
    if done.returncode != 0:
        # One line, without helm's hint about its own flags; files named as in the repository.
        lines = [line.strip() for line in done.stderr.splitlines() if line.strip() and not _HINT.match(line)]
        message = "; ".join(lines).replace(f"{root}{os.sep}", "") or f"exit code {done.returncode}"
        raise HelmError(f"`helm template` failed: {_in_repository(message, name, label)}")
    return split_output(done.stdout, label=label)


def _environment(home: Path) -> dict[str, str]:
    """Only PATH from our environment; every Helm folder in the scratch home."""
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home),
            "HELM_CACHE_HOME": str(home / "cache"), "HELM_CONFIG_HOME": str(home / "config"),
            "HELM_DATA_HOME": str(home / "data"), "KUBECONFIG": os.devnull, "LC_ALL": "C"}


def _in_repository(message: str, name: str, label: str) -> str:
    """helm names a chart's files ``<chart name>/templates/...``; name them by their folder in the repository."""
    prefix = "" if label == "." else f"{label}/"
    return re.sub(rf"(?<![\w./-]){re.escape(name)}/", prefix, message)


def split_output(text: str, *, label: str) -> list[Template]:
    """helm's output cut into its templates' texts (each headed ``# Source: <chart>/<file>``).

    helm names a template by the chart's name, not its folder; ``label`` (the folder in the
    repository) replaces that first component, so a template is named by its real path.
    """
    found = []
    for chunk in _SEPARATOR.split(text):
        source = _SOURCE_LINE.search(chunk)
        if source is None:
            if chunk.strip():
                found.append(Template(path=label, text=chunk))
            continue
        inside = source.group("path").strip().partition("/")[2]
        found.append(Template(path=f"{label}/{inside}" if label != "." else inside, text=chunk))
    return found
