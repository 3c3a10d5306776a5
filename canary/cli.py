"""The ``canary`` command: composition root of the application.

Sub-commands parse their options, wire the pieces together and hand over; no logic of their
own lives here. Progress goes to stderr and machine-readable lines (``export ...``) to stdout,
so ``eval "$(canary local up)"`` works.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from pathlib import Path
from typing import Annotated, Any

import structlog
import typer
import yaml
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from canary import __version__, controls, logging, status_view
from canary import controller as controller_app
from canary import demo as demo_app
from canary.defaults import CONTROLLER_NAMESPACE, GIT_BRANCH
from canary.engine.decide import Request
from canary.errors import CanaryError, PermanentError
from canary.gitsync.config import DEFAULT_SOURCE, GitSettings, sources_from
from canary.gitsync.helm import pinned_version as helm_pin
from canary.gitsync.inventory import STATE_KINDS, KubeInventoryStore, StateKind, SyncState
from canary.gitsync.kustomize import pinned_version as kustomize_pin
from canary.gitsync.loop import GitSync, SyncSettings
from canary.gitsync.loop import summary as sync_summary
from canary.gitsync.rollbacks import DEFAULT_AUTHOR, git_ahead, read_ledger
from canary.kube.client import Kube
from canary.local import apiserver, binaries, helm, imagetools, install, kustomize, kwok, loadtester, stack
from canary.models import flagger
from canary.models.base import seconds_of
from canary.report import draw as report_draw
from canary.report import make as report_app
from canary.settings import ControllerSettings, DashboardSettings

app = typer.Typer(help="Progressive delivery for Kubernetes.", no_args_is_help=True,
                  pretty_exceptions_show_locals=False)
local_app = typer.Typer(help="Run a local Kubernetes control plane (with kwok nodes) and Prometheus.",
                        no_args_is_help=True)
app.add_typer(local_app, name="local")


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"canary-delivery {__version__}")
        raise typer.Exit()


@app.callback()
def _options(
    version: Annotated[bool, typer.Option("--version", callback=_print_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    """Progressive delivery for Kubernetes (also run as a kubectl plugin: kubectl canary ...)."""


@app.command("version")
def version() -> None:
    """Print the version."""
    typer.echo(f"canary-delivery {__version__}")

# soft_wrap: a message is one line however long, so that logs and scripts see it whole.
err = Console(stderr=True, soft_wrap=True)
out = Console()

StateDir = Annotated[
    Path | None,
    typer.Option("--state-dir", help="Folder for the stack's state, ports, logs and kubeconfig "
                 "[default: .cache/local]", envvar="CANARY_LOCAL_STATE_DIR"),
]


def _state_dir(value: Path | None) -> Path:
    return value if value is not None else stack.default_state_dir()


def _progress(message: str) -> None:
    err.print(message, highlight=False)


@local_app.command("build")
def local_build(
    image_tools: Annotated[bool, typer.Option(
        "--image-tools", help="Build only helm and kustomize, for Linux on GOARCH's architecture (this machine's "
        "by default), and copy them into .cache/image-tools for the Containerfile; print that folder.")] = False,
) -> None:
    """Build the pinned upstream binaries (etcd, Kubernetes, kwok; Helm and kustomize, for the Git sync;
    Flagger's load tester and hey, for tests) if they are missing; print the control plane's folder."""
    if image_tools:
        staged = imagetools.stage()
        err.print(f"helm {helm_pin()}, kustomize {kustomize_pin()}: {', '.join(map(str, staged.values()))}")
        typer.echo(str(imagetools.STAGING_DIR))
        return
    directory = binaries.ensure_built()
    versions = binaries.pins()
    err.print(f"kubernetes {versions['kubernetes']}, etcd {versions['etcd']}, kwok {versions['kwok']}")
    tools = loadtester.ensure_built()
    tested = loadtester.pins()
    err.print(f"flagger-loadtester {tested['flagger']}, hey {tested['hey']}: {tools}")
    err.print(f"helm {helm_pin()}: {helm.ensure_built()}")
    err.print(f"kustomize {kustomize_pin()}: {kustomize.ensure_built()}")
    typer.echo(str(directory))


@local_app.command("up")
def local_up(
    state_dir: StateDir = None,
    nodes: Annotated[int | None, typer.Option(
        min=1, help=f"How many kwok nodes to create, 2 for a new stack; each holds {kwok.MAX_PODS} pods (a "
        "kubelet's default), so 1000 canaries of each of two controllers need 20 or more.")] = None,
    audit_log: Annotated[Path | None, typer.Option(
        "--audit-log", dir_okay=False, help="Have kube-apiserver write an audit log (one JSON line per request at "
        "Metadata level: user, User-Agent, verb, resource, code) to this file. It is never rotated; the stack "
        "keeps the option when resumed.")] = None,
    apiserver_args: Annotated[list[str] | None, typer.Option(
        "--apiserver-arg", metavar="NAME=VALUE", help="One more kube-apiserver flag (without its dashes), as in "
        "max-requests-inflight=800; repeatable. A flag the stack sets itself is refused.")] = None,
    simulator: Annotated[bool, typer.Option(
        "--simulator/--no-simulator", help="Run the traffic simulator (Prometheus's job `simulator`); without it, "
        "canaries' request metrics have no data. The stack keeps the choice when resumed.")] = True,
    kubeconfig: Annotated[
        Path | None,
        typer.Option("--kubeconfig", exists=True, dir_okay=False,
                     help="Use this existing cluster instead of starting a control plane."),
    ] = None,
    with_crds: Annotated[list[str] | None, typer.Option(
        "--with-crds", help="Also install CRDs: 'canary' (ours) or a vendored project under manifests/vendor "
        "(gateway-api, istio), else its stand-in under manifests/standin (gloo, apisix, kuma); repeatable.")] = None,
) -> None:
    """Start the local stack and print the shell lines that point tools at it."""
    folders = [install.crd_folder(name) for name in with_crds or []]
    options = stack.StackOptions(state_dir=_state_dir(state_dir), nodes=nodes, external_kubeconfig=kubeconfig,
                                 audit_log=audit_log, apiserver_args=apiserver.parse_extra_args(apiserver_args or []),
                                 simulator=simulator)
    state = stack.up(options, progress=_progress)
    if folders:
        kube = Kube.from_kubeconfig(Path(state.kubeconfig))
        for folder in folders:
            _progress(f"   installed {len(install.install_crds(kube, folder, timeout=60))} CRDs from {folder}")
    typer.echo(state.exports())


@local_app.command("down")
def local_down(
    state_dir: StateDir = None,
    purge: Annotated[bool, typer.Option("--purge", help="Also delete the stack's data, certificates and "
                                        "kubeconfig (logs stay); without it, `up` starts it again as it was.")
                     ] = False,
) -> None:
    """Stop everything the local stack started."""
    stack.down(_state_dir(state_dir), purge=purge, progress=_progress)


@local_app.command("status")
def local_status(state_dir: StateDir = None) -> None:
    """Say what runs where."""
    directory = _state_dir(state_dir)
    state = stack.load_state(directory)
    if state is None:
        err.print(f"no stack in {directory.resolve()}")
        raise typer.Exit(1)
    running = stack.is_running(state)
    table = Table(title=f"local stack in {state.state_dir}, up {str(stack.uptime(state)).split('.')[0]}")
    for column in ("component", "pid", "running", "address"):
        table.add_column(column, overflow="fold")
    for record in state.processes:
        table.add_row(record.name, str(record.pid), "yes" if running[record.name] else "NO", record.address)
    out.print(table)
    out.print(f"logs: {Path(state.state_dir) / 'logs'}", highlight=False, soft_wrap=True)
    if state.versions:
        out.print("versions: " + ", ".join(f"{k} {v}" for k, v in state.versions.items()), highlight=False)
    typer.echo(state.exports())
    if not state.ready or not all(running.values()):
        raise typer.Exit(1)


def _seconds(value: str | float) -> float:
    """A duration flag's value in seconds: a Go duration ("90s", "5m", "1h30m") or a bare number of seconds."""
    try:
        seconds = seconds_of(value)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    if seconds < 0:
        raise typer.BadParameter(f"must not be negative, got {value}")
    return seconds


def _duration(value: str | float) -> float:
    """A duration flag that must be more than zero, in seconds."""
    seconds = _seconds(value)
    if seconds == 0:
        raise typer.BadParameter(f"must be more than zero, got {value}")
    return seconds


def _duration_option(*names: str, envvar: str, help: str) -> Any:  # noqa: ANN401 - typer's own names
    """A typer option that takes a duration; its value is seconds."""
    return typer.Option(*names, envvar=envvar, parser=_duration, metavar="DURATION",
                        help=f"{help} A Go duration (90s, 5m, 1h30m) or seconds.")


def _csv(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(",") if part.strip())


@app.command("controller")
def controller(
    kubeconfig: Annotated[Path | None, typer.Option(envvar="KUBECONFIG", help="Kubeconfig; in-cluster config when "
                                                    "unset inside a pod.")] = None,
    # PROMETHEUS_URL is what `canary local up` prints; the controller's own variable wins when both are set.
    metrics_server: Annotated[str, typer.Option(envvar=["CANARY_METRICS_SERVER", "PROMETHEUS_URL"],
                                                help="Prometheus URL for built-in metrics and MetricTemplates "
                                                "without an address.")] = "http://prometheus:9090",
    mesh_provider: Annotated[str, typer.Option(envvar="CANARY_MESH_PROVIDER",
                                               help="Default router when a Canary sets no spec.provider.")
                             ] = "kubernetes",
    namespace: Annotated[str | None, typer.Option(envvar="CANARY_NAMESPACE",
                                                  help="Watch one namespace (all by default).")] = None,
    selector_labels: Annotated[str, typer.Option(envvar="CANARY_SELECTOR_LABELS",
                                                 help="Selector label keys of targets, comma-separated.")
                               ] = "app,name,app.kubernetes.io/name",
    include_label_prefix: Annotated[str, typer.Option(envvar="CANARY_INCLUDE_LABEL_PREFIX",
                                                      help="Label prefixes copied to generated objects.")] = "",
    enable_config_tracking: Annotated[bool, typer.Option(envvar="CANARY_ENABLE_CONFIG_TRACKING",
                                                         help="Track ConfigMaps and Secrets of targets.")] = True,
    enable_leader_election: Annotated[bool, typer.Option(envvar="CANARY_ENABLE_LEADER_ELECTION",
                                                         help="Act only while holding a Lease.")] = False,
    leader_election_namespace: Annotated[str, typer.Option(envvar="CANARY_LEADER_ELECTION_NAMESPACE",
                                                           help="Namespace of the leader Lease.")
                                 ] = CONTROLLER_NAMESPACE,
    leader_election_lease_seconds: Annotated[int | None, typer.Option(
        envvar="CANARY_LEADER_ELECTION_LEASE_SECONDS", help="Seconds without renewal before another replica "
        "takes over [default: 15].")] = None,
    leader_election_lease_duration: Annotated[float | None, _duration_option(
        "--leader-election-lease-duration", envvar="CANARY_LEADER_ELECTION_LEASE_DURATION",
        help="The same as --leader-election-lease-seconds, as a duration (whole seconds).")] = None,
    cluster_name: Annotated[str, typer.Option(envvar="CANARY_CLUSTER_NAME", help="Cluster name in alerts.")] = "",
    slack_url: Annotated[str | None, typer.Option(envvar="CANARY_SLACK_URL", help="Slack webhook for alerts "
                                                  "(prefer an AlertProvider with a Secret).")] = None,
    event_webhook: Annotated[str | None, typer.Option(envvar="CANARY_EVENT_WEBHOOK",
                                                      help="URL that hears every canary Event, as Flagger's "
                                                      "-event-webhook (canaries with event webhooks use theirs).")
                             ] = None,
    alert_provider: Annotated[str | None, typer.Option(envvar="CANARY_ALERT_PROVIDER",
                                                       help="Default AlertProvider (namespace/name) for canaries "
                                                       "without alerts.")] = None,
    git_url: GitUrl = None,
    git_branch: GitBranch = GIT_BRANCH,
    git_tag: GitTag = None,
    git_commit: GitCommit = None,
    git_path: GitPath = None,
    git_secret: GitSecret = None,
    git_timeout: GitTimeout = 60.0,
    git_config: GitConfig = None,
    git_inventory_namespace: GitInventory = CONTROLLER_NAMESPACE,
    git_sync_state: GitSyncState = "configmap",
    git_poll_interval: Annotated[float, _duration_option(
        "--git-poll-interval", envvar="CANARY_GIT_POLL_INTERVAL", help="Time between checks for a new commit.")
                                 ] = 10.0,
    git_sync_interval: Annotated[float, _duration_option(
        "--git-sync-interval", envvar="CANARY_GIT_SYNC_INTERVAL", help="Time between full resyncs, which correct "
        "drift.")] = 300.0,
    git_rollback: Annotated[str, typer.Option(envvar="CANARY_GIT_ROLLBACK",
                                              help="After a rolled-back release from Git: none, pin (record it and "
                                              "say Git is ahead) or revert (push a commit restoring the promoted "
                                              "template).")] = "pin",
    git_readonly: Annotated[bool, typer.Option("--git-readonly", envvar="CANARY_GIT_READONLY",
                                               help="Never push to the repository (revert falls back to pin).")
                            ] = False,
    git_author: Annotated[str, typer.Option(envvar="CANARY_GIT_AUTHOR",
                                            help="'Name <email>' of the commits the controller pushes.")
                          ] = DEFAULT_AUTHOR,
    git_webhook_secret: Annotated[str | None, typer.Option(envvar="CANARY_GIT_WEBHOOK_SECRET",
                                                           help="Shared secret of POST /hooks/git/<source> "
                                                           "(set it through the environment).")] = None,
    port: Annotated[int, typer.Option(envvar="CANARY_PORT", help="Port of /metrics, /healthz and /readyz.")] = 8080,
    git_webhook_port: Annotated[int | None, typer.Option(
        envvar="CANARY_GIT_WEBHOOK_PORT", help="Serve the Git webhook (/hooks/git/<source>) on this port instead of "
        "--port, so that it can be exposed without /metrics.")] = None,
    stall_after: Annotated[float, _duration_option(
        "--stall-after", envvar="CANARY_STALL_AFTER", help="/healthz fails when no job could start, or one tick "
        "ran, this long.")] = 300.0,
    outbound_allow: Annotated[str, typer.Option(
        envvar="CANARY_OUTBOUND_ALLOW", help="Comma-separated hosts (*.example.com) or networks (10.0.0.0/8) that "
        "metric queries, webhooks and alerts may always reach; with --outbound-strict, the only ones.")] = "",
    outbound_deny: Annotated[str, typer.Option(
        envvar="CANARY_OUTBOUND_DENY", help="Comma-separated hosts or networks they may not reach, besides the "
        "link-local and cloud metadata addresses and this controller's own port.")] = "",
    shard: Annotated[str | None, typer.Option(
        envvar="CANARY_SHARD", help="Handle only the Canaries (and annotated Deployments) labelled "
        "canary.dev/shard=<this>, with a Lease of its own; without it, only those without the label.")] = None,
    workers: Annotated[int, typer.Option(
        envvar="CANARY_WORKERS", min=1, help="Canaries ticked at once (Flagger's -threadiness). A tick mostly waits "
        "on the API server, Prometheus and webhooks: allow canaries x tick seconds / interval, more when the API "
        "server is slow.")] = 32,
    no_cross_namespace_refs: Annotated[bool, typer.Option(
        "--no-cross-namespace-refs", envvar="CANARY_NO_CROSS_NAMESPACE_REFS",
        help="Refuse Canaries whose MetricTemplate or AlertProvider references name another namespace "
        "(Flagger's -no-cross-namespace-refs).")] = False,
    outbound_strict: Annotated[bool, typer.Option(
        "--outbound-strict", envvar="CANARY_OUTBOUND_STRICT",
        help="Allow only --outbound-allow (and --metrics-server, --slack-url, --event-webhook).")] = False,
    listen_address: Annotated[str, typer.Option(envvar="CANARY_LISTEN_ADDRESS",
                                                help="Interface of that port: 0.0.0.0 (all), 127.0.0.1, ...")
                              ] = "0.0.0.0",  # noqa: S104 - all interfaces, as a pod's probes and scrapes need
    log_level: Annotated[str, typer.Option(envvar="CANARY_LOG_LEVEL", help="debug, info, warning or error.")
                         ] = "info",
    dashboard: Annotated[bool, typer.Option(
        "--dashboard", envvar="CANARY_DASHBOARD", help="Also serve the web dashboard on --port (read-only unless "
        "--dashboard-actions).")] = False,
    dashboard_actions: Annotated[bool, typer.Option(
        "--dashboard-actions", envvar="CANARY_DASHBOARD_ACTIONS", help="Let the dashboard promote, abort, retry, "
        "pause and resume, for holders of a --dashboard-tokens token.")] = False,
    dashboard_tokens: Annotated[str | None, typer.Option(
        "--dashboard-tokens", envvar="CANARY_DASHBOARD_TOKENS", help="namespace/name of a Secret whose keys name "
        "who holds each bearer token in their values (or the folder where it is mounted).")] = None,
) -> None:
    """Run the controller against the current kubeconfig (or in-cluster), until SIGINT or SIGTERM."""
    settings = ControllerSettings(
        kubeconfig=kubeconfig, metrics_server=metrics_server, mesh_provider=mesh_provider, namespace=namespace,
        selector_labels=_csv(selector_labels), include_label_prefix=_csv(include_label_prefix),
        enable_config_tracking=enable_config_tracking, enable_leader_election=enable_leader_election,
        leader_election_namespace=leader_election_namespace,
        leader_election_lease_seconds=_lease_seconds(leader_election_lease_seconds, leader_election_lease_duration),
        cluster_name=cluster_name, slack_url=slack_url, event_webhook=event_webhook,
        alert_provider=alert_provider,
        git=_git_settings(url=git_url, branch=git_branch, tag=git_tag, commit=git_commit, paths=git_path,
                          secret=git_secret, timeout=git_timeout, inventory=git_inventory_namespace,
                          poll_interval=git_poll_interval, sync_interval=git_sync_interval,
                          webhook_secret=git_webhook_secret, rollback=git_rollback, readonly=git_readonly,
                          author=git_author, sources_file=git_config, sync_state=git_sync_state),
        port=port, git_webhook_port=git_webhook_port, stall_seconds=stall_after, listen_address=listen_address,
        outbound_allow=_csv(outbound_allow),
        outbound_deny=_csv(outbound_deny), outbound_strict=outbound_strict,
        no_cross_namespace_refs=no_cross_namespace_refs, workers=workers, shard=shard, log_level=log_level,
        dashboard=_dashboard_settings(dashboard, dashboard_actions, dashboard_tokens))
    logging.configure(settings.log_level)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    served = None
    if settings.dashboard.enabled:
        from canary.dashboard import serve  # noqa: PLC0415 - the controller's start stays lean without it

        served = serve.for_controller(settings.dashboard, git=serve.GitOptions(
            settings.git.inventory_namespace, settings.git.sync_state) if settings.git.enabled else None,
            metrics=serve.MetricsServer(settings.metrics_server, settings.mesh_provider))
    controller_app.run(settings, stop, dashboard=served)
    busy = [t.name for t in threading.enumerate()
            if t.is_alive() and not t.daemon and t is not threading.main_thread()]
    if busy:
        # Python would wait for them at exit: a tick held by a slow call must not hold the shutdown.
        structlog.get_logger(__name__).warning("stopped with work in flight; it resumes from the status",
                                               threads=busy)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)


