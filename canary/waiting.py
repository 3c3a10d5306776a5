"""Polling with a deadline: the local stack, the Git sync, the CLI and the end-to-end tests wait with it.

A wait that times out says what it waited for and what it saw last, so a failed start or a
failed test explains itself. Errors of our own (``CanaryError``) stop the wait at once: they
mean the condition can no longer become true (a process died, say).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from canary.errors import CanaryError, WaitTimeout

T = TypeVar("T")


def wait_until(
    probe: Callable[[], T],
    until: Callable[[T], bool],
    *,
    what: str,
    timeout: float,
    interval: float = 0.2,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Call ``probe`` until ``until(result)`` holds; return that result.

    Exceptions other than ``CanaryError`` count as "not yet" and are reported as the last
    thing seen if the deadline passes.
    """
    deadline = clock() + timeout
    last_seen = "nothing yet"
    while True:
        try:
            value = probe()
        except CanaryError:
            raise
        except Exception as exc:  # any failure of a probe means "not yet"
            last_seen = f"{type(exc).__name__}: {exc}"
        else:
            if until(value):
                return value
            last_seen = repr(value)
        if clock() >= deadline:
            raise WaitTimeout(f"timed out after {timeout:g}s waiting for {what}; last seen: {last_seen}")
        sleep(interval)
