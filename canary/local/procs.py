"""Start and stop the stack's processes by process id.

Each process runs in a session of its own (so a stop reaches its children too) and writes to
a log file. A recorded process is identified by pid *and* start time, so that a pid the kernel
has since reused for something else is never signalled.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Sequence
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from canary.errors import LocalStackError, WaitTimeout
from canary.waiting import wait_until


class ProcessRecord(BaseModel):
    """What the state file remembers of one started process."""

    model_config = ConfigDict(frozen=True)

    name: str
    pid: int
    start_ticks: int
    argv: list[str]
    log: str
    address: str = ""


def _proc_stat(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # The command name (field 2) may contain spaces; the fields after its closing paren don't.
    return raw[raw.rindex(")") + 2 :].split()


def start_ticks(pid: int) -> int:
    """The process start time in clock ticks since boot (field 22 of /proc/PID/stat)."""
    stat = _proc_stat(pid)
    if stat is None:
        raise LocalStackError(f"process {pid} is gone")
    return int(stat[19])


def is_alive(record: ProcessRecord) -> bool:
    """True when the recorded process still runs (zombies count as gone)."""
    stat = _proc_stat(record.pid)
    if stat is None:
        return False
    state, ticks = stat[0], int(stat[19])
    return state not in ("Z", "X") and ticks == record.start_ticks


def spawn(
    name: str,
    argv: Sequence[str],
    *,
    log: Path,
    address: str = "",
) -> ProcessRecord:
    """Start ``argv`` in its own session, stdout and stderr appended to ``log``."""
    log.parent.mkdir(parents=True, exist_ok=True)
    # posix_spawn rather than Popen: the process outlives this one (``canary local up`` exits),
    # so there is no Popen object to keep, and ``stop`` reaps it when it is our child.
    actions = [
        (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
        (os.POSIX_SPAWN_OPEN, 1, str(log), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644),
        (os.POSIX_SPAWN_DUP2, 1, 2),
    ]
    try:
        pid = os.posix_spawnp(argv[0], list(argv), dict(os.environ),
                              file_actions=actions, setsid=True)
    except OSError as exc:
        raise LocalStackError(f"cannot start {name} ({argv[0]}): {exc}") from exc
    return ProcessRecord(
        name=name, pid=pid, start_ticks=start_ticks(pid), argv=list(argv), log=str(log),
        address=address,
    )


def stop(record: ProcessRecord, *, grace: float = 10.0) -> None:
    """Stop the process group of ``record``: SIGTERM, then SIGKILL after ``grace`` seconds."""
    if not is_alive(record):
        return
    _signal_group(record.pid, signal.SIGTERM)
    try:
        wait_until(lambda: is_alive(record), lambda alive: not alive, what=f"{record.name} to exit",
                   timeout=grace, interval=0.05)
    except WaitTimeout:
        _signal_group(record.pid, signal.SIGKILL)
        wait_until(lambda: is_alive(record), lambda alive: not alive, what=f"{record.name} to die",
                   timeout=5, interval=0.05)
    _reap(record.pid)


def _signal_group(pid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        pass
    except PermissionError as exc:
        raise LocalStackError(f"not allowed to signal process group {pid}: {exc}") from exc


def _reap(pid: int) -> None:
    """Collect the exit status when the process is our own child, so it leaves no zombie."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def log_tail(record: ProcessRecord, lines: int = 25) -> str:
    """The last lines of a process's log, for error messages."""
    try:
        text = Path(record.log).read_text(errors="replace")
    except FileNotFoundError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])