def _dashboard_settings(enabled: bool, actions: bool, tokens: str | None) -> DashboardSettings:
    try:
        return DashboardSettings(enabled=enabled, actions=actions, tokens=tokens)
    except ValidationError as exc:
        raise typer.BadParameter(str(exc.errors()[0]["msg"]).removeprefix("Value error, ")) from None


def _lease_seconds(seconds: int | None, duration: float | None) -> int:
    """One lease length from the two flags that set it; they must agree when both are given."""
    if duration is not None and duration != int(duration):
        raise typer.BadParameter(f"must be whole seconds, got {duration:g}s",
                                 param_hint="--leader-election-lease-duration")
    if seconds is not None and duration is not None and seconds != duration:
        raise typer.BadParameter(f"{seconds} differs from --leader-election-lease-duration {duration:g}s; "
                                 "give one of them", param_hint="--leader-election-lease-seconds")
    chosen = seconds if seconds is not None else duration
    return 15 if chosen is None else int(chosen)


GitUrl = Annotated[str | None, typer.Option("--git-url", envvar="CANARY_GIT_URL", help="Repository to sync.")]
GitBranch = Annotated[str, typer.Option("--git-branch", envvar="CANARY_GIT_BRANCH", help="Branch to follow.")]
GitTag = Annotated[str | None, typer.Option("--git-tag", envvar="CANARY_GIT_TAG", help="Tag to follow instead.")]
GitCommit = Annotated[str | None, typer.Option("--git-commit", envvar="CANARY_GIT_COMMIT",
                                               help="Pinned commit (full hash) instead.")]
