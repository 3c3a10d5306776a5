from __future__ import annotations

import pytest

from canary.errors import LocalStackError, WaitTimeout
from canary.waiting import wait_until


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_returns_the_first_value_that_satisfies_the_condition() -> None:
    clock = FakeClock()
    values = iter([1, 2, 3, 4])
    assert wait_until(lambda: next(values), lambda v: v >= 3, what="three", timeout=10, clock=clock,
                      sleep=clock.sleep) == 3


def test_timeout_says_what_it_waited_for_and_what_it_saw_last() -> None:
    clock = FakeClock()
    counter = iter(range(1000))
    with pytest.raises(WaitTimeout) as caught:
        wait_until(lambda: {"ready": next(counter)}, lambda v: False, what="the widget", timeout=1, interval=0.25,
                   clock=clock, sleep=clock.sleep)
    assert str(caught.value) == "timed out after 1s waiting for the widget; last seen: {'ready': 4}"
    assert isinstance(caught.value, TimeoutError)


def test_probe_failures_count_as_not_yet_and_are_reported() -> None:
    clock = FakeClock()
    attempts = []

    def probe() -> int:
        attempts.append(1)
        if len(attempts) < 3:
            raise ConnectionRefusedError("connection refused")
        return 7

    assert wait_until(probe, lambda v: v == 7, what="x", timeout=5, clock=clock, sleep=clock.sleep) == 7
    with pytest.raises(WaitTimeout, match="last seen: ConnectionRefusedError: nope"):
        wait_until(lambda: (_ for _ in ()).throw(ConnectionRefusedError("nope")), bool, what="x", timeout=1,
                   clock=clock, sleep=clock.sleep)


def test_our_own_errors_end_the_wait_at_once() -> None:
    clock = FakeClock()

    def probe() -> None:
        raise LocalStackError("etcd exited")

    with pytest.raises(LocalStackError, match="etcd exited"):
        wait_until(probe, bool, what="x", timeout=100, clock=clock, sleep=clock.sleep)
    assert clock.now == 0
