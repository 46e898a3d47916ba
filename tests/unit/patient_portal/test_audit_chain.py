"""The pure hash chain: sealing entries, and naming exactly what was tampered with."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from patient_portal.audit.chain import (
    GENESIS,
    HASHED_FIELDS,
    ChainProblem,
    EntryView,
    entry_hash,
    verify_chain,
)

T0 = datetime(2026, 4, 1, 9, 30, 15, 123456, tzinfo=UTC)


def sealed(seq: int, prev_hash: str, **changes: object) -> EntryView:
    values: dict[str, object] = {
        "seq": seq,
        "occurred_at": T0 + timedelta(seconds=seq),
        "actor_kind": "staff",
        "actor_id": f"staff-{seq % 3}",
        "actor_role": "doctor",
        "clinic_id": "clinic-a",
        "action": "patient.read",
        "target_kind": "patient",
        "target_id": f"p-{seq}",
        "outcome": "success",
        "ip": "192.0.2.7",
        "user_agent": "Mozilla/5.0",
        "detail": {"via": "portal", "n": seq},
        **changes,
    }
    digest = entry_hash(prev_hash, values)
    return EntryView(prev_hash=prev_hash, hash=digest, **values)  # type: ignore[arg-type]


def chain(count: int, *, first: int = 1, anchor_hash: str = GENESIS) -> list[EntryView]:
    entries: list[EntryView] = []
    prev = anchor_hash
    for seq in range(first, first + count):
        entries.append(sealed(seq, prev))
        prev = entries[-1].hash
    return entries


def check(
    entries: Sequence[EntryView],
    *,
    head: EntryView | None = None,
    anchor_seq: int = 0,
    anchor_hash: str = GENESIS,
) -> list[tuple[str, int, int]]:
    """verify_chain's problems as (kind, seq, last_seq), with the head taken from ``head``."""
    ordered = sorted(entries, key=lambda entry: entry.seq)
    problems = verify_chain(
        ordered,
        anchor_seq=anchor_seq,
        anchor_hash=anchor_hash,
        head_seq=head.seq if head else anchor_seq,
        head_hash=head.hash if head else anchor_hash,
    )
    for problem in problems:
        assert problem.message.startswith(
            f"entr{'y' if problem.seq == problem.last_seq else 'ies'}"
        )
        assert str(problem.seq) in problem.message
        assert "\n" not in problem.message
    return [(problem.kind, problem.seq, problem.last_seq) for problem in problems]


def without(entries: list[EntryView], *seqs: int) -> list[EntryView]:
    return [entry for entry in entries if entry.seq not in seqs]


def renumbered(entries: list[EntryView], moves: dict[int, int]) -> list[EntryView]:
    """Rows given new seq values (what an UPDATE … SET seq = … does), hashes untouched."""
    return [replace(entry, seq=moves.get(entry.seq, entry.seq)) for entry in entries]


def resealed(entry: EntryView, **changes: object) -> EntryView:
    """An edit whose author also recomputed the row's hash (knowing the algorithm)."""
    values = {**entry.hashed_fields(), **changes}
    del values["seq"]
    return sealed(entry.seq, entry.prev_hash, **values)


# --- entry_hash --------------------------------------------------------------------------------


def test_entry_hash_format_is_pinned() -> None:
    """Changing the serialisation would make every stored log fail verification."""
    entry = sealed(1, GENESIS)
    assert entry.hash == "82740eca156f7a24fa226053ed728d0c894da890d6b4c429612459ad6c6090c3"


def test_entry_hash_is_the_same_instant_in_any_timezone_and_any_key_order() -> None:
    entry = sealed(1, GENESIS)
    fields = entry.hashed_fields()
    jst = timezone(timedelta(hours=9))
    fields["occurred_at"] = entry.occurred_at.astimezone(jst)
    fields["detail"] = {"n": 1, "via": "portal"}
    assert entry_hash(GENESIS, dict(reversed(list(fields.items())))) == entry.hash


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ({"actor_id": "ab", "actor_role": ""}, {"actor_id": "a", "actor_role": "b"}),
        ({"target_kind": "x,", "target_id": ""}, {"target_kind": "x", "target_id": ","}),
        ({"detail": {"a": "1"}}, {"detail": {"a": 1}}),
        ({"occurred_at": T0}, {"occurred_at": T0 + timedelta(microseconds=1)}),
        ({"ip": '"'}, {"ip": '\\"'}),
    ],
)
def test_entry_hash_tells_apart_values_that_would_concatenate_alike(
    first: dict[str, object], second: dict[str, object]
) -> None:
    assert sealed(1, GENESIS, **first).hash != sealed(1, GENESIS, **second).hash


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"occurred_at": datetime(2026, 4, 1, 9, 30)}, ValueError),  # noqa: DTZ001 - the point
        ({"seq": True}, TypeError),
        ({"seq": "1"}, TypeError),
        ({"actor_id": 7}, TypeError),
        ({"detail": ["a"]}, TypeError),
    ],
)
def test_entry_hash_refuses_ambiguous_values(changes: dict[str, object], error: type) -> None:
    fields = {**sealed(1, GENESIS).hashed_fields(), **changes}
    with pytest.raises(error):
        entry_hash(GENESIS, fields)


