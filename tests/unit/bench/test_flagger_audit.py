from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from bench.flagger import audit

START = dt.datetime(2026, 11, 29, 22, 0, 0, tzinfo=dt.UTC)
WINDOW = audit.Window(START, START + dt.timedelta(seconds=60))
FLAGGER_UA = "flagger/v0.0.0 (linux/amd64) kubernetes/$Format"
OUR_UA = "canary-delivery/0.9.0"


def event(audit_id: str, *, agent: str, verb: str = "get", seconds: float = 1, stage: str = "ResponseComplete",
          resource: str = "deployments", subresource: str = "") -> str:
    received = START + dt.timedelta(seconds=seconds)
    ref = {"resource": resource, "namespace": "x", "name": "app", "apiGroup": "apps", "apiVersion": "v1",
           **({"subresource": subresource} if subresource else {})}
    return json.dumps({"kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "Metadata", "auditID": audit_id,
                       "stage": stage, "verb": verb, "userAgent": agent,
                       "requestURI": "/apis/apps/v1/namespaces/x/deployments/app", "objectRef": ref,
                       "requestReceivedTimestamp": received.isoformat().replace("+00:00", "Z"),
                       "stageTimestamp": received.isoformat().replace("+00:00", "Z")})


def test_requests_are_counted_per_client_verb_and_resource_by_user_agent() -> None:
    lines = [event("1", agent=FLAGGER_UA), event("2", agent=FLAGGER_UA, verb="update", resource="canaries",
                                                 subresource="status"),
             event("3", agent=FLAGGER_UA), event("4", agent=OUR_UA, verb="patch"),
             event("5", agent="kwok/v0.7.0 (linux/amd64) kubernetes/$Format", verb="patch")]
    counts = audit.count(lines, WINDOW)
    assert counts.total("flagger") == 3
    assert counts.kinds("flagger") == {"get deployments": 2, "update canaries/status": 1}
    assert counts.kinds("ours") == {"patch deployments": 1}
    assert counts.other == {"kwok/v0.7.0": 1}


def test_a_request_about_no_resource_is_named_by_its_path() -> None:
    discovery = {"verb": "get", "requestURI": "/version?timeout=32s"}
    assert audit.kind_of(discovery) == "get /version"


def test_a_watch_is_one_request_though_it_has_two_events() -> None:
    lines = [event("w", agent=OUR_UA, verb="watch", stage="ResponseStarted"),
             event("w", agent=OUR_UA, verb="watch", stage="ResponseComplete")]
    assert audit.count(lines, WINDOW).kinds("ours") == {"watch deployments": 1}


def test_only_requests_received_inside_the_window_count() -> None:
    lines = [event("before", agent=OUR_UA, seconds=-0.5), event("in", agent=OUR_UA, seconds=0),
             event("end", agent=OUR_UA, seconds=60), event("after", agent=OUR_UA, seconds=61)]
    assert audit.count(lines, WINDOW).total("ours") == 1


def test_partial_and_foreign_lines_are_skipped() -> None:
    lines = ['{"kind": "Event", "auditID": "x", "userAg', "not json", json.dumps({"kind": "Other"}),
             event("ok", agent=OUR_UA)]
    assert audit.count(lines, WINDOW).total("ours") == 1


def test_a_client_without_requests_counts_zero() -> None:
    counts = audit.count([], WINDOW)
    assert counts.total("flagger") == 0
    assert counts.kinds("flagger") == {}


def test_windows_need_times_with_a_zone() -> None:
    with pytest.raises(ValueError, match="aware datetimes"):
        audit.Window(dt.datetime(2026, 1, 1), dt.datetime(2026, 1, 2))


def test_reading_starts_where_the_log_ended_when_the_window_opened(tmp_path: Path) -> None:
    log = tmp_path / "audit.log"
    assert audit.size(log) == 0
    log.write_text(event("old", agent=OUR_UA) + "\n")
    offset = audit.size(log)
    with log.open("a") as handle:
        handle.write(event("new", agent=OUR_UA, verb="list") + "\n")
    assert audit.count(audit.read_from(log, offset), WINDOW).kinds("ours") == {"list deployments": 1}
