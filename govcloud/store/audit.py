"""The audit trail: append-only records, each hash covering the previous record's hash.

``hash = HMAC-SHA256(key, prev_hash ‖ canonical JSON of seq, ts, actor, action, subject, details)``, with
the audit key of ``store/seal.py`` (a file the database does not hold); records written before keys
existed (``key_id`` NULL, migration 0008) keep their plain ``sha256(prev_hash ‖ …)`` and verify with it.
Editing a record breaks its own hash; deleting or inserting one breaks the next record's ``prev_hash`` or
the sequence; deleting the newest records is caught by ``audit_head``, a one-row table updated in the same
transaction as every append (and locked by it, so concurrent writers on PostgreSQL or SQLite serialise
instead of forking the chain) — and, against someone who also fixes the head or re-hashes the whole
chain, by the key and the anchor file outside the database.
"""

from __future__ import annotations

import datetime
import hashlib
import json
from collections.abc import Callable, Collection
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Protocol

import sqlalchemy as sa

from govcloud.errors import AuditHeadBroken, AuditKeyError
from govcloud.store.seal import Anchor, Seal, key_id, keyed_hash
from govcloud.store.tables import audit_head, audit_log, tickets, vms


class Database(Protocol):
    """What the audit log needs of the store (``store/db.py``'s ``Store``): named here, not imported, so
    that db.py — which builds the log — and this module do not import each other."""

    engine: sa.Engine

    def transaction(self) -> AbstractContextManager[sa.Connection]: ...

    def describe(self) -> str: ...

GENESIS = "0" * 64
VERIFY_HINT = "run `govcloud audit verify` to see what is wrong, then restore the store from a backup"


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


def _message(prev_hash: str, seq: int, ts: str, actor: str, action: str, subject: str, details_json: str) -> bytes:
    body = json.dumps([seq, ts, actor, action, subject, details_json], ensure_ascii=False, separators=(",", ":"))
    return (prev_hash + body).encode("utf-8")


def record_hash(prev_hash: str, seq: int, ts: str, actor: str, action: str, subject: str, details_json: str,
                *, key: bytes | None = None) -> str:
    """The record's hash: HMAC-SHA256 under ``key``; plain sha256 without one (records before 0008)."""
    message = _message(prev_hash, seq, ts, actor, action, subject, details_json)
    return keyed_hash(key, message) if key is not None else hashlib.sha256(message).hexdigest()


def utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