def test_entry_hash_needs_every_field() -> None:
    fields = sealed(1, GENESIS).hashed_fields()
    del fields["user_agent"]
    with pytest.raises(ValueError, match="user_agent"):
        entry_hash(GENESIS, fields)


def test_entry_hash_takes_lone_surrogates() -> None:
    assert sealed(1, GENESIS, user_agent="\udc80").hash != sealed(1, GENESIS).hash


# --- verify_chain: each kind of tampering, named at the right seq --------------------------------

LOG = chain(10)
HEAD = LOG[-1]


def edited(*edits: EntryView) -> list[EntryView]:
    """LOG with the rows of ``edits`` (same seq) put in place of the originals."""
    by_seq = {entry.seq: entry for entry in edits}
    return [by_seq.get(entry.seq, entry) for entry in LOG]


def at(seq: int) -> EntryView:
    return LOG[seq - 1]


CASES: list[tuple[str, list[EntryView], list[tuple[str, int, int]]]] = [
    ("intact", LOG, []),
    ("one column edited", edited(replace(at(5), action="x")), [("changed", 5, 5)]),
    ("hash edited", edited(replace(at(5), hash="f" * 64)), [("changed", 5, 5)]),
    ("prev_hash edited", edited(replace(at(5), prev_hash="f" * 64)), [("changed", 5, 5)]),
    (
        "two rows edited",
        edited(replace(at(3), ip="x"), replace(at(4), ip="y")),
        [("changed", 3, 3), ("changed", 4, 4)],
    ),
    ("first row deleted", without(LOG, 1), [("deleted", 1, 1)]),
    ("middle row deleted", without(LOG, 5), [("deleted", 5, 5)]),
    ("run of rows deleted", without(LOG, 4, 5, 6), [("deleted", 4, 6)]),
    ("two rows deleted apart", without(LOG, 3, 7), [("deleted", 3, 3), ("deleted", 7, 7)]),
    (
        "two rows swapped",
        renumbered(LOG, {3: 7, 7: 3}),
        [("reordered", 3, 3), ("reordered", 7, 7)],
    ),
    (
        "neighbours swapped",
        renumbered(LOG, {4: 5, 5: 4}),
        [("reordered", 4, 4), ("reordered", 5, 5)],
    ),
    (
        "newest swapped",
        renumbered(LOG, {9: 10, 10: 9}),
        [("reordered", 9, 9), ("reordered", 10, 10)],
    ),
    (
        "three rotated",
        renumbered(LOG, {2: 5, 5: 8, 8: 2}),
        [("reordered", 2, 2), ("reordered", 5, 5), ("reordered", 8, 8)],
    ),
    ("newest deleted", without(LOG, 10), [("truncated", 10, 10)]),
    ("newest three deleted", without(LOG, 8, 9, 10), [("truncated", 8, 10)]),
    ("everything deleted", [], [("truncated", 1, 10)]),
    (
        "a row deleted and the rest renumbered to hide the gap",
        renumbered(without(LOG, 5), {s: s - 1 for s in range(6, 11)}),
        [("deleted", 5, 5), *[("reordered", s, s) for s in range(5, 10)]],
    ),
    ("a row moved past the head", renumbered(LOG, {5: 15}), [("reordered", 15, 15)]),
    (
        "a row moved into a gap",
        renumbered(without(LOG, 8), {3: 8}),
        [("deleted", 8, 8), ("reordered", 8, 8)],
    ),
    ("a row edited and resealed", edited(resealed(at(5), action="x")), [("forged", 5, 5)]),
    ("a row appended outside the log", [*LOG, sealed(11, HEAD.hash)], [("forged", 11, 11)]),
    (
        "a junk row past the head",
        [*LOG, replace(sealed(11, HEAD.hash), hash="e" * 64)],
        [("forged", 11, 11)],
    ),
    ("a row appearing twice", [*LOG[:5], LOG[4], *LOG[5:]], [("forged", 5, 5)]),
]


@pytest.mark.parametrize(
    ("entries", "expected"),
    [pytest.param(entries, expected, id=name) for name, entries, expected in CASES],
)
def test_verify_chain_names_the_problem(
    entries: list[EntryView], expected: list[tuple[str, int, int]]
) -> None:
    assert check(entries, head=HEAD) == expected


def test_the_newest_row_edited_and_resealed_disagrees_with_the_head() -> None:
    entries = [*LOG[:-1], resealed(HEAD, outcome="denied")]
    assert check(entries, head=HEAD) == [("forged", 10, 10)]


