"""The audit log on a real database: appends, tamper detection through raw SQL, concurrency,
clinic-scoped search, CSV export, retention and the ``tsunagu audit`` commands."""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import os
import re
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from tortoise import connections

from patient_portal.audit import (
    EXPORT_ACTION,
    PURGE_ACTION,
    AuditEvent,
    AuditLog,
    Outcome,
    VerifyReport,
)
from patient_portal.audit.commands import register
from patient_portal.audit.models import AuditEntry, AuditHead
from patient_portal.db import database
from patient_portal.settings import Settings
from tests.support.databases import BACKEND

T0 = datetime(2026, 3, 2, 9, 0, 0, 250000, tzinfo=UTC)
TSUNAGU = str(Path(sys.executable).with_name("tsunagu"))


def event(n: int, *, clinic: str = "clinic-a", **changes: object) -> AuditEvent:
    values: dict[str, object] = {
        "action": "patient.read" if n % 2 else "booking.update",
        "outcome": Outcome.SUCCESS,
        "actor_kind": "staff",
        "actor_id": f"staff-{n % 3}",
        "actor_role": "doctor",
        "clinic_id": clinic,
        "target_kind": "patient",
        "target_id": f"patient-{n}",
        "ip": "2001:db8::7",
        "user_agent": "Mozilla/5.0 (X11; Linux x86_64)",
        "detail": {"via": "portal", "n": n},
        **changes,
    }
    return AuditEvent(**values)  # type: ignore[arg-type]


async def append(log: AuditLog, count: int, *, clinic: str = "clinic-a") -> None:
    for n in range(1, count + 1):
        await log.record(event(n, clinic=clinic), now=T0 + timedelta(minutes=n))


async def sql(query: str, *params: object) -> None:
    """Run ``query`` (written with ``?`` placeholders) as an intruder with database access would."""
    if BACKEND == "postgres":
        numbers = iter(range(1, len(params) + 1))
        query = re.sub(r"\?", lambda _: f"${next(numbers)}", query)
    await connections.get("default").execute_query(query, list(params))


def problems(report: VerifyReport) -> list[tuple[str, int, int]]:
    return [(problem.kind, problem.seq, problem.last_seq) for problem in report.problems]


@pytest.fixture
def log() -> AuditLog:
    return AuditLog()


# --- appending and verifying ----------------------------------------------------------------------


async def test_appends_number_entries_and_the_chain_verifies(db: Settings, log: AuditLog) -> None:
    assert (await log.verify()).ok  # an empty log, before the head row exists
    seqs = [await log.record(event(n), now=T0 + timedelta(minutes=n)) for n in range(1, 21)]
    assert seqs == list(range(1, 21))
    report = await log.verify()
    assert report == VerifyReport(entries=20, first_seq=1, last_seq=20, problems=())
    head = await AuditHead.get(id="head")
    newest = await AuditEntry.get(seq=20)
    assert (head.last_seq, head.last_hash) == (20, newest.hash)
    assert newest.prev_hash == (await AuditEntry.get(seq=19)).hash


