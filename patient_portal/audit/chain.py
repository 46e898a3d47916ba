"""The hash chain of the audit log, without I/O: how an entry is sealed and how a chain is checked.

Each entry's ``hash`` is SHA-256 over a canonical serialisation of all its other columns and
``prev_hash`` (the previous entry's ``hash``; :data:`GENESIS` before the first). Entries are
numbered by ``seq`` without gaps, and the head row names the newest entry and the *anchor*: the
seq and hash of the last entry removed by retention, which the first remaining entry chains to.

:func:`verify_chain` reads the entries in seq order (constant memory, apart from the suspect rows
it keeps) and names each problem precisely:

``changed``
    a row's contents no longer match its hash (the row was edited);
``deleted``
    no row is sealed with this seq, and later rows exist;
``reordered``
    the row at this seq was sealed with another seq (rows were swapped or renumbered);
``truncated``
    the newest rows are missing: the head records more than the log holds;
``forged``
    a row that is consistent with itself but not with the chain: resealed after an edit, not
    chained to the anchor, past the head, or not the hash the head records.

A chain proves order and completeness only relative to the head row. Someone who can rewrite the
database *and* recompute every later hash and the head is caught only by comparing the head hash
with a copy kept elsewhere.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

GENESIS = "0" * 64
"""The ``prev_hash`` of the first entry ever appended (and the anchor hash before any purge)."""

_FORMAT = "tsunagu.audit.v1"

HASHED_FIELDS = (
    "seq",
    "occurred_at",
    "actor_kind",
    "actor_id",
    "actor_role",
    "clinic_id",
    "action",
    "target_kind",
    "target_id",
    "outcome",
    "ip",
    "user_agent",
    "detail",
)
"""The columns an entry's hash covers, besides ``prev_hash``: all of them except ``id``, a
surrogate key with no meaning, and ``hash`` itself."""

# Rows that fail their own hash are kept to look for reordering; beyond this many the rest are
# reported as changed straight away, so memory stays bounded on a thoroughly damaged log.
MAX_SUSPECTS = 1000
# Missing seqs are tried as the original place of a suspect row only while there are this few.
MAX_MISSING_CANDIDATES = 1000

ProblemKind = Literal["changed", "deleted", "reordered", "truncated", "forged"]


@dataclass(frozen=True)
class EntryView:
    """One audit entry as plain values (what is read from the table, and what a search returns)."""

    seq: int
    occurred_at: datetime
    actor_kind: str
    actor_id: str
    actor_role: str
    clinic_id: str
    action: str
    target_kind: str
    target_id: str
    outcome: str
    ip: str
    user_agent: str
    detail: Mapping[str, object]
    prev_hash: str
    hash: str

    def hashed_fields(self) -> dict[str, object]:
        """The values :func:`entry_hash` covers (everything but the hashes)."""
        return {name: getattr(self, name) for name in HASHED_FIELDS}

    def seal_matches(self, seq: int | None = None) -> bool:
        """Whether ``hash`` seals this row's contents (as if its seq were ``seq``, if given)."""
        values = self.hashed_fields()
        if seq is not None:
            values["seq"] = seq
        return entry_hash(self.prev_hash, values) == self.hash


@dataclass(frozen=True)
class ChainProblem:
    """One break in the chain: at ``seq`` (through ``last_seq`` for a run of missing entries)."""

    seq: int
    kind: ProblemKind
    message: str
    last_seq: int


def canonical_time(value: datetime) -> str:
    """``value`` in UTC as ISO 8601 with microseconds; naive datetimes are refused."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("a timezone-aware datetime is required")
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def canonical_json(value: object) -> str:
    """Compact ASCII JSON with sorted keys: equal values give equal text."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)


