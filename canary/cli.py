"""The ``canary`` command: composition root of the application.

Sub-commands parse their options, wire the pieces together and hand over; no logic of their
own lives here. Progress goes to stderr and machine-readable lines (``export ...``) to stdout,
so ``eval "$(canary local up)"`` works.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from canary.errors import CanaryError
from canary.local import binaries, stack

app = typer.Typer(help="Progressive delivery for Kubernetes.", no_args_is_help=True)
local_app = typer.Typer(help="Run a local Kubernetes control plane (with kwok nodes) and Prometheus.",
                        no_args_is_help=True)
app.add_typer(local_app, name="local")

err = Console(stderr=True)
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
def local_build() -> None:
    """Build the pinned upstream binaries (etcd, Kubernetes, kwok) if they are missing."""
    directory = binaries.ensure_built()
    versions = binaries.pins()
    err.print(f"kubernetes {versions['kubernetes']}, etcd {versions['etcd']}, kwok {versions['kwok']}")
    typer.echo(str(directory))


@local_app.command("up")
def local_up(
    state_dir: StateDir = None,
    nodes: Annotated[int, typer.Option(min=1, help="How many kwok nodes to create.")] = 2,
    kubeconfig: Annotated[
        Path | None,
        typer.Option("--kubeconfig", exists=True, dir_okay=False,
                     help="Use this existing cluster instead of starting a control plane."),
    ] = None,
) -> None:
    """Start the local stack and print the shell lines that point tools at it."""
    options = stack.StackOptions(state_dir=_state_dir(state_dir), nodes=nodes, external_kubeconfig=kubeconfig)
    state = stack.up(options, progress=_progress)
    typer.echo(state.exports())


@local_app.command("down")
def local_down(state_dir: StateDir = None) -> None:
    """Stop everything the local stack started and remove its files (logs stay)."""
    stack.down(_state_dir(state_dir), progress=_progress)


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


def main() -> None:
    """Entry point of the console script: our errors become one clear line and exit code 1."""
    try:
        app()
    except CanaryError as exc:
        err.print(f"error: {exc}", highlight=False)
        raise SystemExit(1) from exc