GitPath = Annotated[list[str] | None, typer.Option("--git-path", envvar="CANARY_GIT_PATH",
                                                   help="Folder of manifests in the repository (repeatable).")]
GitSecret = Annotated[str | None, typer.Option("--git-secret", envvar="CANARY_GIT_SECRET",
                                               help="namespace/name of a Secret with identity+known_hosts or token "
                                               "(or the folder where it is mounted).")]
GitTimeout = Annotated[float, _duration_option("--git-timeout", envvar="CANARY_GIT_TIMEOUT",
                                              help="How long any one git call may take.")]
GitConfig = Annotated[Path | None, typer.Option("--git-config", envvar="CANARY_GIT_CONFIG", exists=True,
                                               dir_okay=False, help="YAML file listing several Git sources.")]
GitInventory = Annotated[str, typer.Option("--git-inventory-namespace", envvar="CANARY_GIT_INVENTORY_NAMESPACE",
                                           help="Namespace of the sync-state objects.")]


def _state_kind(value: str) -> StateKind:
    if value not in STATE_KINDS:
        raise typer.BadParameter(f"must be one of {', '.join(STATE_KINDS)}, got {value!r}")
    return "secret" if value == "secret" else "configmap"


GitSyncState = Annotated[str, typer.Option("--git-sync-state", envvar="CANARY_GIT_SYNC_STATE", parser=_state_kind,
                                           metavar="configmap|secret",
                                           help="Keep each source's sync state (what it applied, its last error, "
                                           "the rollbacks it handled) in a ConfigMap or a Secret "
                                           "canary-gitsync-<source>.")]


