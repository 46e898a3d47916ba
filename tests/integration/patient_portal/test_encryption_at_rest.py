"""Encryption at rest, checked against the database itself: a dump shows no patient identity,
the models read plain values, the phone blind index finds the account, and keys rotate."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from tortoise import connections

from patient_portal.accounts.models import Patient, PatientAccount
from patient_portal.crypto.keyring import (
    KeyringError,
    current_keyring,
    key_id_of,
    use_keyring,
    with_new_active_key,
)
from patient_portal.crypto.rotation import (
    PLAINTEXT,
    BatchDone,
    encrypted_columns,
    key_usage,
    rotate,
)
from patient_portal.demo import PATIENTS, PHONE_PURPOSE, STAFF, seed_demo_clinic
from patient_portal.settings import Settings

# 2 phone numbers + 4 patients x 5 required encrypted fields + 4 staff authenticator secrets.
DEMO_CIPHERTEXTS = 2 + 4 * 5 + len(STAFF)


def _national(phone: str) -> str:
    """+819010000001 → 090-1000-0001"""
    digits = "0" + phone.removeprefix("+81")
    return f"{digits[:3]}-{digits[3:7]}-{digits[7:]}"


def identifying_strings() -> set[str]:
    """Every way a demo patient's identity could show up in plain text.

    Family names alone are left out: the demo clinic and its staff are also called 見本/デモ, and
    staff names are not patient data. Full names and given names cover the patients.
    """
    needles: set[str] = set()
    for phone, members in PATIENTS.items():
        needles |= {phone, phone.removeprefix("+"), _national(phone)}
        needles |= {_national(phone).replace("-", ""), phone.removeprefix("+81")}
        for family, given, family_kana, given_kana, birth, *_ in members:
            needles |= {given, given_kana, family + given, family_kana + given_kana}
            needles |= {f"{family} {given}", f"{family_kana} {given_kana}"}
            needles |= {birth.isoformat(), birth.strftime("%Y%m%d"), birth.strftime("%Y/%m/%d")}
    return needles


async def all_rows() -> dict[str, list[dict[str, Any]]]:
    """Every row of every table in the database, read with raw SQL."""
    connection = connections.get("default")
    if connection.capabilities.dialect == "postgres":
        query = (
            "SELECT table_name AS name FROM information_schema.tables WHERE table_schema = 'public'"
        )
    else:
        query = "SELECT name FROM sqlite_master WHERE type = 'table'"
    tables = [row["name"] for row in await connection.execute_query_dict(query)]
    return {
        table: await connection.execute_query_dict(f'SELECT * FROM "{table}"')  # noqa: S608
        for table in tables
    }


def leaks(dump: dict[str, list[dict[str, Any]]]) -> list[str]:
    """``table.column`` of every value holding a demo patient's identity in plain text."""
    needles = identifying_strings()
    found = []
    for table, rows in dump.items():
        for row in rows:
            for column, value in row.items():
                if value is None:
                    continue
                text = value.decode("latin-1") if isinstance(value, bytes) else str(value)
                if any(needle in text for needle in needles):
                    found.append(f"{table}.{column}")
    return found


async def test_a_database_dump_shows_no_patient_identity(db: Settings) -> None:
    await seed_demo_clinic()
    dump = await all_rows()
    assert {"portal_patient", "portal_patient_account"} <= dump.keys()
    assert sum(len(rows) for rows in dump.values()) > 10
    assert leaks(dump) == []
    # The patient tables do not even hold the family names the clinic shares.
    for table in ("portal_patient", "portal_patient_account"):
        for row in dump[table]:
            assert not any(name in str(row) for name in ("見本", "デモ", "ミホン"))


async def test_encrypted_columns_hold_only_ciphertexts(db: Settings) -> None:
    await seed_demo_clinic()
    dump = await all_rows()
    columns = encrypted_columns()
    assert {c.label for c in columns} >= {
        "portal_patient.family_name",
        "portal_patient.birth_date",
        "portal_patient_account.phone",
        "portal_staff_member.totp_secret",
    }
    for column in columns:
        for row in dump[column.table]:
            value = row[column.column]
            if value is not None:
                assert key_id_of(value) == "k1"


async def test_models_read_the_plain_values(db: Settings) -> None:
    await seed_demo_clinic()
    expected = {
        (phone, f, g, fk, gk, birth)
        for phone, members in PATIENTS.items()
        for f, g, fk, gk, birth, *_ in members
    }
    assert await _people() == expected
    patient = await Patient.filter(given_name_kana__isnull=False).first()
    assert patient is not None
    assert isinstance(patient.birth_date, date)


async def test_the_phone_blind_index_finds_the_account(db: Settings) -> None:
    await seed_demo_clinic()
    keyring = current_keyring()
    for phone, members in PATIENTS.items():
        account = await PatientAccount.get(phone_index=keyring.blind_index(phone, PHONE_PURPOSE))
        assert account.phone == phone
        assert await Patient.filter(account=account).count() == len(members)
    unknown = keyring.blind_index("+819099999999", PHONE_PURPOSE)
    assert await PatientAccount.filter(phone_index=unknown).count() == 0
    # The index is a keyed hash: the same number under another purpose is another value.
    assert keyring.blind_index("+819000000001", "email") != keyring.blind_index(
        "+819000000001", PHONE_PURPOSE
    )


async def test_rotation_is_resumable_and_keeps_every_value(db: Settings) -> None:
    await seed_demo_clinic()
    before = await _people()
    assert await key_usage() == {"k1": DEMO_CIPHERTEXTS}
    keyring = with_new_active_key(current_keyring(), "k2")
    with use_keyring(keyring):
        steps: list[BatchDone] = []
        first = await rotate(keyring, batch_size=1, max_batches=2, progress=steps.append)
        assert not first.complete
        assert (first.batches, first.total, first.skipped) == (2, 2, 0)
        assert [step.rotated for step in steps] == [1, 2]
        assert await key_usage() == {"k1": DEMO_CIPHERTEXTS - 2, "k2": 2}
        assert await _people() == before  # half-rotated data reads the same

        second = await rotate(keyring, batch_size=1)
        assert second.complete
        assert second.total == DEMO_CIPHERTEXTS - 2
        assert await key_usage() == {"k2": DEMO_CIPHERTEXTS}
        assert await _people() == before
        for column in encrypted_columns():
            for row in (await all_rows())[column.table]:
                value = row[column.column]
                assert value is None or key_id_of(value) == "k2"

        again = await rotate(keyring)
        assert (again.total, again.batches, again.complete) == (0, 0, True)


async def test_rotation_seals_a_value_stored_before_encryption(db: Settings) -> None:
    """Plain text written before encryption (here: a raw UPDATE) is found by the scan and by
    ``key_usage``, and ``rotate`` seals it."""
    await seed_demo_clinic()
    connection = connections.get("default")
    p = "$1" if connection.capabilities.dialect == "postgres" else "?"
    await connection.execute_query(
        f"UPDATE portal_patient SET email = {p} WHERE email IS NULL",  # noqa: S608
        ["090-1000-0001"],
    )
    assert set(leaks(await all_rows())) == {"portal_patient.email"}
    assert (await key_usage())[PLAINTEXT] == 4
    report = await rotate(current_keyring())
    assert report.rotated == {"portal_patient.email": 4}
    assert leaks(await all_rows()) == []
    assert await key_usage() == {"k1": DEMO_CIPHERTEXTS + 4}
    assert {p.email for p in await Patient.all()} == {"090-1000-0001"}


async def _people() -> set[tuple[object, ...]]:
    # ``birth_date`` is typed ``str`` (EncryptedDateField derives from TextField) but is a date.
    people: set[tuple[object, ...]] = set()
    for patient in await Patient.all().prefetch_related("account"):
        people.add(
            (
                patient.account.phone,
                patient.family_name,
                patient.given_name,
                patient.family_name_kana,
                patient.given_name_kana,
                patient.birth_date,
            )
        )
    return people


async def test_rotation_stops_at_a_value_that_fails_authentication(db: Settings) -> None:
    """A ciphertext copied into another column is refused, naming the column and the row."""
    await seed_demo_clinic()
    patient = await Patient.all().order_by("id").first()
    assert patient is not None
    connection = connections.get("default")
    p = "$1" if connection.capabilities.dialect == "postgres" else "?"
    await connection.execute_query(
        f"UPDATE portal_patient SET given_name = family_name WHERE id = {p}",  # noqa: S608
        [patient.id if connection.capabilities.dialect == "postgres" else str(patient.id)],
    )
    keyring = with_new_active_key(current_keyring(), "k2")
    with pytest.raises(KeyringError, match=rf"portal_patient\.given_name .*row {patient.id}"):
        await rotate(keyring)
