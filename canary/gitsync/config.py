"""From settings to GitSources: the flag-configured source (``default``) and those of a sources
file (``--git-config``), with credentials read from Secrets.

A sources file lists several repositories::

    sources:
      - name: apps              # names the sync-state object canary-gitsync-<name>
        url: ssh://git@git.example.com/apps.git
        branch: main            # or tag, or commit
        paths: [k8s]
        timeout: 90s            # a Go duration, or seconds
        secret: canary-system/apps-git
        gitRollback: revert     # none | pin (default) | revert
        readonly: false
        charts:                 # Helm charts under the paths (folders with a Chart.yaml)
          - path: k8s/podinfo   # the chart's folder in the repository
            releaseName: podinfo        # default: the chart's name
            namespace: apps             # the release's namespace; default: default
            valuesFiles: [k8s/values/prod.yaml]   # in the repository, merged in order
            values: {replicaCount: 3}   # merged last

A chart under the paths that is not listed renders with the defaults.

The Secret (``--git-secret namespace/name``, or the absolute path of a folder where such a Secret
is mounted, one file per key) holds ``identity`` (an SSH private key) with
``known_hosts``, or ``token`` (HTTPS); optionally ``allowed_signers`` (SSH) or ``gpg_keys`` (armored
public keys) to verify commit signatures.
"""

from __future__ import annotations

import base64
from pathlib import Path, PurePosixPath
from typing import Annotated, Any

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic.alias_generators import to_camel

from canary.defaults import CONTROLLER_NAMESPACE, GIT_BRANCH
from canary.errors import PermanentError
from canary.gitsync.helm import DEFAULT_NAMESPACE, RELEASE_NAME, RELEASE_NAME_MAX, HelmChart
from canary.gitsync.inventory import StateKind
from canary.gitsync.rollbacks import DEFAULT_AUTHOR
from canary.gitsync.source import GitCredentials, GitSource, RollbackPolicy, SignatureCheck
from canary.kube.client import Kube
from canary.models.base import Seconds

DEFAULT_SOURCE = "default"
# namespace/name of a Secret, or the absolute path of a folder holding one file per key.
SECRET_PATTERN = r"^([a-z0-9-]+/[a-z0-9.-]+|/.+)$"  # noqa: S105 - a pattern, not a password
SECRET_KEYS = ("identity", "known_hosts", "token", "allowed_signers", "gpg_keys")


class GitSettings(BaseModel):
    """One Git source from the controller's flags (``--git-*``); absent when ``url`` is None."""

    model_config = ConfigDict(frozen=True)

    url: str | None = None
    branch: str | None = GIT_BRANCH
    tag: str | None = None
    commit: str | None = None
    paths: tuple[str, ...] = (".",)
    poll_interval: Seconds = Field(default=10.0, gt=0)
    sync_interval: Seconds = Field(default=300.0, gt=0)
    timeout: Seconds = Field(default=60.0, gt=0)
    secret: str | None = Field(default=None, pattern=SECRET_PATTERN)
    inventory_namespace: str = CONTROLLER_NAMESPACE
    sync_state: StateKind = "configmap"
    webhook_secret: str | None = Field(default=None, repr=False)
    prune: bool = True
    rollback: RollbackPolicy = "pin"
    readonly: bool = False
    author: str = Field(default=DEFAULT_AUTHOR, pattern=r"^[^<>]+<[^<>\s]+>$")
    sources_file: Path | None = None

    @property
    def enabled(self) -> bool:
        """A source is configured by flags or by a sources file."""
        return self.url is not None or self.sources_file is not None


def _in_repository(path: str) -> str:
    pure = PurePosixPath(path)
    if not path or pure.is_absolute() or ".." in pure.parts:
        raise ValueError(f"{path!r} must be a relative path inside the repository")
    return path


RepositoryPath = Annotated[str, AfterValidator(_in_repository)]


