"""The audit trail: append-only records, each hash covering the previous record's hash.

``hash = sha256(prev_hash ‖ canonical JSON of seq, ts, actor, action, subject, details)``.
Editing a record breaks its own hash; deleting or inserting one breaks the next record's
``prev_hash`` or the sequence; deleting the newest records is caught by ``audit_head``, a one-row
table updated in the same transaction as every append (and locked by it, so concurrent writers
on PostgreSQL or SQLite serialise instead of forking the chain).
"""

from __future__ import annotations

import datetime
import hashlib
import json
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from govcloud.store.tables import audit_head, audit_log, tickets, vms

if TYPE_CHECKING:
    from govcloud.store.db import Store

GENESIS = "0" * 64


@dataclass(frozen=True)
class AuditRecord:
    """One entry of the trail: who did what to which subject, and why (in ``details``)."""

    seq: int
    ts: str
    actor: str
    action: str
    subject: str
    details: dict[str, Any]
    prev_hash: str
    hash: str

    def as_dict(self) -> dict[str, Any]:
        return {"seq": self.seq, "ts": self.ts, "actor": self.actor, "action": self.action,
                "subject": self.subject, "details": self.details, "hash": self.hash}


def canonical(details: dict[str, Any]) -> str:
    """Deterministic JSON: the same details always hash the same, on any backend."""
    return json.dumps(details, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)


def record_hash(prev_hash: str, seq: int, ts: str, actor: str, action: str, subject: str, details_json: str) -> str:
    body = json.dumps([seq, ts, actor, action, subject, details_json], ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256((prev_hash + body).encode("utf-8")).hexdigest()


def utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


class AuditLog:
    """Appends and verifies; a clock can be injected for tests."""

    def __init__(self, store: Store, clock: Callable[[], datetime.datetime] = utcnow) -> None:
        self.store = store
        self.clock = clock

    def append(self, actor: str, action: str, subject: str, details: dict[str, Any] | None = None,
               *, connection: sa.Connection | None = None) -> AuditRecord:
        """Add one record. Pass ``connection`` to make it part of a larger transaction (a state change
        and its audit record commit together or not at all)."""
        if connection is not None:
            return self._append(connection, actor, action, subject, details or {})
        with self.store.transaction() as conn:
            return self._append(conn, actor, action, subject, details or {})

    def _append(self, conn: sa.Connection, actor: str, action: str, subject: str, details: dict[str, Any]) -> AuditRecord:
        head = conn.execute(sa.select(audit_head.c.seq, audit_head.c.hash).where(audit_head.c.id == 1)
                            .with_for_update()).one()
        seq = head.seq + 1
        ts = self.clock().astimezone(datetime.UTC).isoformat(timespec="microseconds")
        details_json = canonical(details)
        digest = record_hash(head.hash, seq, ts, actor, action, subject, details_json)
        conn.execute(audit_log.insert().values(seq=seq, ts=ts, actor=actor, action=action, subject=subject,
                                               details=details_json, prev_hash=head.hash, hash=digest))
        conn.execute(audit_head.update().where(audit_head.c.id == 1).values(seq=seq, hash=digest))
        return AuditRecord(seq, ts, actor, action, subject, json.loads(details_json), head.hash, digest)

    def records(self, *, subject: str | None = None, actor: str | None = None, limit: int | None = None,
                tenants: Collection[str] | None = None, inbox_user: str | None = None) -> list[AuditRecord]:
        """Newest last; ``limit`` keeps the newest N (of those selected). ``tenants``: only records about
        those tenants — subjects ``tenant:<t>``, ``ticket:<id>`` and ``vm:<name>`` of their tickets and
        VMs, and ``inbox:<inbox_user>/…`` (engine/reads.py says why)."""
        query = sa.select(audit_log).order_by(audit_log.c.seq.desc())
        if subject:
            query = query.where(audit_log.c.subject == subject)
        if actor:
            query = query.where(audit_log.c.actor == actor)
        if tenants is not None:
            query = query.where(_about(tenants, inbox_user))
        if limit:
            query = query.limit(limit)
        with self.store.engine.connect() as conn:
            rows = conn.execute(query).all()
        return [_record(row) for row in reversed(rows)]

    def verify(self) -> tuple[int, list[str]]:
        """Walk the whole chain; returns (records checked, problems). An empty list means intact."""
        problems: list[str] = []
        prev_hash, expected_seq, count = GENESIS, 1, 0
        with self.store.engine.connect() as conn:
            for row in conn.execute(sa.select(audit_log).order_by(audit_log.c.seq)):
                count += 1
                problems.extend(_check_row(row, expected_seq, prev_hash))
                prev_hash, expected_seq = row.hash, row.seq + 1
            head = conn.execute(sa.select(audit_head.c.seq, audit_head.c.hash)).one_or_none()
        if head is None:
            problems.append("audit head row is missing")
        elif (head.seq, head.hash) != (expected_seq - 1, prev_hash):
            problems.append(f"chain ends at record {expected_seq - 1} but the head says record {head.seq}: "
                            "newest records were deleted or the head was edited")
        return count, problems


def _check_row(row: Any, expected_seq: int, prev_hash: str) -> list[str]:
    problems = []
    if row.seq != expected_seq:
        problems.append(f"record {expected_seq}" + (f"–{row.seq - 1}" if row.seq - 1 > expected_seq else "")
                        + f" missing before record {row.seq} (deleted?)")
    if row.prev_hash != prev_hash:
        problems.append(f"record {row.seq}: previous-hash link broken (a record before it was deleted, inserted or edited)")
    if record_hash(row.prev_hash, row.seq, row.ts, row.actor, row.action, row.subject, row.details) != row.hash:
        problems.append(f"record {row.seq}: content does not match its hash (edited: {row.action} {row.subject} by {row.actor} at {row.ts})")
    return problems


def _record(row: Any) -> AuditRecord:
    return AuditRecord(row.seq, row.ts, row.actor, row.action, row.subject, json.loads(row.details), row.prev_hash, row.hash)


def _about(tenants: Collection[str], inbox_user: str | None) -> sa.ColumnElement[bool]:
    """Records whose subject belongs to one of ``tenants`` (or to ``inbox_user``'s inbox directory)."""
    subject = audit_log.c.subject
    of_tickets = sa.select(sa.literal("ticket:") + tickets.c.id).where(tickets.c.tenant.in_(list(tenants)))
    of_vms = sa.select(sa.literal("vm:") + vms.c.name).where(vms.c.tenant.in_(list(tenants)))
    about: list[sa.ColumnElement[bool]] = [subject.in_([f"tenant:{t}" for t in tenants]), subject.in_(of_tickets), subject.in_(of_vms)]
    if inbox_user:
        about.append(subject.startswith(f"inbox:{inbox_user}/", autoescape=True))
    return sa.or_(*about)
