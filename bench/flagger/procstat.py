"""CPU time and memory of a process from /proc: the benchmark's CPU and RSS figures.

``run.py`` samples each controller's pid when a window opens and closes; the CPU a window cost is
the difference of two samples. Linux counts CPU in clock ticks (``SC_CLK_TCK``, 100 a second here),
so a figure is good to 10 ms over the whole window, not per tick.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

_UTIME, _STIME = 11, 12
"""Indexes of utime and stime (fields 14 and 15 of proc(5)) among the fields after the command's ')'."""


@dataclass(frozen=True)
class Sample:
    """One reading of a process: CPU seconds used so far (user + system), resident and peak resident bytes."""

    cpu_seconds: float
    rss_bytes: int
    peak_rss_bytes: int


def cpu_seconds(stat_text: str, *, ticks_per_second: int) -> float:
    """User plus system CPU seconds from the text of /proc/<pid>/stat.

    The command name (field 2) is in parentheses and may itself hold spaces and parentheses, so the
    fields are counted from its last ')'."""
    _, paren, rest = stat_text.rpartition(")")
    fields = rest.split()
    if not paren or len(fields) <= _STIME:
        raise ValueError(f"not the text of /proc/<pid>/stat: {stat_text[:80]!r}")
    return (int(fields[_UTIME]) + int(fields[_STIME])) / ticks_per_second


def memory_bytes(status_text: str, key: str) -> int:
    """A ``kB`` line (VmRSS, VmHWM) of /proc/<pid>/status, in bytes."""
    for line in status_text.splitlines():
        name, _, value = line.partition(":")
        if name == key:
            number, _, unit = value.strip().partition(" ")
            if unit.strip() != "kB":
                raise ValueError(f"/proc status: {key} is not in kB: {line!r}")
            return int(number) * 1024
    raise ValueError(f"/proc status has no {key} line (a kernel thread, or a process that has exited)")


def sample(pid: int, proc: Path = Path("/proc")) -> Sample:
    """Read process ``pid`` now."""
    folder = proc / str(pid)
    status = (folder / "status").read_text()
    return Sample(cpu_seconds=cpu_seconds((folder / "stat").read_text(), ticks_per_second=os.sysconf("SC_CLK_TCK")),
                  rss_bytes=memory_bytes(status, "VmRSS"), peak_rss_bytes=memory_bytes(status, "VmHWM"))