def _git_settings(*, url: str | None, branch: str, tag: str | None, commit: str | None, paths: list[str] | None,
                  secret: str | None, timeout: float, inventory: str, **extra: Any) -> GitSettings:  # noqa: ANN401
    return GitSettings(url=url, branch=branch, tag=tag, commit=commit, paths=tuple(paths or ["."]), secret=secret,
                       timeout=timeout, inventory_namespace=inventory, **extra)


Namespace = Annotated[str, typer.Option("--namespace", "-n", help="The Canary's namespace.")]
Name = Annotated[str, typer.Argument(help="The Canary's name.")]
Kubeconfig = Annotated[Path | None, typer.Option(envvar="KUBECONFIG", help="Kubeconfig of the cluster.")]
Wait = Annotated[float, typer.Option(parser=_seconds, metavar="DURATION",
                                     help="How long to wait for the controller to act, a Go duration or seconds "
                                     "(0: don't wait).")]


def _kube(kubeconfig: Path | None) -> Kube:
    return Kube.from_kubeconfig(kubeconfig)


@app.command("status")
def status(
    name: Annotated[str | None, typer.Argument(help="One Canary (with its analysis).")] = None,
    namespace: Annotated[str | None, typer.Option("--namespace", "-n", help="One namespace.")] = None,
    all_namespaces: Annotated[bool, typer.Option("--all-namespaces", "-A", help="Every namespace.")] = False,
    kubeconfig: Kubeconfig = None,
) -> None:
    """Canaries with their phase, weight and progress."""
    kube = _kube(kubeconfig)
    # Piped output is for grep and scripts: never cut a line to a terminal width there.
    console = out if out.is_terminal else Console(width=250)
    if name is not None:
        console.print(status_view.detail(controls.get_canary(kube, namespace or "default", name)))
        return
    found = controls.list_canaries(kube, None if all_namespaces else (namespace or "default"))
    if not found:
        err.print("no canaries found")
        return
    console.print(status_view.table(found))