async def test_an_entry_round_trips_exactly(db: Settings, log: AuditLog) -> None:
    seq = await log.record(
        event(1, user_agent="x" * 500, detail={"reason": "totp", "attempt": 3, "ok": False}),
        now=datetime(2026, 3, 2, 18, 0, 0, 1, tzinfo=ZoneInfo("Asia/Tokyo")),
    )
    [entry] = await log.search(clinic_id="clinic-a")
    assert entry.seq == seq
    assert entry.occurred_at == datetime(2026, 3, 2, 9, 0, 0, 1, tzinfo=UTC)
    assert entry.user_agent == "x" * 200  # cut to the column, not refused
    assert entry.detail == {"reason": "totp", "attempt": 3, "ok": False}
    assert entry.seal_matches()


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"actor_kind": "robot"}, "actor_kind"),
        ({"action": ""}, "action"),
        ({"target_id": "t" * 65}, "target_id"),
        ({"detail": {"temperature": 37.5}}, "float"),
        ({"detail": {"note": "a\x00b"}}, "NUL"),
        ({"detail": {1: "x"}}, "key"),
        ({"detail": {"blob": "x" * 3000}}, "longer"),
    ],
)
def test_events_that_cannot_be_stored_faithfully_are_refused(
    changes: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        event(1, **changes)


def test_an_event_keeps_its_own_copy_of_detail() -> None:
    detail: dict[str, object] = {"n": 1}
    recorded = event(1, detail=detail)
    detail["n"] = 2
    assert recorded.detail == {"n": 1}


async def test_a_naive_time_is_refused(db: Settings, log: AuditLog) -> None:
    with pytest.raises(ValueError, match="timezone"):
        await log.record(event(1), now=datetime(2026, 3, 2, 9, 0))  # noqa: DTZ001 - the point


# --- tampering through raw SQL, named at the right seq ------------------------------------------


async def test_an_edited_column_is_reported_as_changed(db: Settings, log: AuditLog) -> None:
    await append(log, 12)
    await sql("UPDATE portal_audit_entry SET target_id = ? WHERE seq = ?", "patient-999", 7)
    report = await log.verify()
    assert problems(report) == [("changed", 7, 7)]
    assert report.problems[0].message.startswith("entry 7 changed")


async def test_an_edited_time_is_reported_as_changed(db: Settings, log: AuditLog) -> None:
    await append(log, 5)
    await sql(
        "UPDATE portal_audit_entry SET occurred_at = ? WHERE seq = ?",
        T0 - timedelta(days=1),
        3,
    )
    assert problems(await log.verify()) == [("changed", 3, 3)]


async def test_a_deleted_middle_entry_is_reported(db: Settings, log: AuditLog) -> None:
    await append(log, 12)
    await sql("DELETE FROM portal_audit_entry WHERE seq = ?", 6)
    report = await log.verify()
    assert problems(report) == [("deleted", 6, 6)]
    assert report.problems[0].message.startswith("entry 6 deleted")


async def test_swapped_entries_are_reported_as_reordered(db: Settings, log: AuditLog) -> None:
    await append(log, 12)
    await sql("UPDATE portal_audit_entry SET seq = ? WHERE seq = ?", -1, 4)
    await sql("UPDATE portal_audit_entry SET seq = ? WHERE seq = ?", 4, 9)
    await sql("UPDATE portal_audit_entry SET seq = ? WHERE seq = ?", 9, -1)
    assert problems(await log.verify()) == [("reordered", 4, 4), ("reordered", 9, 9)]


async def test_a_deleted_newest_entry_is_reported_as_truncated(db: Settings, log: AuditLog) -> None:
    await append(log, 12)
    await sql("DELETE FROM portal_audit_entry WHERE seq = ?", 12)
    report = await log.verify()
    assert problems(report) == [("truncated", 12, 12)]
    assert report.problems[0].message.startswith("entry 12 truncated")


async def test_a_row_inserted_past_the_head_is_forged(db: Settings, log: AuditLog) -> None:
    await append(log, 3)
    await sql(
        "INSERT INTO portal_audit_entry (id, seq, occurred_at, actor_kind, actor_id, actor_role,"
        " clinic_id, action, target_kind, target_id, outcome, ip, user_agent, detail, prev_hash,"
        " hash) VALUES (?, ?, ?, 'staff', '', '', 'clinic-a', 'patient.read', '', '', 'success',"
        " '', '', '{}', ?, ?)",
        "0f3e7d2a-51c4-4c55-9d0b-1d8c1f0c3a11",
        4,
        T0,
        "0" * 64,
        "1" * 64,
    )
    assert problems(await log.verify()) == [("forged", 4, 4)]


# --- concurrency ----------------------------------------------------------------------------------


async def test_concurrent_appends_get_every_seq_once_and_keep_the_chain(db: Settings) -> None:
    """Starts on an empty table, so the first appenders also race to create the head row. On
    PostgreSQL the appends run on separate pooled connections and meet at the row lock."""
    log = AuditLog()
    seqs = await asyncio.gather(
        *(log.record(event(n), now=T0 + timedelta(seconds=n)) for n in range(30))
    )
    assert sorted(seqs) == list(range(1, 31))
    assert await AuditEntry.all().count() == 30
    assert await log.verify() == VerifyReport(entries=30, first_seq=1, last_seq=30, problems=())


async def test_appends_from_two_logs_in_one_process_do_not_fork(db: Settings) -> None:
    first, second = AuditLog(), AuditLog()
    await asyncio.gather(
        *(
            (first if n % 2 else second).record(event(n), now=T0 + timedelta(seconds=n))
            for n in range(20)
        )
    )
    assert (await first.verify()).entries == 20
    assert (await first.verify()).ok


async def test_an_entry_recorded_in_a_failed_transaction_leaves_no_trace(
    db: Settings, log: AuditLog
) -> None:
    from tortoise.transactions import in_transaction

    async def failing_use_case() -> None:
        async with in_transaction():
            await log.record(event(3), now=T0)
            raise RuntimeError("the caller's write failed")

    await append(log, 2)
    with pytest.raises(RuntimeError):
        await failing_use_case()
    assert await log.record(event(4), now=T0) == 3
    assert (await log.verify()).ok


# --- search and export ----------------------------------------------------------------------------


async def test_search_is_scoped_to_one_clinic_and_filters(db: Settings, log: AuditLog) -> None:
    await append(log, 10, clinic="clinic-a")
    await append(log, 4, clinic="clinic-b")
    await log.record(
        event(99, action="auth.sign_in", outcome=Outcome.DENIED, actor_kind="anonymous"),
        now=T0 + timedelta(days=1),
    )

    everything_a = await log.search(clinic_id="clinic-a")
    assert len(everything_a) == 11
    assert {entry.clinic_id for entry in everything_a} == {"clinic-a"}
    assert [entry.seq for entry in everything_a] == sorted(
        (entry.seq for entry in everything_a), reverse=True
    )
    assert {entry.clinic_id for entry in await log.search(clinic_id="clinic-b")} == {"clinic-b"}
    assert await log.search(clinic_id="clinic-c") == []
    with pytest.raises(ValueError, match="clinic"):
        await log.search(clinic_id="")

    reads = await log.search(clinic_id="clinic-a", action="patient.read")
    assert [entry.target_id for entry in reads] == [f"patient-{n}" for n in (9, 7, 5, 3, 1)]
    denied = await log.search(clinic_id="clinic-a", outcome=Outcome.DENIED)
    assert [entry.action for entry in denied] == ["auth.sign_in"]
    by_actor = await log.search(clinic_id="clinic-a", actor_id="staff-1")
    assert {entry.target_id for entry in by_actor} == {
        "patient-1",
        "patient-4",
        "patient-7",
        "patient-10",
    }
    one = await log.search(clinic_id="clinic-a", target_id="patient-4")
    assert [entry.seq for entry in one] == [4]
    window = await log.search(
        clinic_id="clinic-a", since=T0 + timedelta(minutes=3), until=T0 + timedelta(minutes=6)
    )
    assert [entry.target_id for entry in window] == ["patient-5", "patient-4", "patient-3"]

    page1 = await log.search(clinic_id="clinic-a", limit=4)
    page2 = await log.search(clinic_id="clinic-a", limit=4, before_seq=page1[-1].seq)
    assert [e.seq for e in page1 + page2] == [e.seq for e in everything_a[:8]]
    with pytest.raises(ValueError, match="limit"):
        await log.search(clinic_id="clinic-a", limit=0)


async def test_csv_export_has_a_header_and_defuses_formulas(db: Settings, log: AuditLog) -> None:
    await log.record(
        event(1, user_agent='=HYPERLINK("http://evil.invalid","x")', target_id="+1"),
        now=T0,
    )
    await log.record(event(2, actor_role="@admin", actor_id="-5", ip="\tx"), now=T0)
    await log.record(event(3, clinic="clinic-b"), now=T0)

    lines = [line async for line in log.export_csv(clinic_id="clinic-a")]
    rows = list(csv.reader(io.StringIO("".join(lines))))
    assert len(lines) == 3
    assert rows[0] == [
        "seq", "occurred_at", "actor_kind", "actor_id", "actor_role", "clinic_id", "action",
        "target_kind", "target_id", "outcome", "ip", "user_agent", "detail", "prev_hash", "hash",
    ]  # fmt: skip
    first = dict(zip(rows[0], rows[1], strict=True))
    second = dict(zip(rows[0], rows[2], strict=True))
    assert first["user_agent"] == '\'=HYPERLINK("http://evil.invalid","x")'
    assert first["target_id"] == "'+1"
    assert (second["actor_role"], second["actor_id"], second["ip"]) == ("'@admin", "'-5", "'\tx")
    assert first["occurred_at"] == "2026-03-02T09:00:00.250000+00:00"
    assert first["detail"] == '{"n": 1, "via": "portal"}'
    assert {row[5] for row in rows[1:]} == {"clinic-a"}

    since_later = [
        line async for line in log.export_csv(clinic_id="clinic-a", since=T0 + timedelta(seconds=1))
    ]
    assert len(since_later) == 1  # the header alone
    with pytest.raises(ValueError, match="clinic"):
        [line async for line in log.export_csv(clinic_id="")]


# --- retention ------------------------------------------------------------------------------------


async def test_purge_removes_the_oldest_and_moves_the_anchor(db: Settings, log: AuditLog) -> None:
    await append(log, 12)  # entry n happened at T0 + n minutes
    deleted = await log.purge_before(T0 + timedelta(minutes=5, seconds=30))
    assert deleted == 5
    head = await AuditHead.get(id="head")
    assert (head.anchor_seq, head.anchor_hash) == (5, (await AuditEntry.get(seq=6)).prev_hash)
    assert await AuditEntry.filter(seq__lte=5).count() == 0
    assert await log.verify() == VerifyReport(entries=7, first_seq=6, last_seq=12, problems=())

    assert await log.purge_before(T0) == 0
    await log.record(event(13), now=T0 + timedelta(minutes=13))
    assert (await log.verify()).ok
    await sql("DELETE FROM portal_audit_entry WHERE seq = ?", 6)
    assert problems(await log.verify()) == [("deleted", 6, 6)]


async def test_purge_stops_at_the_first_entry_inside_the_period(
    db: Settings, log: AuditLog
) -> None:
    """Only a prefix goes: an old-stamped entry after a newer one waits for the next purge."""
    await log.record(event(1), now=T0)
    await log.record(event(2), now=T0 + timedelta(days=10))
    await log.record(event(3), now=T0)
    assert await log.purge_before(T0 + timedelta(days=1)) == 1
    assert (await log.verify()).ok


async def test_purge_of_everything_leaves_an_empty_verifiable_chain(
    db: Settings, log: AuditLog
) -> None:
    await append(log, 2500)  # more than one batch
    assert await log.purge_before(T0 + timedelta(days=30)) == 2500
    assert await log.verify() == VerifyReport(entries=0, first_seq=2501, last_seq=2500, problems=())
    assert await log.record(event(1), now=T0 + timedelta(days=31)) == 2501
    assert (await log.verify()).ok


# --- the command line -----------------------------------------------------------------------------


def cli(settings: Settings) -> Callable[..., int]:
    """The ``audit`` commands on a parser of their own, run in this process."""
    parser = argparse.ArgumentParser(prog="tsunagu")
    register(parser.add_subparsers(required=True), lambda: settings)

    def run(*argv: str) -> int:
        args = parser.parse_args(argv)
        result: int = args.run(args)
        return result

    return run


def seed(settings: Settings, count: int) -> None:
    async def main() -> None:
        async with database(settings, global_fallback=False):
            log = AuditLog()
            await log.record(event(0, user_agent="=cmd|' /C calc'!A0"), now=T0)
            await append(log, count - 1)

    asyncio.run(main())


def tamper(settings: Settings, query: str, *params: object) -> None:
    async def main() -> None:
        async with database(settings, global_fallback=False):
            await sql(query, *params)

    asyncio.run(main())


def entries(settings: Settings) -> list[tuple[int, str, str]]:
    async def main() -> list[tuple[int, str, str]]:
        async with database(settings, global_fallback=False):
            rows = await AuditEntry.all().order_by("seq").values_list("seq", "action", "actor_kind")
            return [(int(seq), str(action), str(kind)) for seq, action, kind in rows]

    return asyncio.run(main())


def test_commands_verify_export_and_purge(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    run = cli(settings)
    seed(settings, 8)
    assert run("audit", "verify") == 0
    assert capsys.readouterr().out == "audit log intact: 8 entries\n"

    assert run("audit", "export", "--clinic", "clinic-a", "--since", "2026-03-02") == 0
    rows = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert rows[0][0] == "seq"
    assert len(rows) == 9
    assert rows[1][11] == "'=cmd|' /C calc'!A0"
    assert entries(settings)[-1] == (9, EXPORT_ACTION, "system")
    assert run("audit", "export", "--clinic", "clinic-a", "--until", "2026-03-01") == 0
    assert len(capsys.readouterr().out.splitlines()) == 1

    assert run("audit", "purge") == 0  # seven years: nothing is that old
    assert capsys.readouterr().out == "purged 0 audit entries older than 2555 days\n"
    assert run("audit", "purge", "--older-than-days", "1") == 0  # T0 is in the past
    assert capsys.readouterr().out == "purged 8 audit entries older than 1 days\n"
    assert [action for _, action, _ in entries(settings)] == [
        EXPORT_ACTION, EXPORT_ACTION, PURGE_ACTION, PURGE_ACTION
    ]  # fmt: skip
    assert run("audit", "verify") == 0
    assert capsys.readouterr().out == "audit log intact: 4 entries\n"


def test_verify_command_names_each_problem_and_exits_1(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    seed(settings, 10)
    tamper(settings, "UPDATE portal_audit_entry SET action = ? WHERE seq = ?", "patient.none", 3)
    tamper(settings, "DELETE FROM portal_audit_entry WHERE seq = ?", 10)
    assert cli(settings)("audit", "verify") == 1
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 2
    assert out[0].startswith("entry 3 changed: ")
    assert out[1].startswith("entry 10 truncated: ")


def test_command_arguments_are_checked(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    run = cli(settings)
    for argv in (
        ("audit", "export"),
        ("audit", "export", "--clinic", "a", "--since", "yesterday"),
        ("audit", "purge", "--older-than-days", "0"),
    ):
        with pytest.raises(SystemExit) as stopped:
            run(*argv)
        assert stopped.value.code == 2
    capsys.readouterr()


def test_the_tsunagu_script_runs_the_audit_commands(settings: Settings, tmp_path: Path) -> None:
    """As an operator runs them: a separate process, settings from the environment."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TSUNAGU_")}
    env["TSUNAGU_DATA_DIR"] = str(tmp_path / "var")
    env["TSUNAGU_DATABASE_URL"] = settings.database.tortoise_url

    def tsunagu(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [TSUNAGU, "audit", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    seed(settings, 6)
    verified = tsunagu("verify")
    assert (verified.returncode, verified.stdout) == (0, "audit log intact: 6 entries\n")
    exported = tsunagu("export", "--clinic", "clinic-a")
    assert exported.returncode == 0, exported.stderr
    rows = list(csv.reader(io.StringIO(exported.stdout)))
    assert [row[0] for row in rows] == ["seq", "1", "2", "3", "4", "5", "6"]

    tamper(settings, "UPDATE portal_audit_entry SET seq = ? WHERE seq = ?", -1, 2)
    tamper(settings, "UPDATE portal_audit_entry SET seq = ? WHERE seq = ?", 2, 5)
    tamper(settings, "UPDATE portal_audit_entry SET seq = ? WHERE seq = ?", 5, -1)
    tampered = tsunagu("verify")
    assert tampered.returncode == 1
    assert [line.split(":")[0] for line in tampered.stdout.splitlines()] == [
        "entry 2 reordered",
        "entry 5 reordered",
    ]
    assert "Traceback" not in tampered.stderr
