"""Count the API requests each client made, from the kube-apiserver's audit log: the benchmark's request figures.

``run.py`` notes the log's size when a measuring window opens and reads on from there when it closes
(``read_from``); ``count`` keeps the requests received inside the window, once each (an audit event is
written per stage, and a watch has two: ResponseStarted, then ResponseComplete when it ends), and
tells clients apart by User-Agent: Flagger's client-go sends ``flagger/v0.0.0 (linux/amd64)
kubernetes/$Format``, ours ``canary-delivery/<version>``.
"""

from __future__ import annotations

import collections
import datetime as dt
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

CLIENTS: Mapping[str, str] = {"flagger": "flagger/", "ours": "canary-delivery/"}
"""Client name -> the start of its User-Agent."""


@dataclass(frozen=True)
class Window:
    """A stretch of wall-clock time, start included, end excluded."""

    start: dt.datetime
    end: dt.datetime

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("audit windows need aware datetimes (the audit log is in UTC)")

    @property
    def seconds(self) -> float:
        return (self.end - self.start).total_seconds()

    def holds(self, moment: dt.datetime) -> bool:
        return self.start <= moment < self.end


@dataclass
class Counts:
    """Requests per client and kind of request (``get deployments``, ``patch canaries/status``,
    ``get /version``) in one window; ``other`` holds clients not in ``CLIENTS``, by User-Agent."""

    by_kind: dict[str, collections.Counter[str]] = field(default_factory=dict)
    other: collections.Counter[str] = field(default_factory=collections.Counter)

    def total(self, client: str) -> int:
        """All requests of ``client`` (0 when it made none)."""
        return sum(self.by_kind.get(client, collections.Counter()).values())

    def kinds(self, client: str) -> dict[str, int]:
        """Requests of ``client`` by verb and resource, most frequent first."""
        return dict(self.by_kind.get(client, collections.Counter()).most_common())


def kind_of(event: Mapping[str, object]) -> str:
    """``verb resource[/subresource]`` of an audit event, or ``verb /path`` for a request about no resource
    (discovery: /version, /apis)."""
    verb = str(event.get("verb", ""))
    ref = event.get("objectRef")
    if isinstance(ref, dict) and ref.get("resource"):
        sub = f"/{ref['subresource']}" if ref.get("subresource") else ""
        return f"{verb} {ref['resource']}{sub}"
    return f"{verb} {str(event.get('requestURI', '')).split('?', 1)[0]}"


def client_of(user_agent: str, clients: Mapping[str, str] = CLIENTS) -> str | None:
    """The name of the client whose User-Agent prefix ``user_agent`` starts with, or None."""
    return next((name for name, prefix in clients.items() if user_agent.startswith(prefix)), None)


def _moment(text: str) -> dt.datetime:
    moment = dt.datetime.fromisoformat(text)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.UTC)


def count(lines: Iterable[str], window: Window, clients: Mapping[str, str] = CLIENTS) -> Counts:
    """Requests received inside ``window``, each counted once, by client and kind (JSON lines of audit events).

    A line that is not an audit event (a partial last line, say) is skipped: the log is read while the API
    server writes it."""
    counts = Counts()
    seen: set[str] = set()
    for line in lines:
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if not isinstance(event, dict) or event.get("kind") != "Event":
            continue
        audit_id = str(event.get("auditID", ""))
        received = event.get("requestReceivedTimestamp")
        if not audit_id or audit_id in seen or not isinstance(received, str):
            continue
        if not window.holds(_moment(received)):
            continue
        seen.add(audit_id)
        agent = str(event.get("userAgent", ""))
        client = client_of(agent, clients)
        if client is None:
            counts.other[agent.split(" ", 1)[0] or "(none)"] += 1
        else:
            counts.by_kind.setdefault(client, collections.Counter())[kind_of(event)] += 1
    return counts


def size(path: Path) -> int:
    """The log's size now: where a window that opens now starts reading."""
    return path.stat().st_size if path.exists() else 0


def read_from(path: Path, offset: int) -> Iterator[str]:
    """The log's lines from byte ``offset`` on (``offset`` from ``size`` at a line's end)."""
    with path.open("rb") as handle:
        handle.seek(offset)
        for raw in handle:
            yield raw.decode("utf-8", errors="replace")