def _request(action: Request, name: str, namespace: str, kubeconfig: Path | None, wait: float) -> None:
    kube = _kube(kubeconfig)
    value = controls.request(kube, namespace, name, action)
    if wait <= 0:
        err.print(f"requested {action.value} of Canary {namespace}/{name}")
        return
    handled = controls.wait_handled(kube, namespace, name, value, timeout=wait)
    if handled.get("requestRefused"):
        err.print(f"Canary {namespace}/{name}: {handled['requestRefused']}", highlight=False, soft_wrap=True)
        raise typer.Exit(1)
    err.print(f"{action.value} of Canary {namespace}/{name} handled; phase now {handled.get('phase')}")


@app.command("promote")
def promote(name: Name, namespace: Namespace = "default", kubeconfig: Kubeconfig = None, wait: Wait = 30) -> None:
    """Promote the canary now, skipping the rest of its analysis."""
    _request(Request.PROMOTE, name, namespace, kubeconfig, wait)


@app.command("abort")
def abort(name: Name, namespace: Namespace = "default", kubeconfig: Kubeconfig = None, wait: Wait = 30) -> None:
    """Roll the canary back now."""
    _request(Request.ABORT, name, namespace, kubeconfig, wait)


@app.command("retry")
def retry(name: Name, namespace: Namespace = "default", kubeconfig: Kubeconfig = None, wait: Wait = 30) -> None:
    """Run a failed revision's analysis again, without editing the Deployment."""
    _request(Request.RETRY, name, namespace, kubeconfig, wait)


