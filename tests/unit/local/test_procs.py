from __future__ import annotations

import sys
from pathlib import Path

from canary.local import procs
from canary.local.ports import free_ports, is_listening
from canary.waiting import wait_until


def test_a_spawned_process_is_tracked_logged_and_stopped(tmp_path: Path) -> None:
    log = tmp_path / "logs" / "echo.log"
    record = procs.spawn("sleeper", [sys.executable, "-c", "import time; print('hello', flush=True); time.sleep(60)"],
                         log=log)
    assert procs.is_alive(record)
    wait_until(lambda: procs.log_tail(record), lambda text: text == "hello", what="its output in the log", timeout=10)

    procs.stop(record, grace=5)

    assert not procs.is_alive(record)


def test_a_process_that_ignores_sigterm_is_killed(tmp_path: Path) -> None:
    code = ("import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('ready', flush=True); "
            "time.sleep(60)")
    record = procs.spawn("stubborn", [sys.executable, "-c", code], log=tmp_path / "stubborn.log")
    wait_until(lambda: procs.log_tail(record), lambda text: "ready" in text, what="the handler", timeout=10)
    procs.stop(record, grace=0.3)
    assert not procs.is_alive(record)


def test_a_reused_pid_is_not_mistaken_for_the_recorded_process(tmp_path: Path) -> None:
    record = procs.spawn("sleeper", [sys.executable, "-c", "import time; time.sleep(60)"], log=tmp_path / "s.log")
    impostor = record.model_copy(update={"start_ticks": record.start_ticks - 1})
    try:
        assert not procs.is_alive(impostor)
        procs.stop(impostor)
        assert procs.is_alive(record), "stop must not signal a process it does not own"
    finally:
        procs.stop(record)


def test_free_ports_are_distinct_and_unused() -> None:
    ports = free_ports(5)
    assert len(set(ports)) == 5
    assert not any(is_listening(port) for port in ports)
