from __future__ import annotations

import itertools
from unittest.mock import MagicMock

from bench.flagger import phases

PROGRESSING = frozenset({"Progressing"})


def test_a_delay_counts_from_the_release_to_the_first_entry_into_the_phase() -> None:
    transitions = [(1.0, "Initialized"), (12.0, "Progressing"), (50.0, "Promoting"), (60.0, "Succeeded")]
    assert phases.since(transitions, PROGRESSING, 10.0) == 2.0
    assert phases.since(transitions, frozenset({"Succeeded", "Failed"}), 10.0) == 50.0


def test_a_phase_reached_before_the_release_does_not_count() -> None:
    transitions = [(5.0, "Progressing"), (9.0, "Succeeded")]
    assert phases.since(transitions, PROGRESSING, 10.0) is None


def test_delays_cover_every_released_canary() -> None:
    found = phases.delays({"a": 10.0, "b": 10.0}, {"a": [(10.5, "Progressing")]}, PROGRESSING)
    assert found == {"a": 0.5, "b": None}


def test_the_log_notes_changes_of_phase_only() -> None:
    ticks = itertools.count(1.0)
    log = phases.PhaseLog(MagicMock(), "canary.dev/v1alpha1", "ns", clock=lambda: next(ticks))

    def canary(phase: str | None) -> dict[str, object]:
        return {"metadata": {"name": "a"}, "status": {"phase": phase} if phase else {}}

    for phase in (None, "Initialized", "Initialized", "Progressing", "Progressing", "Succeeded"):
        log.observe("MODIFIED", canary(phase))
    log.observe("DELETED", canary("Failed"))
    assert log.transitions() == {"a": [(1.0, "Initialized"), (2.0, "Progressing"), (3.0, "Succeeded")]}
    assert log.phases() == {"a": "Succeeded"}