@app.command("pause")
def pause(name: Name, namespace: Namespace = "default", kubeconfig: Kubeconfig = None) -> None:
    """Suspend the canary (spec.suspend): it keeps its state and weights and does nothing."""
    controls.set_suspended(_kube(kubeconfig), namespace, name, suspended=True)
    err.print(f"Canary {namespace}/{name} paused")


@app.command("resume")
def resume(name: Name, namespace: Namespace = "default", kubeconfig: Kubeconfig = None) -> None:
    """Resume a paused canary."""
    controls.set_suspended(_kube(kubeconfig), namespace, name, suspended=False)
    err.print(f"Canary {namespace}/{name} resumed")


@app.command("demo")
def demo(
    state_dir: StateDir = None,
    keep: Annotated[bool, typer.Option(help="Leave the stack and the controller running afterwards.")] = False,
    reports: Annotated[Path | None, typer.Option(
        "--reports", file_okay=False, help="Folder for the pictures of the two releases (canary report) "
        "[default: .cache/demo-reports]")] = None,
) -> None:
    """Start the local stack and the controller syncing a Git repository, then release a good and a bad
    version of podinfo by commits, live; the bad one is rolled back and reverted in Git."""
    logging.configure("warning")
    releases = demo_app.Demo(state_dir=_state_dir(state_dir).resolve(), console=out,
                             reports=(reports or binaries.cache_root() / "demo-reports").resolve()).run(keep=keep)
    if [r.phase for r in releases] != ["Succeeded", "Failed", "Reverted"]:
        raise typer.Exit(1)


