from __future__ import annotations

import os
from pathlib import Path

import pytest

from bench.flagger import procstat

# A real /proc/<pid>/stat line (fields 14 and 15, utime and stime, are 250 and 50), its command holding
# a space and parentheses, which must not shift the fields.
STAT = ("4242 (my (odd) cmd) S 1 4242 4242 0 -1 4194560 20000 0 0 0 250 50 0 0 20 0 12 0 123456 "
        "900000000 40000 18446744073709551615 1 1 0 0 0 0 0 4096 17475 0 0 0 17 1 0 0 0 0 0")
STATUS = "Name:\tpython\nVmPeak:\t  900000 kB\nVmHWM:\t  204800 kB\nVmRSS:\t  163840 kB\nThreads:\t12\n"


def test_cpu_is_user_plus_system_ticks_in_seconds() -> None:
    assert procstat.cpu_seconds(STAT, ticks_per_second=100) == 3.0


def test_a_text_that_is_not_a_stat_line_is_refused() -> None:
    with pytest.raises(ValueError, match="not the text of /proc/<pid>/stat"):
        procstat.cpu_seconds("4242 (cmd) S 1", ticks_per_second=100)


def test_memory_lines_are_read_in_bytes() -> None:
    assert procstat.memory_bytes(STATUS, "VmRSS") == 160 * 2**20
    assert procstat.memory_bytes(STATUS, "VmHWM") == 200 * 2**20


def test_a_missing_memory_line_says_which() -> None:
    with pytest.raises(ValueError, match="no VmRSS line"):
        procstat.memory_bytes("Name:\tkthreadd\n", "VmRSS")


def test_a_sample_reads_both_files_of_a_process(tmp_path: Path) -> None:
    (tmp_path / "4242").mkdir()
    (tmp_path / "4242" / "stat").write_text(STAT)
    (tmp_path / "4242" / "status").write_text(STATUS)
    found = procstat.sample(4242, proc=tmp_path)
    assert found.cpu_seconds == 300 / os.sysconf("SC_CLK_TCK")
    assert (found.rss_bytes, found.peak_rss_bytes) == (160 * 2**20, 200 * 2**20)


def test_this_process_can_be_sampled() -> None:
    found = procstat.sample(os.getpid())
    assert found.cpu_seconds > 0
    assert 0 < found.rss_bytes <= found.peak_rss_bytes
