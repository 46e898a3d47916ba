"""Appending to, checking, searching, exporting and trimming the audit log.

Appends are serialised on the single :class:`~.models.AuditHead` row: each one locks it
(``SELECT … FOR UPDATE`` on PostgreSQL; on SQLite Tortoise runs every transaction on one
connection, one at a time, and an :class:`asyncio.Lock` says so explicitly), takes the next seq,
seals the entry after the head's hash and moves the head, all in one transaction. ``seq`` and
``hash`` are unique in the table, so even an append that somehow ran unlocked could not fork the
chain: it would fail and be retried.

Every search and export is scoped to one clinic; there is no query across clinics.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.exceptions import IntegrityError
from tortoise.queryset import QuerySet
from tortoise.transactions import in_transaction

from patient_portal.audit.chain import (
    GENESIS,
    HASHED_FIELDS,
    ChainChecker,
    ChainProblem,
    EntryView,
    canonical_json,
    canonical_time,
    entry_hash,
)
from patient_portal.audit.models import AuditEntry, AuditHead, Outcome

logger = logging.getLogger(__name__)

RETENTION_DEFAULT = timedelta(days=365 * 7)
"""How long entries are kept unless configured otherwise: seven years."""

EXPORT_ACTION = "audit.export"
PURGE_ACTION = "audit.purge"
ACTOR_KINDS = frozenset({"patient", "staff", "system", "anonymous"})
HEAD_ID = "head"
MAX_DETAIL_CHARS = 2000
MAX_SEARCH_LIMIT = 1000

_BATCH = 1000
_APPEND_ATTEMPTS = 3
_COLUMNS = (*HASHED_FIELDS, "prev_hash", "hash")
# Column limits of AuditEntry. Values over them are a caller's mistake, except the two that come
# from the client (ip, user agent), which are cut to fit.
_LIMITS = {
    "action": 64,
    "actor_id": 64,
    "actor_role": 24,
    "clinic_id": 36,
    "target_kind": 32,
    "target_id": 64,
}
_CLIPPED = {"ip": 45, "user_agent": 200}
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class AuditEvent:
    """Something to record: who (actor), in which clinic, did what (action) to which record
    (target), from where (ip, user agent), and how it ended (outcome).

    ``action`` is a dotted name such as ``patient.read``, ``auth.sign_in`` or ``audit.export``.
    ``detail`` is small context for the event — reason codes, counts, ids, filter values — made of
    strings, whole numbers, booleans, None, lists and string-keyed mappings. It must never carry
    patient data (names, contact details, answers, clinical text): the log is kept for years and
    exported as CSV. Invalid events raise :class:`ValueError` when built.
    """

    action: str
    outcome: Outcome
    actor_kind: str
    actor_id: str = ""
    actor_role: str = ""
    clinic_id: str = ""
    target_kind: str = ""
    target_id: str = ""
    ip: str = ""
    user_agent: str = ""
    detail: Mapping[str, object] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.action:
            raise ValueError("an audit event needs an action")
        for name in ("actor_kind", "actor_role"):  # a StrEnum member becomes its plain value
            object.__setattr__(self, name, str(getattr(self, name)))
        if self.actor_kind not in ACTOR_KINDS:
            raise ValueError(f"actor_kind must be one of {sorted(ACTOR_KINDS)}")
        object.__setattr__(self, "outcome", Outcome(self.outcome))
        for name, limit in _LIMITS.items():
            if len(getattr(self, name)) > limit:
                raise ValueError(f"{name} is longer than {limit} characters")
        _check_json(self.detail, "detail")
        text = canonical_json(self.detail)
        if len(text) > MAX_DETAIL_CHARS:
            raise ValueError(f"detail is longer than {MAX_DETAIL_CHARS} characters as JSON")
        # A private copy: later changes to the caller's mapping cannot reach the sealed entry.
        object.__setattr__(self, "detail", json.loads(text))


def _check_json(value: object, where: str) -> None:
    """Values that survive both databases' JSON unchanged, so the hash still matches."""
    if value is None or isinstance(value, bool | int):
        return
    if isinstance(value, str):
        if "\x00" in value:
            raise ValueError(f"{where} holds a NUL character")
        return
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                raise ValueError(f"{where} has a key that is not a string")
            _check_json(key, where)
            _check_json(item, f"{where}.{key}")
        return
    if isinstance(value, list | tuple):
        for item in value:
            _check_json(item, where)
        return
    raise ValueError(f"{where} holds a {type(value).__name__}; use str, int, bool or None")