QueriesMeshProvider = Annotated[str, typer.Option(
    envvar="CANARY_MESH_PROVIDER", help="With --metrics-server: the router whose built-in queries apply when the "
    "Canary sets no spec.provider (the controller's --mesh-provider).")]


@app.command("report")
def report(
    name: Name,
    output: Annotated[Path, typer.Option("--output", "-o", dir_okay=False, help="The picture to write: a .png or "
                                         ".svg file.")],
    namespace: Namespace = "default",
    revision: Annotated[str | None, typer.Option(help="Draw the run of this revision; only the current or last run "
                                                 "is recorded (status.timeline), so it must be that one.")] = None,
    metrics_server: Annotated[str | None, typer.Option(
        "--metrics-server", help="A Prometheus URL: also draw each metric's query over the run, as Prometheus "
        "has it.")] = None,
    mesh_provider: QueriesMeshProvider = ControllerSettings.model_fields["mesh_provider"].default,
    kubeconfig: Kubeconfig = None,
) -> None:
    """Draw a canary's current or last run: the weight steps, each metric against its range, failed checks,
    webhook gates, and the promotion or rollback and why."""
    report_draw.check_path(output)
    prometheus = report_app.Prometheus(metrics_server, mesh_provider) if metrics_server else None
    run = report_app.report(_kube(kubeconfig), namespace, name, output, revision=revision, prometheus=prometheus)
    for series in run.metrics:
        if series.missing:
            err.print(f"{series.name}: no Prometheus series drawn: {series.missing}", highlight=False)
    width, height = report_draw.pixel_size(run)
    err.print(f"wrote {output} ({width}x{height}): {run.title}", highlight=False)


sync_app = typer.Typer(help="Sync manifests from Git into the cluster, once (see also canary controller --git-url).",
                       invoke_without_command=True)
app.add_typer(sync_app, name="sync")


@sync_app.callback()
def sync_once(
    ctx: typer.Context,
    git_url: GitUrl = None,
    git_branch: GitBranch = GIT_BRANCH,
    git_tag: GitTag = None,
    git_commit: GitCommit = None,
    git_path: GitPath = None,
    git_secret: GitSecret = None,
    git_timeout: GitTimeout = 60.0,
    git_config: GitConfig = None,
    source_name: Annotated[str | None, typer.Option("--source", help="Which source of --git-config to sync.")
                           ] = None,
    git_inventory_namespace: GitInventory = CONTROLLER_NAMESPACE,
    git_sync_state: GitSyncState = "configmap",
    dry_run: Annotated[bool, typer.Option(help="Show what would be created, changed and pruned; write nothing.")
                       ] = False,
    allow_mass_prune: Annotated[bool, typer.Option(help="Prune even when most of the inventory would go.")] = False,
    kubeconfig: Kubeconfig = None,
) -> None:
    """One sync pass: fetch, render, apply, prune (or, with --dry-run, the diff of it)."""
    if ctx.invoked_subcommand is not None:
        return
    kube = _kube(kubeconfig)
    settings = _git_settings(url=git_url, branch=git_branch, tag=git_tag, commit=git_commit, paths=git_path,
                             secret=git_secret, timeout=git_timeout, inventory=git_inventory_namespace,
                             sources_file=git_config)
    sources = {s.name: s for s in sources_from(settings, kube)}
    wanted = source_name or (DEFAULT_SOURCE if DEFAULT_SOURCE in sources or len(sources) != 1 else next(iter(sources)))
    if wanted not in sources:
        err.print(f"--source: no source {wanted!r}; the sources are {', '.join(sorted(sources))}")
        raise typer.Exit(2)
    source = sources[wanted]
    gitsync = GitSync(kube, SyncSettings(sources=(source,), inventory_namespace=settings.inventory_namespace,
                                         state_kind=_state_kind(git_sync_state)),
                      cache_root=controller_app.cache_root())
    report = gitsync.sync(source, dry_run=dry_run, allow_mass_prune=allow_mass_prune)
    for change in (*report.created, *report.changed):
        if dry_run and change.diff:
            out.print(change.diff, highlight=False, markup=False)
    typer.echo(sync_summary(report))
    if not report.ok:
        raise typer.Exit(1)