def test_an_empty_log_is_intact() -> None:
    assert check([]) == []


def test_a_purged_log_chains_to_its_anchor() -> None:
    full = chain(12)
    anchor = full[4]
    kept = full[5:]
    assert check(full, head=full[-1], anchor_seq=5, anchor_hash=anchor.hash) == []
    assert check(kept, head=full[-1], anchor_seq=5, anchor_hash=anchor.hash) == []
    assert check(kept, head=full[-1], anchor_seq=5, anchor_hash="a" * 64) == [("forged", 6, 6)]
    assert check(kept[1:], head=full[-1], anchor_seq=5, anchor_hash=anchor.hash) == [
        ("deleted", 6, 6)
    ]


def test_a_head_behind_its_anchor_is_forged() -> None:
    problems = verify_chain([], anchor_seq=5, anchor_hash=GENESIS, head_seq=3, head_hash=GENESIS)
    assert [(problem.kind, problem.seq) for problem in problems] == [("forged", 3)]


def test_entries_out_of_order_are_a_caller_error() -> None:
    with pytest.raises(ValueError, match="ascending"):
        verify_chain(
            [LOG[1], LOG[0]], anchor_seq=0, anchor_hash=GENESIS, head_seq=2, head_hash=LOG[1].hash
        )


def test_problem_messages_are_one_line_naming_the_seq() -> None:
    problems = verify_chain(
        without(LOG, 4, 5), anchor_seq=0, anchor_hash=GENESIS, head_seq=10, head_hash=HEAD.hash
    )
    assert problems == [
        ChainProblem(4, "deleted", "entries 4-5 deleted: missing from the log", 5),
    ]


# --- properties -------------------------------------------------------------------------------

texts = st.text(max_size=12)
rows = st.fixed_dictionaries(
    {
        "actor_kind": st.sampled_from(["patient", "staff", "system", "anonymous"]),
        "actor_id": texts,
        "actor_role": texts,
        "clinic_id": texts,
        "action": texts,
        "target_kind": texts,
        "target_id": texts,
        "outcome": st.sampled_from(["success", "denied", "failure"]),
        "ip": texts,
        "user_agent": texts,
        "detail": st.dictionaries(texts, st.none() | st.booleans() | st.integers() | texts),
        "occurred_at": st.datetimes(timezones=st.just(UTC)),
    }
)


@st.composite
def logs(draw: st.DrawFn, min_size: int = 3) -> list[EntryView]:
    contents = draw(st.lists(rows, min_size=min_size, max_size=25))
    entries: list[EntryView] = []
    prev = GENESIS
    for seq, values in enumerate(contents, start=1):
        entries.append(sealed(seq, prev, **values))
        prev = entries[-1].hash
    return entries


@given(logs(min_size=0))
def test_any_untouched_log_verifies(entries: list[EntryView]) -> None:
    assert check(entries, head=entries[-1] if entries else None) == []


@given(logs(), st.data())
def test_any_edited_column_is_changed_at_its_seq(
    entries: list[EntryView], data: st.DataObject
) -> None:
    victim = data.draw(st.sampled_from(entries))
    column = data.draw(st.sampled_from([c for c in HASHED_FIELDS if c != "seq"]))
    value: Any = (
        data.draw(rows)[column]
        if column != "occurred_at"
        else victim.occurred_at + timedelta(microseconds=1)
    )
    edited = replace(victim, **{column: value})
    if edited.seal_matches():
        return  # drew the same value
    tampered = [edited if entry is victim else entry for entry in entries]
    assert check(tampered, head=entries[-1]) == [("changed", victim.seq, victim.seq)]


@given(logs(), st.data())
def test_any_deleted_row_is_named(entries: list[EntryView], data: st.DataObject) -> None:
    seq = data.draw(st.integers(1, len(entries)))
    kind = "truncated" if seq == len(entries) else "deleted"
    assert check(without(entries, seq), head=entries[-1]) == [(kind, seq, seq)]


@given(logs(), st.data())
def test_any_two_swapped_rows_are_reordered(entries: list[EntryView], data: st.DataObject) -> None:
    first, second = data.draw(
        st.lists(st.integers(1, len(entries)), min_size=2, max_size=2, unique=True)
    )
    tampered = renumbered(entries, {first: second, second: first})
    expected = sorted([("reordered", first, first), ("reordered", second, second)])
    assert check(tampered, head=entries[-1]) == expected


@given(logs(), st.data())
def test_any_cut_tail_is_truncated(entries: list[EntryView], data: st.DataObject) -> None:
    keep = data.draw(st.integers(0, len(entries) - 1))
    assert check(entries[:keep], head=entries[-1]) == [("truncated", keep + 1, len(entries))]