class AuditLog:
    """Appends and verifies; a clock can be injected for tests.

    ``seal`` (the key and anchor files) is what production processes pass; without one (tests, benchmarks)
    records are hashed plainly as before 0008, and appending to a chain that is already keyed is refused.
    """

    def __init__(self, store: Database, clock: Callable[[], datetime.datetime] = utcnow, *, seal: Seal | None = None) -> None:
        self.store = store
        self.clock = clock
        self.seal = seal
        self._pending: dict[int, tuple[bytes, int, str]] = {}
        """Per open connection: the newest keyed record appended in its transaction, anchored at commit."""

    def append(self, actor: str, action: str, subject: str, details: dict[str, Any] | None = None,
               *, connection: sa.Connection | None = None, before_keys: bool = False) -> AuditRecord:
        """Add one record. Pass ``connection`` to make it part of a larger transaction (a state change
        and its audit record commit together or not at all).

        Fails closed: when the head row is missing or does not match the newest record, or the key is not
        the one that wrote the chain, nothing is appended: ``AuditHeadBroken`` / ``AuditKeyError`` is raised,
        and with ``connection`` the caller's whole transaction (the state change the record describes)
        rolls back with it. Writing on
        would put unaudited-looking gaps behind new records, and "repairing" the head here would let
        whoever deleted the newest records have the next write cover it up; in a government cloud no
        state change may go on without a trail an auditor can check, so an operator looks first.

        ``before_keys``: the schema predates migration 0008 (a store upgraded to an older revision
        records that upgrade): a plain record, without the ``key_id`` column.
        """
        if connection is not None:
            return self._append(connection, actor, action, subject, details or {}, before_keys)
        with self.store.transaction() as conn:
            return self._append(conn, actor, action, subject, details or {}, before_keys)

    def _append(self, conn: sa.Connection, actor: str, action: str, subject: str, details: dict[str, Any],
                before_keys: bool) -> AuditRecord:
        head = conn.execute(sa.select(audit_head.c.seq, audit_head.c.hash).where(audit_head.c.id == 1)
                            .with_for_update()).one_or_none()
        key_column = sa.null().label("key_id") if before_keys else audit_log.c.key_id
        newest = conn.execute(sa.select(audit_log.c.seq, audit_log.c.hash, key_column)
                              .order_by(audit_log.c.seq.desc()).limit(1)).one_or_none()
        _check_head(head, newest)
        assert head is not None
        key = None if before_keys else self._key_for(newest)
        seq = head.seq + 1
        ts = self.clock().astimezone(datetime.UTC).isoformat(timespec="microseconds")
        details_json = canonical(details)
        digest = record_hash(head.hash, seq, ts, actor, action, subject, details_json, key=key)
        values = {"seq": seq, "ts": ts, "actor": actor, "action": action, "subject": subject, "details": details_json,
                  "prev_hash": head.hash, "hash": digest} | ({} if before_keys else {"key_id": key_id(key) if key else None})
        conn.execute(audit_log.insert().values(**values))
        conn.execute(audit_head.update().where(audit_head.c.id == 1).values(seq=seq, hash=digest))
        if key is not None:
            self._pending[id(conn)] = (key, seq, digest)
        return AuditRecord(seq, ts, actor, action, subject, json.loads(details_json), head.hash, digest)

    def _key_for(self, newest: Any) -> bytes | None:
        """This process's key, checked against the key that wrote the newest record; never a second key."""
        keyed_since = newest is not None and newest.key_id is not None
        if self.seal is None:
            if keyed_since:
                raise AuditKeyError(f"the audit chain is keyed (record {newest.seq}, key id {newest.key_id}) but this "
                                    "process opened the store without an audit key; nothing was changed")
            return None
        # A missing key file is created only for a chain no key has written yet: a host that lacks the
        # chain's key must get it copied, not start a second key that would fail every later verify.
        key = self.seal.key(create=not keyed_since)
        if key is None:
            raise AuditKeyError(f"the audit chain is keyed (record {newest.seq}, key id {newest.key_id}) but there is no "
                                f"audit key at {self.seal.key_file}: copy the key of the host that wrote it (see "
                                "GOVCLOUD_AUDIT_KEY_FILE); nothing was changed")
        if keyed_since and key_id(key) != newest.key_id:
            raise AuditKeyError(f"the audit key {self.seal.key_file} (key id {key_id(key)}) is not the key that wrote "
                                f"record {newest.seq} (key id {newest.key_id}): use that host's key; nothing was changed")
        return key

    def settle(self, connection: sa.Connection, *, committed: bool) -> None:
        """Called by ``Store.transaction`` when ``connection``'s transaction ended: anchor its newest keyed
        record if it committed (an anchor written before the commit could end up ahead of the database —
        the very signal of tampering — when the transaction then rolls back)."""
        pending = self._pending.pop(id(connection), None)
        if pending is not None and committed and self.seal is not None:
            key, seq, digest = pending
            self.seal.advance(key, self.store.describe(), seq, digest)

    def head(self) -> tuple[int, str] | None:
        """(seq, hash) of the head row; None when it is missing (the daemon logs it when it moves)."""
        with self.store.engine.connect() as conn:
            return head_row(conn)

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

    def anchor(self) -> Anchor | None:
        """The anchor this host holds (None without a seal, a key or an anchor file, or when it is invalid)."""
        key = self.seal.key(create=False) if self.seal is not None else None
        return self.seal.read_anchor(key, self.store.describe())[0] if self.seal is not None and key is not None else None

    def verify(self) -> tuple[int, list[str]]:
        """Walk the whole chain; returns (records checked, problems). An empty list means intact.

        Checks every link and every hash (HMAC under this host's key for keyed records), that plain
        records only come before the first keyed one, the head row, and that the chain reaches the
        anchor file's record with the anchored hash.
        """
        key = self.seal.key(create=False) if self.seal is not None else None
        anchor, anchor_problem = self.seal.read_anchor(key, self.store.describe()) if self.seal is not None and key is not None else (None, None)
        walk = _Walk(key, self.seal)
        with self.store.engine.connect() as conn:
            for row in conn.execute(sa.select(audit_log).order_by(audit_log.c.seq)):
                walk.row(row, anchor)
            head = conn.execute(sa.select(audit_head.c.seq, audit_head.c.hash)).one_or_none()
        problems = walk.problems + ([anchor_problem] if anchor_problem else [])
        last = walk.expected_seq - 1
        if head is None:
            problems.append("audit head row is missing")
        elif (head.seq, head.hash) != (last, walk.prev_hash):
            problems.append(f"chain ends at record {last} but the head says record {head.seq}: "
                            "newest records were deleted or the head was edited")
        if anchor is not None and self.seal is not None:
            problems.extend(_check_anchor(anchor, last, walk.anchored_hash, self.seal))
        return walk.count, problems


