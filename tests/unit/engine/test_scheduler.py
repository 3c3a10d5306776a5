from __future__ import annotations

import datetime as dt
import threading
from typing import Any

from canary.engine.scheduler import SETTLE_SECONDS, CanaryScheduler
from canary.waiting import wait_until

CANARY: dict[str, Any] = {"metadata": {"namespace": "apps", "name": "web", "generation": 1},
                          "spec": {"targetRef": {"name": "web"}, "analysis": {"interval": "1m"}}}
TARGET: dict[str, Any] = {"metadata": {"namespace": "apps", "name": "web", "generation": 2},
                          "status": {"observedGeneration": 1}}


def test_changes_written_together_are_judged_in_one_tick_shortly_after() -> None:
    ticks: list[dt.datetime] = []
    lock = threading.Lock()

    def tick(namespace: str, name: str) -> str:
        with lock:
            ticks.append(dt.datetime.now(dt.UTC))
        return "ticked"

    scheduler = CanaryScheduler(tick, workers=2, list_canaries=lambda: [CANARY])
    scheduler.start()
    try:
        scheduler.on_canary("ADDED", CANARY)
        wait_until(lambda: len(ticks), lambda n: n == 1, what="the first tick", timeout=5, interval=0.01)

        changed = dt.datetime.now(dt.UTC)
        scheduler.on_target("MODIFIED", TARGET)  # the Deployment of a commit ...
        scheduler.on_target("MODIFIED", TARGET)  # ... and its ConfigMap, a moment later
        wait_until(lambda: len(ticks), lambda n: n == 2, what="the tick after the change", timeout=5, interval=0.01)

        assert ticks[1] - changed >= dt.timedelta(seconds=SETTLE_SECONDS * 0.9), "it waited for the rest"
        job = scheduler._scheduler.get_job("apps/web")
        assert job.next_run_time - dt.datetime.now(dt.UTC) > dt.timedelta(seconds=50), \
            "no second tick is pending: the next one is the interval's"
    finally:
        scheduler.shutdown()
