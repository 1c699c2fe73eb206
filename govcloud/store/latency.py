"""Ticket latency histograms, observed when a ticket moves and kept as bucket counters in the store.

A Prometheus histogram is a set of counters that only grow. Computing one at every scrape from the
tickets' timestamps (as the exporter used to) costs a pass over every ticket ever stored — 150 ms at
22k tickets, most of a scrape — and it can even shrink when a ticket is re-activated. Here, like
client_python's ``Histogram.observe``, each duration is counted once, at the state change that ends it,
in the same transaction as that change (``tickets.move`` calls ``observe_move``): the scrape reads a
few dozen rows. The counters live in the store rather than in a process because the CLI and every
daemon move tickets, and because they must survive restarts.

What is observed, per ticket kind (observe-only adoptions never move through these states):

- ``submit_to_approve``: ``submitted_at`` → ``approved_at``, at approval;
- ``approve_to_active`` and ``submit_to_active``: up to the first ``active_at`` (a reconfiguration of an
  active ticket does not count again);
- ``provisioning``: ``provision_started_at`` → ``provisioned_at``, at every completed provisioning;
- ``configuration``: time spent in ``configuring`` (from entering it to ``active``), per successful run.

The bounds are part of the stored data (a row is a bucket index): changing them needs a migration that
empties ``ticket_latency`` and calls ``rebuild``.
"""

from __future__ import annotations

import bisect
import datetime
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from govcloud.store.tables import config_results, ticket_latency, tickets

HUMAN_BUCKETS = (60.0, 300.0, 900.0, 1800.0, 3600.0, 7200.0, 14400.0, 28800.0, 86400.0, 172800.0, 432000.0, 1209600.0)
"""Steps that wait for people (approval): a minute to two weeks."""
MACHINE_BUCKETS = (5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1800.0, 3600.0, 7200.0)
"""Steps govcloud does itself (boot, configure): seconds to two hours."""


@dataclass(frozen=True)
class Latency:
    """One histogram: its metric name and bucket bounds (seconds)."""

    name: str
    bounds: tuple[float, ...]


SUBMIT_TO_APPROVE = Latency("govcloud_ticket_submit_to_approve_seconds", HUMAN_BUCKETS)
APPROVE_TO_ACTIVE = Latency("govcloud_ticket_approve_to_active_seconds", MACHINE_BUCKETS)
SUBMIT_TO_ACTIVE = Latency("govcloud_ticket_submit_to_active_seconds", HUMAN_BUCKETS)
PROVISIONING = Latency("govcloud_ticket_provisioning_seconds", MACHINE_BUCKETS)
CONFIGURATION = Latency("govcloud_ticket_configuration_seconds", MACHINE_BUCKETS)
LATENCIES = (SUBMIT_TO_APPROVE, APPROVE_TO_ACTIVE, SUBMIT_TO_ACTIVE, PROVISIONING, CONFIGURATION)
BY_NAME = {latency.name: latency for latency in LATENCIES}

MOVE_COLUMNS = ("submitted_at", "approved_at", "active_at", "provision_started_at", "updated_at")
"""What ``observe_move`` needs of the ticket as it was before the move."""


@dataclass(frozen=True)
class Histogram:
    """Cumulative bucket counts of one latency for one ticket kind (``counts[i]``: durations ≤ ``bounds[i]``)."""

    name: str
    kind: str
    bounds: tuple[float, ...]
    counts: tuple[int, ...]
    count: int
    total: float


def seconds_between(start: str | None, end: str | None) -> float | None:
    """Seconds from one stored ISO timestamp to another, to the millisecond; a clock stepped back counts 0."""
    if not start or not end:
        return None
    return max(0.0, round((_moment(end) - _moment(start)).total_seconds(), 3))


def _moment(iso: str) -> datetime.datetime:
    moment = datetime.datetime.fromisoformat(iso)
    return moment if moment.tzinfo else moment.replace(tzinfo=datetime.UTC)


def bucket_of(latency: Latency, seconds: float) -> int:
    """The first bucket whose bound is ≥ ``seconds`` (Prometheus ``le``); ``len(bounds)`` is +Inf."""
    return bisect.bisect_left(latency.bounds, seconds)


def observe(conn: sa.Connection, kind: str, observations: Iterable[tuple[Latency, float | None]]) -> None:
    """Count each (latency, seconds) once; None (a timestamp missing) is skipped."""
    for latency, seconds in observations:
        if seconds is None:
            continue
        values = {"name": latency.name, "kind": kind, "bucket": bucket_of(latency, seconds), "count": 1, "total": seconds}
        insert = (postgresql.insert(ticket_latency) if conn.dialect.name == "postgresql" else sqlite.insert(ticket_latency)).values(**values)
        conn.execute(insert.on_conflict_do_update(
            index_elements=[ticket_latency.c.name, ticket_latency.c.kind, ticket_latency.c.bucket],
            set_={"count": ticket_latency.c.count + 1, "total": ticket_latency.c.total + seconds}))