@dataclass(frozen=True)
class VerifyReport:
    """The outcome of :meth:`AuditLog.verify`: ``entries`` rows checked from ``first_seq`` through
    ``last_seq`` (the head when the check began), and every problem found."""

    entries: int
    first_seq: int
    last_seq: int
    problems: tuple[ChainProblem, ...]

    @property
    def ok(self) -> bool:
        return not self.problems


class AuditLog:
    """The audit log in the default database (open Tortoise first).

    :meth:`record` may be called inside a caller's transaction: the entry then commits or rolls
    back with it, and the head stays locked until it ends, so keep such transactions short.
    """

    def __init__(self) -> None:
        self._sqlite_lock = asyncio.Lock()

    async def record(self, event: AuditEvent, *, now: datetime) -> int:
        """Append ``event`` as happening at ``now`` (aware); return its seq."""
        occurred_at = datetime.fromisoformat(canonical_time(now))
        values: dict[str, object] = {
            "occurred_at": occurred_at,
            "actor_kind": event.actor_kind,
            "actor_id": event.actor_id,
            "actor_role": event.actor_role,
            "clinic_id": event.clinic_id,
            "action": event.action,
            "target_kind": event.target_kind,
            "target_id": event.target_id,
            "outcome": event.outcome,
            "ip": _clip(event.ip, _CLIPPED["ip"]),
            "user_agent": _clip(event.user_agent, _CLIPPED["user_agent"]),
            "detail": event.detail,
        }
        for attempt in range(1, _APPEND_ATTEMPTS + 1):
            try:
                return await self._append(values)
            except IntegrityError:
                # Only a second appender that got past the head lock can collide on seq.
                if attempt == _APPEND_ATTEMPTS:
                    raise
                logger.warning("audit append collided on seq; retrying (attempt %d)", attempt)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _append(self, values: dict[str, object]) -> int:
        async with in_transaction() as conn, self._serialised(conn):
            head = await _locked_head(conn)
            seq = head.last_seq + 1
            digest = entry_hash(head.last_hash, {**values, "seq": seq})
            await AuditEntry.create(
                using_db=conn, seq=seq, prev_hash=head.last_hash, hash=digest, **values
            )
            await _move_head(conn, seq, digest)
            return seq

    @asynccontextmanager
    async def _serialised(self, conn: BaseDBAsyncClient) -> AsyncIterator[None]:
        """On SQLite, one append at a time in this process. Taken inside the transaction (which
        on SQLite already holds the connection), never around it: a caller's open transaction
        would otherwise wait for this lock while its holder waits for the connection."""
        if conn.capabilities.dialect == "sqlite":
            async with self._sqlite_lock:
                yield
        else:
            yield

    async def verify(self) -> VerifyReport:
        """Check the whole chain, reading entries in seq order, a batch at a time.

        Entries appended while the check runs are left for the next check; rows past the head
        as it is at the end of the check were not appended through the log and are reported.
        Do not purge while verifying: entries purged mid-check would be reported as deleted.
        The check hashes every entry in the event loop; run it from the command line or a job.
        """
        first = await _head_values()
        checker = ChainChecker(
            anchor_seq=first.anchor_seq,
            anchor_hash=first.anchor_hash,
            head_seq=first.last_seq,
            head_hash=first.last_hash,
        )
        count = 0
        async for entry in _stream(AuditEntry.filter(seq__lte=first.last_seq), first.anchor_seq):
            checker.feed(entry)
            count += 1
        last = await _head_values()
        async for entry in _stream(AuditEntry.all(), max(last.last_seq, first.last_seq)):
            checker.feed(entry)
        return VerifyReport(
            entries=count,
            first_seq=first.anchor_seq + 1,
            last_seq=first.last_seq,
            problems=tuple(checker.finish()),
        )

    async def search(
        self,
        *,
        clinic_id: str,
        since: datetime | None = None,
        until: datetime | None = None,
        action: str | None = None,
        actor_id: str | None = None,
        target_id: str | None = None,
        outcome: Outcome | None = None,
        limit: int = 100,
        before_seq: int | None = None,
    ) -> list[EntryView]:
        """One clinic's entries, newest first: at most ``limit``, older than ``before_seq`` if
        given (pass the last seq of a page to get the next). ``since`` is inclusive, ``until``
        exclusive; the other filters match exactly."""
        if not 1 <= limit <= MAX_SEARCH_LIMIT:
            raise ValueError(f"limit must be between 1 and {MAX_SEARCH_LIMIT}")
        query = _filtered(clinic_id, since, until, action, actor_id, target_id, outcome)
        if before_seq is not None:
            query = query.filter(seq__lt=before_seq)
        rows = await query.order_by("-seq").limit(limit).values(*_COLUMNS)
        return [_view(row) for row in rows]

    async def export_csv(
        self,
        *,
        clinic_id: str,
        since: datetime | None = None,
        until: datetime | None = None,
        action: str | None = None,
        actor_id: str | None = None,
        target_id: str | None = None,
        outcome: Outcome | None = None,
    ) -> AsyncIterator[str]:
        """One clinic's entries as CSV lines (header first), oldest first, read a batch at a time.

        Cells that a spreadsheet would run as a formula get a leading ``'``. The caller records
        the export itself (action :data:`EXPORT_ACTION`) with who asked for it.
        """
        query = _filtered(clinic_id, since, until, action, actor_id, target_id, outcome)
        yield _csv_line(_COLUMNS)
        async for entry in _stream(query, 0):
            yield _csv_line(_csv_cells(entry))

    async def purge_before(self, cutoff: datetime) -> int:
        """Delete the oldest entries that happened before ``cutoff``; return how many.

        Only a prefix of the chain goes (it stops at the first entry at or after ``cutoff``),
        in batches, each in one transaction that also moves the anchor to the last entry it
        removed, so :meth:`verify` still passes.
        """
        canonical_time(cutoff)
        start = await _head_values()
        kept = (
            await AuditEntry.filter(seq__gt=start.anchor_seq, occurred_at__gte=cutoff)
            .order_by("seq")
            .first()
            .values_list("seq", flat=True)
        )
        through = start.last_seq if kept is None else int(kept) - 1  # type: ignore[call-overload]
        deleted = 0
        while True:
            async with in_transaction() as conn, self._serialised(conn):
                head = await _locked_head(conn)
                if head.anchor_seq >= through:
                    return deleted
                upto = min(through, head.anchor_seq + _BATCH)
                boundary = await AuditEntry.filter(seq=upto).using_db(conn).get_or_none()
                if boundary is None:
                    raise LookupError(f"audit entry {upto} is missing; run `tsunagu audit verify`")
                deleted += (
                    await AuditEntry.filter(seq__gt=head.anchor_seq, seq__lte=upto)
                    .using_db(conn)
                    .delete()
                )
                await (
                    AuditHead.filter(id=HEAD_ID)
                    .using_db(conn)
                    .update(anchor_seq=upto, anchor_hash=boundary.hash)
                )


@dataclass(frozen=True)
class _Head:
    last_seq: int = 0
    last_hash: str = GENESIS
    anchor_seq: int = 0
    anchor_hash: str = GENESIS


async def _head_values() -> _Head:
    head = await AuditHead.get_or_none(id=HEAD_ID)
    if head is None:
        return _Head()
    return _Head(head.last_seq, head.last_hash, head.anchor_seq, head.anchor_hash)


# The head is read and moved on every append: plain SQL here skips building a model object,
# which is most of the ORM's cost on this path.
# (portal_audit_head is AuditHead's table; "head" is HEAD_ID.)
_SELECT_HEAD = (
    "SELECT last_seq, last_hash, anchor_seq, anchor_hash FROM portal_audit_head WHERE id = 'head'"
)
_MOVE_HEAD = {
    "postgres": "UPDATE portal_audit_head SET last_seq = $1, last_hash = $2 WHERE id = 'head'",
    "sqlite": "UPDATE portal_audit_head SET last_seq = ?, last_hash = ? WHERE id = 'head'",
}


async def _locked_head(conn: BaseDBAsyncClient) -> _Head:
    """The head row, locked until this transaction ends; made on first use (two first appenders
    race on its primary key: the loser's savepoint rolls back and it locks the winner's row)."""
    lock = " FOR UPDATE" if conn.capabilities.dialect == "postgres" else ""
    rows = await conn.execute_query_dict(_SELECT_HEAD + lock)
    if not rows:
        try:
            async with in_transaction():
                await AuditHead.create(
                    using_db=conn, id=HEAD_ID, last_hash=GENESIS, anchor_hash=GENESIS
                )
        except IntegrityError:
            pass
        rows = await conn.execute_query_dict(_SELECT_HEAD + lock)
    row = rows[0]
    return _Head(int(row["last_seq"]), row["last_hash"], int(row["anchor_seq"]), row["anchor_hash"])