def entry_hash(prev_hash: str, fields: Mapping[str, object]) -> str:
    """The SHA-256 (hex) that seals ``fields`` (:data:`HASHED_FIELDS`) after ``prev_hash``.

    The input is one JSON array (format tag, ``prev_hash``, then the fields in a fixed order), so
    no two different entries serialise alike: every string is quoted and escaped, ``detail`` is
    canonical JSON and ``occurred_at`` is UTC with microseconds.
    """
    items: list[object] = [_FORMAT, _text(prev_hash, "prev_hash")]
    for name in HASHED_FIELDS:
        if name not in fields:
            raise ValueError(f"entry field {name!r} is missing")
        value = fields[name]
        if name == "seq":
            if not isinstance(value, int) or isinstance(value, bool):
                raise TypeError("seq must be an int")
            items.append(value)
        elif name == "occurred_at":
            if not isinstance(value, datetime):
                raise TypeError("occurred_at must be a datetime")
            items.append(canonical_time(value))
        elif name == "detail":
            if not isinstance(value, Mapping):
                raise TypeError("detail must be a mapping")
            items.append(dict(value))
        else:
            items.append(_text(value, name))
    return hashlib.sha256(canonical_json(items).encode("ascii")).hexdigest()


def _text(value: object, name: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str")
    return str(value)  # an Outcome (a StrEnum) becomes its plain value


def verify_chain(
    entries: Iterable[EntryView],
    *,
    anchor_seq: int,
    anchor_hash: str,
    head_seq: int,
    head_hash: str,
) -> list[ChainProblem]:
    """Check ``entries`` (in ascending seq order) against the anchor and head; [] when intact.

    Entries at or before ``anchor_seq`` are ignored (retention removed what came before); every
    seq from ``anchor_seq + 1`` through ``head_seq`` must be present, sealed with that seq, and
    chained to the one before. Problems come sorted by seq.
    """
    checker = ChainChecker(
        anchor_seq=anchor_seq, anchor_hash=anchor_hash, head_seq=head_seq, head_hash=head_hash
    )
    for entry in entries:
        checker.feed(entry)
    return checker.finish()


class ChainChecker:
    """:func:`verify_chain` a piece at a time: :meth:`feed` every entry in ascending seq order
    (from wherever they come), then :meth:`finish` once. Memory stays small: the previous row,
    the gaps and breaks seen, and at most :data:`MAX_SUSPECTS` rows that fail their own hash."""

    def __init__(self, *, anchor_seq: int, anchor_hash: str, head_seq: int, head_hash: str) -> None:
        self.anchor_seq = anchor_seq
        self.anchor_hash = anchor_hash
        self.head_seq = head_seq
        self.head_hash = head_hash
        self.problems: list[ChainProblem] = []
        self.previous: EntryView | None = None  # the last row read within (anchor, head]
        self.last_position = anchor_seq
        self.gaps: list[tuple[int, int]] = []  # runs of seqs with no row, within (anchor, head]
        self.suspects: list[EntryView] = []  # rows whose hash does not seal their contents
        self.beyond_head: list[EntryView] = []  # self-consistent rows after the head
        self.breaks: list[int] = []  # q: row q is not chained to row q-1 (or to the anchor)
        self.head_row: EntryView | None = None

    def feed(self, entry: EntryView) -> None:
        """Take the next entry; raises ValueError if seqs go backwards."""
        if entry.seq <= self.anchor_seq:
            return
        if entry.seq <= self.last_position:
            if entry.seq == self.last_position:
                self._problem(entry.seq, "forged", "appears twice")
                return
            raise ValueError("entries must come in ascending seq order")
        sealed = entry.seal_matches()
        if entry.seq > self.head_seq:
            self.last_position = entry.seq
            if sealed:
                self.beyond_head.append(entry)
            else:
                self._suspect(entry)
            return
        if entry.seq > self.last_position + 1:
            self.gaps.append((self.last_position + 1, entry.seq - 1))
        elif self._expected_prev_hash() != entry.prev_hash:
            self.breaks.append(entry.seq)
        if not sealed:
            self._suspect(entry)
        if entry.seq == self.head_seq:
            self.head_row = entry
        self.previous = entry
        self.last_position = entry.seq

    def _expected_prev_hash(self) -> str:
        return self.anchor_hash if self.previous is None else self.previous.hash

    def _suspect(self, entry: EntryView) -> None:
        if len(self.suspects) < MAX_SUSPECTS:
            self.suspects.append(entry)
        else:
            self._changed(entry.seq)

    def _changed(self, seq: int) -> None:
        self._problem(seq, "changed", "its contents no longer match its hash")

    def _problem(self, seq: int, kind: ProblemKind, why: str, last_seq: int | None = None) -> None:
        last = seq if last_seq is None else last_seq
        where = f"entry {seq}" if last == seq else f"entries {seq}-{last}"
        self.problems.append(ChainProblem(seq, kind, f"{where} {kind}: {why}", last))

    def finish(self) -> list[ChainProblem]:
        """Every problem found, sorted by seq (empty when the chain is intact)."""
        if self.head_seq < self.anchor_seq:
            self._problem(
                self.head_seq, "forged", f"the head is behind the anchor (seq {self.anchor_seq})"
            )
            return self._sorted()
        tail_start = (self.anchor_seq if self.previous is None else self.previous.seq) + 1
        if tail_start <= self.head_seq:
            self.gaps.append((tail_start, self.head_seq))
        moved = self._resolve_moves()
        disturbed = {entry.seq for entry in self.suspects}
        self._report_missing(moved)
        for q in self.breaks:
            if q in disturbed or q - 1 in disturbed:
                continue  # explained by the changed or reordered row itself
            if q == self.anchor_seq + 1:
                self._problem(q, "forged", "it is not chained to the anchor")
            else:
                self._problem(
                    q - 1, "forged", f"it was resealed: entry {q} is chained to another hash"
                )
        for entry in self.beyond_head:
            self._problem(
                entry.seq, "forged", f"it lies past the head (seq {self.head_seq}), outside the log"
            )
        head = self.head_row
        if head is not None and head.seq not in disturbed and head.hash != self.head_hash:
            self._problem(head.seq, "forged", "the head records another hash for it")
        return self._sorted()

    def _sorted(self) -> list[ChainProblem]:
        return sorted(self.problems, key=lambda problem: (problem.seq, problem.kind))

    def _missing_seqs(self) -> Iterator[int]:
        for start, end in self.gaps:
            yield from range(start, end + 1)

    def _resolve_moves(self) -> dict[int, int]:
        """Suspect rows sealed under another seq: {seq the row sits at: seq it was sealed as}."""
        candidates = {entry.seq for entry in self.suspects}
        missing_count = sum(end - start + 1 for start, end in self.gaps)
        if missing_count <= MAX_MISSING_CANDIDATES:
            candidates.update(self._missing_seqs())
        ordered = sorted(candidates)
        moved: dict[int, int] = {}
        for entry in self.suspects:
            original = next(
                (seq for seq in ordered if seq != entry.seq and entry.seal_matches(seq)), None
            )
            if original is None:
                if entry.seq > self.head_seq:
                    self._problem(
                        entry.seq,
                        "forged",
                        f"it lies past the head (seq {self.head_seq}) and matches no hash",
                    )
                else:
                    self._changed(entry.seq)
            else:
                moved[entry.seq] = original
                self._problem(
                    entry.seq, "reordered", f"the row here was sealed as entry {original}"
                )
        return moved

    def _report_missing(self, moved: dict[int, int]) -> None:
        """Seqs in (anchor, head] that no row is sealed as: gaps and the places moved rows left,
        less the places moved rows came from. A run that reaches the head is a truncation."""
        found_elsewhere = set(moved.values())
        runs = [run for start, end in self.gaps for run in _split(start, end, found_elsewhere)]
        runs += [(seq, seq) for seq in moved if seq <= self.head_seq and seq not in found_elsewhere]
        for start, end in _merge(runs):
            if end == self.head_seq:
                self._problem(start, "truncated", f"the head records entries through {end}", end)
            else:
                self._problem(start, "deleted", "missing from the log", end)


def _split(start: int, end: int, holes: set[int]) -> Iterator[tuple[int, int]]:
    """The runs of ``start..end`` that avoid ``holes``."""
    run_start = start
    for seq in sorted(s for s in holes if start <= s <= end):
        if seq > run_start:
            yield run_start, seq - 1
        run_start = seq + 1
    if run_start <= end:
        yield run_start, end


def _merge(runs: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Sorted runs with touching or overlapping ones joined."""
    merged: list[tuple[int, int]] = []
    for start, end in sorted(runs):
        if merged and start <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged
