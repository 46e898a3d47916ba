"""Encrypted backups: a seeded database round-trips exactly; a tampered, truncated or foreign
file, a wrong keyring and a non-empty target all fail with a clear error and change nothing."""

from __future__ import annotations

import argparse
import json
import os
import struct
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from tortoise import connections

from patient_portal.accounts.models import Patient
from patient_portal.crypto import backup as backup_module
from patient_portal.crypto.backup import (
    MAGIC,
    BackupError,
    decode_value,
    encode_value,
    restore_backup,
    write_backup,
)
from patient_portal.crypto.commands import register
from patient_portal.crypto.keyring import Keyring, keyring_for, parse_keyring, use_keyring
from patient_portal.db import database, migrate
from patient_portal.demo import PATIENTS, seed_demo_clinic
from patient_portal.jobs.models import JobRecord
from patient_portal.settings import Settings
from tests.integration.patient_portal.test_encryption_at_rest import DEMO_CIPHERTEXTS
from tests.support.databases import run_sync

NOW = datetime(2026, 11, 28, 9, 30, 15, 123456, tzinfo=UTC)
Snapshot = dict[str, list[dict[str, Any]]]


@pytest.fixture
def keyring(settings: Settings) -> Keyring:
    """The keyring of both test databases (``settings`` and ``empty_settings`` share a folder)."""
    return keyring_for(settings.key_file, production=False)


@pytest.fixture
async def source(settings: Settings, keyring: Keyring) -> Settings:
    """A migrated database with the demo clinic and a job with a JSON payload."""
    with use_keyring(keyring):
        async with database(settings, global_fallback=False):
            await seed_demo_clinic()
            await JobRecord.create(
                name="reminders.send",
                key="reminder:1",
                payload={"ids": [1, 2], "note": "見本", "nested": {"ok": True, "n": None}},
                run_at=NOW,
                max_attempts=3,
            )
    return settings


async def snapshot(settings: Settings) -> Snapshot:
    """Every row of every table but the migration bookkeeping, with raw SQL, in a stable order."""
    async with database(settings, global_fallback=False):
        connection = connections.get("default")
        if connection.capabilities.dialect == "postgres":
            query = (
                "SELECT table_name AS name FROM information_schema.tables "
                "WHERE table_schema = 'public'"
            )
        else:
            query = "SELECT name FROM sqlite_master WHERE type = 'table'"
        tables = [r["name"] for r in await connection.execute_query_dict(query)]
        result: Snapshot = {}
        for table in sorted(tables):
            if table == "tortoise_migrations" or table.startswith("sqlite_"):
                continue
            rows = await connection.execute_query_dict(f'SELECT * FROM "{table}"')  # noqa: S608
            result[table] = sorted((dict(row) for row in rows), key=repr)
        return result


async def make_backup(settings: Settings, keyring: Keyring, path: Path) -> None:
    async with database(settings, global_fallback=False):
        await write_backup(path, keyring, now=NOW)


async def restore(settings: Settings, keyring: Keyring, path: Path) -> None:
    await migrate(settings)
    with use_keyring(keyring):
        async with database(settings, global_fallback=False):
            await restore_backup(path, keyring)


def assert_empty(snap: Snapshot) -> None:
    assert snap, "the schema is there"
    assert {table: rows for table, rows in snap.items() if rows} == {}


async def test_a_seeded_database_round_trips_exactly(
    source: Settings, empty_settings: Settings, keyring: Keyring, tmp_path: Path
) -> None:
    path = tmp_path / "tsunagu.backup"
    async with database(source, global_fallback=False):
        summary = await write_backup(path, keyring, now=NOW)
    assert summary.tables["portal_patient"] == 4
    assert summary.tables["portal_job"] == 1
    assert summary.key_id == keyring.active
    assert summary.size == path.stat().st_size
    assert path.stat().st_mode & 0o777 == 0o600
    assert path.read_bytes().startswith(MAGIC)

    await restore(empty_settings, keyring, path)
    original, restored = await snapshot(source), await snapshot(empty_settings)
    assert restored == original
    assert sum(len(rows) for rows in restored.values()) > 15

    with use_keyring(keyring):
        async with database(empty_settings, global_fallback=False):
            names = {(p.family_name, p.given_name) for p in await Patient.all()}
            job = await JobRecord.get(key="reminder:1")
    assert names == {(m[0], m[1]) for members in PATIENTS.values() for m in members}
    assert job.payload == {"ids": [1, 2], "note": "見本", "nested": {"ok": True, "n": None}}
    assert job.run_at == NOW


async def test_the_backup_file_shows_no_patient_data(
    source: Settings, keyring: Keyring, tmp_path: Path
) -> None:
    path = tmp_path / "tsunagu.backup"
    await make_backup(source, keyring, path)
    data = path.read_bytes()
    for phone, members in PATIENTS.items():
        assert phone.encode() not in data
        for family, given, *_ in members:
            assert given.encode() not in data
            assert family.encode() not in data
    assert b"portal_patient" in data  # table names and counts are in the (plain) header


async def test_an_existing_file_is_never_overwritten(
    source: Settings, keyring: Keyring, tmp_path: Path
) -> None:
    path = tmp_path / "tsunagu.backup"
    path.write_bytes(b"keep me")
    with pytest.raises(BackupError, match="already exists"):
        await make_backup(source, keyring, path)
    assert path.read_bytes() == b"keep me"
    assert [name for name in os.listdir(tmp_path) if name.startswith(".")] == []


def _layout(data: bytes) -> tuple[bytes, list[bytes]]:
    """(magic + header, [chunk frames with their length prefix])."""
    (length,) = struct.unpack(">I", data[len(MAGIC) : len(MAGIC) + 4])
    offset = len(MAGIC) + 4 + length
    head, frames = data[:offset], []
    while offset < len(data):
        (size,) = struct.unpack(">I", data[offset : offset + 4])
        frames.append(data[offset : offset + 4 + size])
        offset += 4 + size
    return head, frames


def _flip(data: bytes, position: int) -> bytes:
    changed = bytearray(data)
    changed[position] ^= 0x01
    return bytes(changed)


def _header_count_changed(data: bytes) -> bytes:
    head, frames = _layout(data)
    altered = head.replace(b'["portal_patient", 4]', b'["portal_patient", 5]')
    assert altered != head
    return altered + b"".join(frames)