async def _move_head(conn: BaseDBAsyncClient, seq: int, digest: str) -> None:
    await conn.execute_query(_MOVE_HEAD[conn.capabilities.dialect], [seq, digest])


def _filtered(
    clinic_id: str,
    since: datetime | None,
    until: datetime | None,
    action: str | None,
    actor_id: str | None,
    target_id: str | None,
    outcome: Outcome | None,
) -> QuerySet[AuditEntry]:
    if not clinic_id:
        raise ValueError("an audit search is always scoped to one clinic: clinic_id is required")
    query = AuditEntry.filter(clinic_id=clinic_id)
    for bound in (since, until):
        if bound is not None:
            canonical_time(bound)  # refuses a naive datetime
    if since is not None:
        query = query.filter(occurred_at__gte=since)
    if until is not None:
        query = query.filter(occurred_at__lt=until)
    exact: dict[str, Any] = {"action": action, "actor_id": actor_id, "target_id": target_id}
    if outcome is not None:
        exact["outcome"] = Outcome(outcome)
    return query.filter(**{name: value for name, value in exact.items() if value is not None})


async def _stream(query: QuerySet[AuditEntry], after_seq: int) -> AsyncIterator[EntryView]:
    """``query``'s entries with seq above ``after_seq``, in seq order, :data:`_BATCH` at a time."""
    last = after_seq
    while True:
        rows = await query.filter(seq__gt=last).order_by("seq").limit(_BATCH).values(*_COLUMNS)
        for row in rows:
            yield _view(row)
        if len(rows) < _BATCH:
            return
        last = rows[-1]["seq"]


def _view(row: Mapping[str, Any]) -> EntryView:
    occurred_at = row["occurred_at"]
    if isinstance(occurred_at, str):
        occurred_at = datetime.fromisoformat(occurred_at)
    detail = row["detail"]
    if isinstance(detail, str | bytes):
        detail = json.loads(detail)
    return EntryView(
        seq=int(row["seq"]),
        occurred_at=occurred_at.astimezone(UTC),
        actor_kind=row["actor_kind"],
        actor_id=row["actor_id"],
        actor_role=row["actor_role"],
        clinic_id=row["clinic_id"],
        action=row["action"],
        target_kind=row["target_kind"],
        target_id=row["target_id"],
        outcome=str(Outcome(row["outcome"])),
        ip=row["ip"],
        user_agent=row["user_agent"],
        detail=detail,
        prev_hash=row["prev_hash"],
        hash=row["hash"],
    )


def _clip(value: str, limit: int) -> str:
    return value.replace("\x00", "")[:limit]


def _csv_cells(entry: EntryView) -> list[str]:
    cells: list[str] = []
    for name in _COLUMNS:
        value = getattr(entry, name)
        if name == "occurred_at":
            cells.append(canonical_time(value))
        elif name == "detail":
            cells.append(_safe_cell(json.dumps(value, sort_keys=True, ensure_ascii=False)))
        else:
            cells.append(_safe_cell(str(value)))
    return cells


def _safe_cell(text: str) -> str:
    """Defuse CSV (formula) injection: a spreadsheet shows the text instead of running it."""
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


def _csv_line(cells: Sequence[str]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer).writerow(cells)
    return buffer.getvalue()