class ChartEntry(BaseModel):
    """How one Helm chart of a source renders: Flux's HelmRelease fields for a chart in a GitRepository."""

    model_config = ConfigDict(frozen=True, extra="forbid", alias_generator=to_camel, populate_by_name=True)

    path: RepositoryPath
    release_name: str | None = Field(default=None, pattern=RELEASE_NAME, max_length=RELEASE_NAME_MAX)
    namespace: str = Field(default=DEFAULT_NAMESPACE, pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", max_length=63)
    values: dict[str, Any] = Field(default_factory=dict)
    values_files: tuple[RepositoryPath, ...] = ()

    def chart(self) -> HelmChart:
        """The settings as the renderer takes them."""
        return HelmChart(path=self.path, release_name=self.release_name, namespace=self.namespace,
                         values=self.values, values_files=self.values_files)


class SourceEntry(BaseModel):
    """One source of a sources file (or of the ``--git-*`` flags, named ``default``)."""

    model_config = ConfigDict(frozen=True, extra="forbid", alias_generator=to_camel, populate_by_name=True)

    name: str = Field(pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", max_length=48)
    url: str
    branch: str | None = GIT_BRANCH
    tag: str | None = None
    commit: str | None = None
    paths: tuple[str, ...] = (".",)
    timeout: Seconds = Field(default=60.0, gt=0)
    secret: str | None = Field(default=None, pattern=SECRET_PATTERN)
    git_rollback: RollbackPolicy = "pin"
    readonly: bool = False
    charts: tuple[ChartEntry, ...] = ()

    @model_validator(mode="after")
    def _one_entry_per_chart(self) -> SourceEntry:
        paths = [PurePosixPath(chart.path).as_posix() for chart in self.charts]
        twice = sorted({p for p in paths if paths.count(p) > 1})
        if twice:
            raise ValueError(f"charts: each chart may be listed once; {', '.join(twice)} is listed more than once")
        return self


class SourcesFile(BaseModel):
    """The ``--git-config`` file."""

    model_config = ConfigDict(extra="forbid")

    sources: list[SourceEntry] = Field(min_length=1)


def load_sources_file(path: Path) -> list[SourceEntry]:
    """The sources listed in ``path``; a problem names the file and the field."""
    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise PermanentError(f"--git-config {path}: cannot read it: {exc}") from exc
    try:
        return SourcesFile.model_validate(raw).sources
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        raise PermanentError(f"--git-config {path}: {problems}") from exc


def entries_from(settings: GitSettings) -> list[SourceEntry]:
    """The flag source (if ``--git-url`` is set) and the sources file's, with unique names."""
    entries = []
    if settings.url is not None:
        entries.append(SourceEntry(name=DEFAULT_SOURCE, url=settings.url, branch=settings.branch, tag=settings.tag,
                                   commit=settings.commit, paths=settings.paths, timeout=settings.timeout,
                                   secret=settings.secret, git_rollback=settings.rollback,
                                   readonly=settings.readonly))
    if settings.sources_file is not None:
        entries += load_sources_file(settings.sources_file)
    names = [e.name for e in entries]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise PermanentError(f"--git-config {settings.sources_file}: sources.name must be unique; "
                             f"{', '.join(twice)} is used more than once (the --git-url source is called "
                             f"{DEFAULT_SOURCE!r})")
    if not entries:
        raise PermanentError("--git-url or --git-config is required for a Git sync")
    return entries


def secret_data(kube: Kube | None, ref: str, *, source: str = DEFAULT_SOURCE) -> dict[str, str]:
    """The decoded data of the Secret ``namespace/name``, or the files of a mounted one."""
    if ref.startswith("/"):
        folder = Path(ref)
        if not folder.is_dir():
            raise PermanentError(f"Git source {source}: secret: {ref} is not a folder")
        return {key: (folder / key).read_text() for key in SECRET_KEYS if (folder / key).is_file()}
    if kube is None:
        return {}
    namespace, name = ref.split("/", 1)
    found = kube.get("v1", "Secret", name, namespace=namespace)
    if found is None:
        raise PermanentError(f"Git source {source}: secret: Secret {ref} not found")
    return {k: base64.b64decode(v).decode() for k, v in (found.get("data") or {}).items()}


def sources_from(settings: GitSettings, kube: Kube | None) -> tuple[GitSource, ...]:
    """Every configured source, its credentials read from its Secret."""
    return tuple(source_of(entry, kube, readonly=settings.readonly) for entry in entries_from(settings))


def source_of(entry: SourceEntry, kube: Kube | None, *, readonly: bool = False) -> GitSource:
    """The source an entry describes; ``readonly`` (``--git-readonly``) applies to every source."""
    data = secret_data(kube, entry.secret, source=entry.name) if entry.secret else {}
    credentials = None
    if data.get("identity") or data.get("token"):
        credentials = GitCredentials(https_token=data.get("token"), ssh_private_key=data.get("identity"),
                                     known_hosts=data.get("known_hosts"))
    verify = None
    if data.get("allowed_signers"):
        verify = SignatureCheck(kind="ssh", keys=data["allowed_signers"])
    elif data.get("gpg_keys"):
        verify = SignatureCheck(kind="gpg", keys=data["gpg_keys"])
    return GitSource(name=entry.name, url=entry.url, branch=entry.branch, tag=entry.tag, commit=entry.commit,
                     paths=entry.paths, timeout=entry.timeout, credentials=credentials, verify=verify,
                     rollback=entry.git_rollback, readonly=readonly or entry.readonly,
                     charts=tuple(chart.chart() for chart in entry.charts))