def observe_move(conn: sa.Connection, kind: str, before: Mapping[str, Any], expected: str, new: str, now: str,
                 fields: Mapping[str, Any]) -> None:
    """The latencies a state change ends. ``before`` holds ``MOVE_COLUMNS`` as they were; ``fields`` is
    what the move writes."""
    found: list[tuple[Latency, float | None]] = []
    approved = fields.get("approved_at") or before["approved_at"]
    if fields.get("approved_at") and not before["approved_at"]:
        found.append((SUBMIT_TO_APPROVE, seconds_between(before["submitted_at"], fields["approved_at"])))
    if fields.get("active_at") and not before["active_at"]:
        found += [(APPROVE_TO_ACTIVE, seconds_between(approved, fields["active_at"])),
                  (SUBMIT_TO_ACTIVE, seconds_between(before["submitted_at"], fields["active_at"]))]
    if fields.get("provisioned_at"):
        found.append((PROVISIONING, seconds_between(fields.get("provision_started_at") or before["provision_started_at"],
                                                    fields["provisioned_at"])))
    if expected == "configuring" and new == "active":
        found.append((CONFIGURATION, seconds_between(before["updated_at"], now)))
    observe(conn, kind, found)


def needs_observation(expected: str, new: str, fields: Mapping[str, Any]) -> bool:
    """Whether a move can end a latency (only then does ``tickets.move`` read the row first)."""
    return (expected, new) == ("configuring", "active") or any(fields.get(c) for c in ("approved_at", "active_at", "provisioned_at"))


def histograms(conn: sa.Connection) -> list[Histogram]:
    """Every latency per ticket kind that has observations, cumulated as Prometheus wants them."""
    query = sa.select(ticket_latency.c.name, ticket_latency.c.kind, ticket_latency.c.bucket, ticket_latency.c.count,
                      ticket_latency.c.total)
    found: dict[tuple[str, str], dict[int, tuple[int, float]]] = {}
    for name, kind, bucket, count, total in conn.execute(query).all():
        if name in BY_NAME:
            found.setdefault((name, kind), {})[int(bucket)] = (int(count), float(total))
    return [_cumulate(BY_NAME[name], kind, buckets) for (name, kind), buckets in sorted(found.items())]


def _cumulate(latency: Latency, kind: str, buckets: Mapping[int, tuple[int, float]]) -> Histogram:
    counts, running = [], 0
    for i in range(len(latency.bounds)):
        running += buckets.get(i, (0, 0.0))[0]
        counts.append(running)
    every = sum(count for count, _ in buckets.values())
    return Histogram(latency.name, kind, latency.bounds, tuple(counts), every, sum(total for _, total in buckets.values()))


def rebuild(conn: sa.Connection) -> int:
    """Recount every histogram from the tickets' timestamps (for a store filled by bulk INSERTs, such as
    the exporter bench's; migration 0007 does the same for existing stores). Configuration is then
    ``provisioned_at`` → ``active_at`` of tickets that ran Ansible: the time each run entered
    ``configuring`` is not stored. Returns the number of tickets read."""
    configured = {row[0] for row in conn.execute(sa.select(config_results.c.ticket).distinct())}
    columns = (tickets.c.id, tickets.c.kind, tickets.c.submitted_at, tickets.c.approved_at, tickets.c.active_at,
               tickets.c.provision_started_at, tickets.c.provisioned_at)
    conn.execute(ticket_latency.delete())
    totals: dict[tuple[str, str, int], list[float]] = {}
    rows = conn.execute(sa.select(*columns).where(tickets.c.mode == "managed")).all()
    for row in rows:
        for latency, seconds in _durations(row, row.id in configured):
            if seconds is not None:
                cell = totals.setdefault((latency.name, row.kind, bucket_of(latency, seconds)), [0, 0.0])
                cell[0] += 1
                cell[1] += seconds
    if totals:
        conn.execute(ticket_latency.insert(), [{"name": name, "kind": kind, "bucket": bucket, "count": int(count), "total": total}
                                               for (name, kind, bucket), (count, total) in sorted(totals.items())])
    return len(rows)


def _durations(row: Any, configured: bool) -> Sequence[tuple[Latency, float | None]]:
    return ((SUBMIT_TO_APPROVE, seconds_between(row.submitted_at, row.approved_at)),
            (APPROVE_TO_ACTIVE, seconds_between(row.approved_at, row.active_at)),
            (SUBMIT_TO_ACTIVE, seconds_between(row.submitted_at, row.active_at)),
            (PROVISIONING, seconds_between(row.provision_started_at, row.provisioned_at)),
            (CONFIGURATION, seconds_between(row.provisioned_at, row.active_at) if configured else None))