@sync_app.command("status")
def sync_status(
    source: Annotated[str | None, typer.Option(help="One source (every source by default).")] = None,
    git_inventory_namespace: GitInventory = CONTROLLER_NAMESPACE,
    git_sync_state: GitSyncState = "configmap",
    kubeconfig: Kubeconfig = None,
) -> None:
    """Each source's last sync: commit, time, objects, last error; and releases Git is ahead of."""
    kube = _kube(kubeconfig)
    state = SyncState(kube, git_inventory_namespace, _state_kind(git_sync_state))
    store = KubeInventoryStore(state)
    names = [source] if source is not None else store.sources()
    if not names:
        err.print(f"no source has been synced (no sync state in namespace {git_inventory_namespace})")
        raise typer.Exit(1)
    for index, name in enumerate(names):
        inventory = store.load(name)
        if inventory is None:
            err.print(f"source {name} has not been synced (no state in namespace {git_inventory_namespace})")
            raise typer.Exit(1)
        typer.echo(("\n" if index else "") + f"source:  {inventory.source}\ncommit:  {inventory.revision or '-'}\n"
                   f"synced:  {inventory.synced_at}\nobjects: {len(inventory.objects)}\n"
                   f"error:   {inventory.last_error or '-'}")
        for line in git_ahead(kube, inventory, read_ledger(state, name)):
            typer.echo(line)


@app.command("dashboard")
def dashboard(
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port on 127.0.0.1 (0: any free port).")] = 3100,
    namespace: Annotated[str | None, typer.Option("--namespace", "-n", help="One namespace [default: default].")
                         ] = None,
    all_namespaces: Annotated[bool, typer.Option("--all-namespaces", "-A", help="Every namespace.")] = False,
    git_inventory_namespace: GitInventory = CONTROLLER_NAMESPACE,
    git_sync_state: GitSyncState = "configmap",
    metrics_server: Annotated[str | None, typer.Option(
        "--metrics-server", help="A Prometheus URL: the metric charts also draw each metric's query over the run, "
        "as Prometheus has it (as canary report --metrics-server).")] = None,
    mesh_provider: QueriesMeshProvider = ControllerSettings.model_fields["mesh_provider"].default,
    kubeconfig: Kubeconfig = None,
) -> None:
    """Serve a live web dashboard of the canaries on loopback, with your kubeconfig: phases and weights as they
    change, one canary's run in charts, its Events and Git commit, and promote, abort, retry, pause and resume."""
    if namespace is not None and all_namespaces:
        raise typer.BadParameter("give --namespace or --all-namespaces, not both", param_hint="--all-namespaces")
    from canary.dashboard import serve  # noqa: PLC0415 - only this command needs the web server

    logging.configure("warning")
    shown = None if all_namespaces else (namespace or "default")
    serve.run_local(kubeconfig=kubeconfig, port=port, namespace=shown,
                    git=serve.GitOptions(git_inventory_namespace, _state_kind(git_sync_state)),
                    metrics=serve.MetricsServer(metrics_server, mesh_provider) if metrics_server else None,
                    announce=lambda url: err.print(f"dashboard of {'every namespace' if shown is None else shown} "
                                                   f"on {url} (Ctrl-C stops it)", highlight=False))


@app.command("convert")
def convert(
    files: Annotated[list[Path], typer.Argument(dir_okay=False, allow_dash=True,
                                                help="Flagger YAML files; - reads standard input.")],
    mesh_provider: Annotated[str, typer.Option(help="The router of Canaries without spec.provider, as Flagger's "
                                               "-mesh-provider; written out explicitly.")
                             ] = flagger.FLAGGER_MESH_PROVIDER,
) -> None:
    """Turn Flagger's Canaries, MetricTemplates and AlertProviders (flagger.app/v1beta1 and older) into
    canary.dev/v1alpha1, on stdout; other documents pass through unchanged and are listed on stderr."""
    converted = []
    for path in files:
        if str(path) != "-" and not path.is_file():
            raise PermanentError(f"{path}: no such file")
        text = sys.stdin.read() if str(path) == "-" else path.read_text()
        try:
            documents = list(yaml.safe_load_all(text))
        except yaml.YAMLError as exc:
            raise PermanentError(f"{path}: not valid YAML: {exc}") from exc
        source = "standard input" if str(path) == "-" else str(path)
        converted += flagger.convert(documents, source=source, mesh_provider=mesh_provider)
        for index, document in enumerate(documents):
            if isinstance(document, dict) and not flagger.is_flagger(document):
                err.print(f"{source} document {index}: {document.get('kind')} "
                          f"{(document.get('metadata') or {}).get('name', '?')} is not Flagger's: passed through "
                          "unchanged", highlight=False, soft_wrap=True)
    typer.echo(yaml.safe_dump_all(converted, sort_keys=False), nl=False)


def main() -> None:
    """Entry point of the console script: our errors become one clear line and exit code 1."""
    try:
        app()
    except CanaryError as exc:
        err.print(f"error: {exc}", highlight=False)
        raise SystemExit(1) from exc