def head_row(conn: sa.Connection) -> tuple[int, str] | None:
    """(seq, hash) of the chain's head row, None when it is missing: for the daemon's log and ``/metrics``."""
    row = conn.execute(sa.select(audit_head.c.seq, audit_head.c.hash).where(audit_head.c.id == 1)).one_or_none()
    return (int(row.seq), str(row.hash)) if row is not None else None


def _check_head(head: Any, newest: Any) -> None:
    """Refuse to append on a head that is missing or does not end the chain (see ``AuditLog.append``)."""
    if head is None:
        raise AuditHeadBroken([f"the audit chain's head row is missing, so no record can be appended; {VERIFY_HINT}"])
    seq, digest = (newest.seq, newest.hash) if newest is not None else (0, GENESIS)
    if (head.seq, head.hash) != (seq, digest):
        raise AuditHeadBroken([f"the audit chain's head says record {head.seq} but the newest record is {seq} "
                               f"(or its hash differs): records were deleted or the head was edited, so no record "
                               f"can be appended; {VERIFY_HINT}"])


def _check_anchor(anchor: Anchor, last: int, anchored_hash: str | None, seal: Seal) -> list[str]:
    """The chain must reach the anchored record with the anchored hash; an anchor ahead is tampering."""
    if anchor.seq > last:
        missing = f"record {last + 1}" + (f"–{anchor.seq}" if anchor.seq > last + 1 else "")
        return [f"{missing} missing: the chain ends at record {last} but the anchor {seal.anchor_file} says record "
                f"{anchor.seq} was committed (the newest records were deleted)"]
    if anchored_hash is None:
        return [f"record {anchor.seq}, named by the anchor {seal.anchor_file}, is missing"]
    if anchored_hash != anchor.hash:
        return [f"record {anchor.seq} does not have the hash the anchor {seal.anchor_file} recorded: "
                "the chain was rewritten and re-hashed"]
    return []


class _Walk:
    """State of one pass over the chain, oldest first."""

    def __init__(self, key: bytes | None, seal: Seal | None) -> None:
        self.key, self.seal = key, seal
        self.key_id = key_id(key) if key is not None else None
        self.problems: list[str] = []
        self.prev_hash, self.expected_seq, self.count = GENESIS, 1, 0
        self.keyed_since: int | None = None
        self.anchored_hash: str | None = None

    def row(self, row: Any, anchor: Anchor | None) -> None:
        self.count += 1
        self.problems.extend(_check_row(row, self.expected_seq, self.prev_hash))
        self.problems.extend(self._check_hash(row))
        if anchor is not None and row.seq == anchor.seq:
            self.anchored_hash = row.hash
        self.prev_hash, self.expected_seq = row.hash, row.seq + 1

    def _check_hash(self, row: Any) -> list[str]:
        edited = f"record {row.seq}: content does not match its hash (edited: {row.action} {row.subject} by {row.actor} at {row.ts})"
        if row.key_id is None:
            if self.keyed_since is not None:
                return [f"record {row.seq}: plain hash after keyed records (since record {self.keyed_since}): "
                        "rewritten without the audit key"]
            plain = record_hash(row.prev_hash, row.seq, row.ts, row.actor, row.action, row.subject, row.details)
            return [] if plain == row.hash else [edited]
        first_keyed = self.keyed_since is None
        if first_keyed:
            self.keyed_since = row.seq
        if self.key is None:
            where = f"at {self.seal.key_file}" if self.seal is not None else "in this process"
            return [f"records from {row.seq} on are keyed (key id {row.key_id}) but there is no audit key {where} "
                    "to check them"] if first_keyed else []
        if row.key_id != self.key_id:
            return [f"record {row.seq}: written under key id {row.key_id}, not this host's audit key (key id {self.key_id})"]
        keyed = record_hash(row.prev_hash, row.seq, row.ts, row.actor, row.action, row.subject, row.details, key=self.key)
        return [] if keyed == row.hash else [edited]


def _check_row(row: Any, expected_seq: int, prev_hash: str) -> list[str]:
    problems = []
    if row.seq != expected_seq:
        problems.append(f"record {expected_seq}" + (f"–{row.seq - 1}" if row.seq - 1 > expected_seq else "")
                        + f" missing before record {row.seq} (deleted?)")
    if row.prev_hash != prev_hash:
        problems.append(f"record {row.seq}: previous-hash link broken (a record before it was deleted, inserted or edited)")
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