DAMAGE: dict[str, tuple[Callable[[bytes], bytes], str]] = {
    "byte flipped in the last chunk": (lambda d: _flip(d, len(d) - 20), "integrity check"),
    "byte flipped in a nonce": (lambda d: _flip(d, len(_layout(d)[0]) + 4), "integrity check"),
    "byte flipped in the magic": (lambda d: _flip(d, 0), "not a Tsunagu backup"),
    "row count in the header": (_header_count_changed, "integrity check"),
    "cut in the middle": (lambda d: d[: len(d) // 2], "truncated"),
    "last byte missing": (lambda d: d[:-1], "truncated"),
    "only the header": (lambda d: _layout(d)[0], "truncated"),
    "last chunk dropped": (lambda d: _layout(d)[0] + b"".join(_layout(d)[1][:-1]), "truncated"),
    "chunks swapped": (
        lambda d: (
            _layout(d)[0] + b"".join([_layout(d)[1][1], _layout(d)[1][0], *_layout(d)[1][2:]])
        ),
        "integrity check",
    ),
    "final chunk repeated": (lambda d: d + _layout(d)[1][-1], "unexpected data"),
    "empty file": (lambda d: b"", "not a Tsunagu backup"),
}


@pytest.mark.parametrize("damage", DAMAGE.keys())
async def test_a_damaged_file_is_refused_and_the_target_stays_empty(
    source: Settings,
    empty_settings: Settings,
    keyring: Keyring,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    damage: str,
) -> None:
    monkeypatch.setattr(backup_module, "CHUNK_SIZE", 256)  # several chunks to drop and swap
    path = tmp_path / "tsunagu.backup"
    await make_backup(source, keyring, path)
    assert len(_layout(path.read_bytes())[1]) >= 3
    alter, message = DAMAGE[damage]
    path.write_bytes(alter(path.read_bytes()))
    with pytest.raises(BackupError, match=message):
        await restore(empty_settings, keyring, path)
    assert_empty(await snapshot(empty_settings))


async def test_another_keyring_cannot_open_the_backup(
    source: Settings, empty_settings: Settings, keyring: Keyring, tmp_path: Path
) -> None:
    path = tmp_path / "tsunagu.backup"
    await make_backup(source, keyring, path)
    stranger = keyring_for(tmp_path / "other.json", production=False)
    assert stranger.active == keyring.active  # both "k1", other key material
    with pytest.raises(BackupError, match="does not open the backup"):
        await restore(empty_settings, stranger, path)
    renamed = Keyring(active="k7", keys={"k7": keyring.keys[keyring.active]}, index_key=b"\0" * 32)
    with pytest.raises(BackupError, match="not in this keyring"):
        await restore(empty_settings, renamed, path)
    assert_empty(await snapshot(empty_settings))


async def test_a_database_with_rows_is_refused_and_left_as_it_was(
    source: Settings, keyring: Keyring, tmp_path: Path
) -> None:
    path = tmp_path / "tsunagu.backup"
    await make_backup(source, keyring, path)
    before = await snapshot(source)
    with pytest.raises(BackupError, match="not empty"):
        await restore(source, keyring, path)
    assert await snapshot(source) == before


async def test_a_failed_insert_rolls_everything_back(
    source: Settings,
    empty_settings: Settings,
    keyring: Keyring,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Rows of the first tables are in when the last table fails: none of them stay."""
    path = tmp_path / "tsunagu.backup"
    await make_backup(source, keyring, path)
    calls: list[str] = []

    real_insert = backup_module._insert

    async def failing(connection: Any, tables: Any, records: Iterator[Any]) -> None:
        def breaking() -> Iterator[Any]:
            for table, columns, row in records:
                if table == "portal_staff_member":
                    calls.append(table)
                    row = [None] * len(row)  # NOT NULL columns: the database refuses it
                yield table, columns, row

        await real_insert(connection, tables, breaking())

    monkeypatch.setattr(backup_module, "_insert", failing)
    with pytest.raises(BackupError, match="rolled back"):
        await restore(empty_settings, keyring, path)
    assert calls
    assert_empty(await snapshot(empty_settings))


@pytest.mark.parametrize(
    "value",
    [
        None,
        True,
        0,
        -(2**63),
        1.5,
        float("inf"),
        "見本",
        "",
        b"\x00\xff",
        datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC),
        datetime(2026, 1, 2, 3, 4, 5),  # noqa: DTZ001 - a naive value must stay naive
        date(2026, 1, 2),
        time(3, 4, 5, 6),
        timedelta(days=-1, seconds=3, microseconds=7),
        uuid.UUID("12345678-1234-5678-1234-567812345678"),
        Decimal("1234.5600"),
        {"a": [1, {"b": None}]},
    ],
)
def test_typed_values_round_trip_exactly(value: Any) -> None:
    decoded = decode_value(json.loads(json.dumps(encode_value(value))))
    assert decoded == value
    assert type(decoded) is type(value) or isinstance(value, dict)
    if isinstance(value, datetime):
        assert decoded.tzinfo == value.tzinfo


# --- the commands -----------------------------------------------------------------------------


def run_command(settings: Settings, *argv: str) -> int:
    """Run a command as ``tsunagu`` would, on ``settings``."""
    parser = argparse.ArgumentParser(prog="tsunagu")
    register(parser.add_subparsers(required=True), lambda: settings)
    args = parser.parse_args(argv)
    code: int = args.run(args)
    return code


def test_backup_and_restore_commands_round_trip(
    settings: Settings,
    empty_settings: Settings,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    async def seed() -> None:
        with use_keyring(keyring_for(settings.key_file, production=False)):
            async with database(settings, global_fallback=False):
                await seed_demo_clinic()

    run_sync(seed())
    path = tmp_path / "cli.backup"
    assert run_command(settings, "backup", str(path)) == 0
    assert f"wrote {path}" in capsys.readouterr().out

    assert run_command(empty_settings, "restore", str(path)) == 0  # migrates the empty database
    assert "restored" in capsys.readouterr().out
    assert run_sync(snapshot(empty_settings)) == run_sync(snapshot(settings))

    assert run_command(empty_settings, "restore", str(path)) == 1
    captured = capsys.readouterr()
    assert captured.err.startswith("tsunagu: the database is not empty")
    assert captured.err.count("\n") == 1

    path.write_bytes(path.read_bytes()[:-5])
    assert run_command(empty_settings, "restore", str(path)) == 1
    assert "truncated" in capsys.readouterr().err


def test_keys_commands_add_a_key_rotate_and_report(
    settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    async def seed() -> None:
        with use_keyring(keyring_for(settings.key_file, production=False)):
            async with database(settings, global_fallback=False):
                await seed_demo_clinic()

    run_sync(seed())
    old = settings.key_file.read_text()
    assert run_command(settings, "keys", "status") == 0
    status = capsys.readouterr().out
    assert "active key: k1" in status
    assert f"k1: {DEMO_CIPHERTEXTS} values" in status

    assert run_command(settings, "keys", "new", "k2") == 0
    assert "key k2 is now active" in capsys.readouterr().out
    assert settings.key_file.stat().st_mode & 0o777 == 0o600
    updated = parse_keyring(settings.key_file.read_text())
    assert updated.active == "k2"
    assert updated.keys["k1"] == parse_keyring(old).keys["k1"]
    assert list(settings.key_file.parent.glob(".*.tmp")) == []

    assert run_command(settings, "keys", "new", "k2") == 1
    assert capsys.readouterr().err == "tsunagu: key id 'k2' already exists\n"

    assert run_command(settings, "keys", "rotate", "--batch-size", "3") == 0
    out = capsys.readouterr().out
    assert "portal_patient.family_name: 3 re-encrypted" in out
    assert f"re-encrypted {DEMO_CIPHERTEXTS} values under key k2" in out
    assert "every value is on the active key" in out
    for secret in (*updated.keys.values(), updated.index_key):
        assert secret.hex() not in out

    assert run_command(settings, "keys", "status") == 0
    status = capsys.readouterr().out
    assert f"k2: {DEMO_CIPHERTEXTS} values" in status
    assert "k1:" not in status
