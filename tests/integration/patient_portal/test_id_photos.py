"""The patient's registered photo ID through the real app: the account registers, looks at,
replaces and deletes it; the consult room's upload replaces it; the doctor of a later consult
sees it; nobody else does; every read and change is audited; and migration 0006 carries the
per-consult photos over to the patient (the newest of each)."""

from __future__ import annotations

import asyncio
import base64
import io
import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from PIL import Image
from starlette.testclient import TestClient
from tortoise import connections
from tortoise.context import TortoiseContext
from tortoise.exceptions import IntegrityError
from tortoise.migrations.api import migrate as tortoise_migrate

from interview_forms.responses import MAX_ATTACHMENT_BYTES
from patient_portal.audit.models import AuditEntry
from patient_portal.consult_models import IdentityPhoto, PhotoIdDocument, register_identity_photo
from patient_portal.crypto.keyring import current_keyring, keyring_for, use_keyring
from patient_portal.db import database, migrate, tortoise_config
from patient_portal.settings import Settings
from tests.integration.patient_portal.conftest import PHONE_A, PHONE_B, SMS_CODE, World
from tests.integration.patient_portal.test_consult_signaling import _appointment
from tests.support.clock import FakeClock
from tests.support.databases import run_sync
from tests.support.identity import make_patient
from tests.support.web import Devices, csrf_token, sign_in_patient, sign_in_staff


def _image(kind: str = "JPEG", colour: tuple[int, int, int] = (30, 90, 160)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (60, 40), colour).save(buffer, format=kind)
    return buffer.getvalue()


def _page(patient_id: str) -> str:
    return f"/account/patients/{patient_id}/id-photo"


def _upload(
    client: TestClient,
    patient_id: str,
    photo: bytes | None,
    document: str = "my_number_card",
    *,
    name: str = "id.jpg",
    **kwargs: Any,
) -> Any:
    files = {"photo": (name, photo, "image/jpeg")} if photo is not None else None
    return client.post(
        _page(patient_id),
        data={"csrf_token": csrf_token(client, "/account"), "document": document},
        files=files,
        follow_redirects=False,
        **kwargs,
    )


def _stored(settings: Settings) -> list[dict[str, Any]]:
    """Every row of the photo table as the database holds it (no decrypting)."""

    async def read() -> list[dict[str, Any]]:
        async with database(settings, global_fallback=False):
            return await connections.get("default").execute_query_dict(
                "SELECT patient_id, document, data FROM portal_identity_photo"
            )

    return run_sync(read())


def _audit(
    settings: Settings, action_prefix: str
) -> list[tuple[str, str, str, str, dict[str, Any]]]:
    """(action, outcome, target kind, target id, detail) of the audit entries, oldest first."""

    async def read() -> list[tuple[str, str, str, str, dict[str, Any]]]:
        async with database(settings, global_fallback=False):
            rows = await AuditEntry.filter(action__startswith=action_prefix).order_by("seq")
            return [
                (r.action, r.outcome.value, r.target_kind, r.target_id, dict(r.detail))
                for r in rows
            ]

    return run_sync(read())


def test_the_account_registers_looks_at_replaces_and_deletes_its_photo_id(
    browser: TestClient, world: World, settings: Settings
) -> None:
    patient = world.patient_a
    sign_in_patient(browser, PHONE_A, SMS_CODE)
    assert f'href="{_page(patient)}"' in browser.get("/account").text
    empty = browser.get(_page(patient))
    assert empty.status_code == 200
    assert empty.headers["cache-control"] == "no-store"
    assert "本人確認書類の写真はまだ登録されていません。" in empty.text  # from id_photos.po
    assert 'src="' + _page(patient) + '/image"' not in empty.text

    first = _image("JPEG")
    assert _upload(browser, patient, first, "my_number_card").status_code == 303
    shown = browser.get(_page(patient)).text
    assert 'src="' + _page(patient) + '/image"' in shown
    assert "マイナンバーカード" in shown
    assert "写真を差し替える" in shown
    image = browser.get(_page(patient) + "/image")
    assert image.content == first
    assert image.headers["content-type"] == "image/jpeg"
    assert image.headers["cache-control"] == "no-store"

    second = _image("PNG", (200, 10, 10))
    assert _upload(browser, patient, second, "passport", name="id.png").status_code == 303
    assert browser.get(_page(patient) + "/image").content == second
    rows = _stored(settings)
    assert [(str(r["patient_id"]), r["document"]) for r in rows] == [(patient, "passport")]
    sealed = str(rows[0]["data"])
    assert sealed.startswith("v1.")  # encrypted at rest
    assert base64.b64encode(second).decode()[:40] not in sealed
    assert base64.b64encode(first).decode()[:40] not in sealed

    deleted = browser.post(
        _page(patient) + "/delete",
        data={"csrf_token": csrf_token(browser, "/account")},
        follow_redirects=False,
    )
    assert deleted.status_code == 303
    assert browser.get(_page(patient) + "/image").status_code == 404
    assert _stored(settings) == []

    audited = _audit(settings, "patient.id_photo.")
    actions = [(a, o) for a, o, *_ in audited]
    assert ("patient.id_photo.upload", "success") in actions
    assert ("patient.id_photo.replace", "success") in actions
    assert ("patient.id_photo.read", "success") in actions
    assert ("patient.id_photo.page", "success") in actions
    assert ("patient.id_photo.delete", "success") in actions
    assert {(kind, target) for _, _, kind, target, _ in audited} == {("patient", patient)}
    assert all(detail == {} for *_, detail in audited)


@pytest.mark.parametrize(
    ("photo", "document", "language", "status", "message"),
    [
        (b"%PDF-1.4 forged", "passport", "ja", 422, "写真(JPEG・PNG・WebP)だけを送れます"),
        (b"%PDF-1.4 forged", "passport", "en", 422, "Only photos (JPEG, PNG or WebP) can be sent."),
        (b"\xff" * (MAX_ATTACHMENT_BYTES + 1), "passport", "ja", 422, "写真が大きすぎます"),
        (_image(), "insurance_card", "ja", 422, "写真の書類の種類を選んでください。"),
        (_image(), "insurance_card", "en", 422, "Choose which document the photo shows."),
        (_image(), "", "en", 422, "Choose which document the photo shows."),
        (None, "passport", "ja", 422, "送る書類の写真を選んでください。"),
        (None, "passport", "en", 422, "Choose a photo of the document to send."),
        (b"", "passport", "ja", 422, "ファイルが空です"),
    ],
)
def test_a_bad_upload_is_refused_with_a_clear_message_and_changes_nothing(
    browser: TestClient,
    world: World,
    settings: Settings,
    photo: bytes | None,
    document: str,
    language: str,
    status: int,
    message: str,
) -> None:
    patient = world.patient_a
    sign_in_patient(browser, PHONE_A, SMS_CODE)
    kept = _image("JPEG", (1, 2, 3))
    assert _upload(browser, patient, kept, "drivers_license").status_code == 303
    before = _stored(settings)

    refused = _upload(browser, patient, photo, document, headers={"Accept-Language": language})
    assert refused.status_code == status
    assert message in refused.text
    assert refused.headers["content-type"].startswith("text/html")
    assert _stored(settings) == before  # the same ciphertext: nothing was rewritten
    assert browser.get(_page(patient) + "/image").content == kept
    failures = [row for row in _audit(settings, "patient.id_photo.upload") if row[1] == "failure"]
    assert len(failures) == 1
    assert set(failures[0][4]) == {"reason"}  # a reason code, nothing from the upload


def test_a_refused_first_upload_leaves_no_row(
    browser: TestClient, world: World, settings: Settings
) -> None:
    sign_in_patient(browser, PHONE_A, SMS_CODE)
    assert _upload(browser, world.patient_a, b"not a photo").status_code == 422
    assert _stored(settings) == []


def test_a_family_members_photo_belongs_to_the_account_that_holds_their_record(
    browser: TestClient, world: World, settings: Settings, clock: FakeClock
) -> None:
    devices = Devices(browser)
    holder = devices("holder")
    sign_in_patient(holder, PHONE_A, SMS_CODE)
    added = holder.post(
        "/account/family/new",
        data={
            "csrf_token": csrf_token(holder, "/account"),
            "relationship": "child",
            "family_name": "見本",
            "given_name": "三子",
            "family_name_kana": "みほん",
            "given_name_kana": "みつこ",
            "birth_date": "2015-04-01",
            "sex": "female",
        },
        follow_redirects=False,
    )
    assert added.status_code == 303
    ids = set(re.findall(r'href="/account/patients/([0-9a-f-]{36})"', holder.get("/account").text))
    (child,) = ids - {world.patient_a}
    photo = _image()
    assert _upload(holder, child, photo, "other").status_code == 303
    assert holder.get(_page(child) + "/image").content == photo
    assert "三子" in holder.get(_page(child)).text

    stranger = devices("stranger")
    sign_in_patient(stranger, PHONE_B, SMS_CODE)
    for target in (child, world.patient_a):
        assert stranger.get(_page(target)).status_code == 404
        assert stranger.get(_page(target) + "/image").status_code == 404
        token = csrf_token(stranger, "/account")
        assert _upload(stranger, target, _image("PNG")).status_code == 404
        gone = stranger.post(
            _page(target) + "/delete", data={"csrf_token": token}, follow_redirects=False
        )
        assert gone.status_code == 404
    # Patient B's own page works, and knows nothing of the others' photos.
    assert stranger.get(_page(world.patient_b)).status_code == 200
    staff = devices("staff")
    sign_in_staff(staff, world.doctor_a, clock)
    page = staff.get(_page(child), follow_redirects=False)
    assert (page.status_code, page.headers["location"]) == (303, "/signin")

    assert [str(r["patient_id"]) for r in _stored(settings)] == [child]
    denied = [row for row in _audit(settings, "patient.") if row[1] == "denied"]
    assert denied, "the refusals are audited"
    holder = devices("holder")
    assert holder.get(_page(child) + "/image").content == photo


def test_the_doctor_sees_the_photo_registered_in_an_earlier_consult(
    browser: TestClient, world: World, settings: Settings, clock: FakeClock
) -> None:
    earlier = _appointment(settings, world, clock)
    later = _appointment(settings, world, clock, in_=timedelta(days=7))
    devices = Devices(browser)
    patient = devices("patient")
    sign_in_patient(patient, PHONE_A, SMS_CODE)
    photo = _image("JPEG", (10, 120, 60))
    first_room = f"/consults/{earlier}"
    assert "写真を送る" in patient.get(first_room).text  # nothing registered yet
    sent = patient.post(
        f"{first_room}/id-photo",
        data={"csrf_token": csrf_token(patient, first_room), "document": "passport"},
        files={"photo": ("id.jpg", photo, "image/jpeg")},
        follow_redirects=False,
    )
    assert sent.status_code == 303
    # The consult room's upload registered it with the patient: the account page shows it.
    assert patient.get(_page(world.patient_a) + "/image").content == photo
    later_room = patient.get(f"/consults/{later}").text
    assert "登録済みの本人確認書類の写真を、医師が本人確認に使います。" in later_room
    assert "写真を差し替える" in later_room
    assert patient.get(f"/consults/{later}/id-photo").content == photo

    doctor = devices("doctor")
    sign_in_staff(doctor, world.doctor_a, clock)
    room = doctor.get(f"/staff/consults/{later}").text
    assert f'src="/staff/consults/{later}/id-photo"' in room
    assert "パスポート" in room
    shown = doctor.get(f"/staff/consults/{later}/id-photo")
    assert shown.content == photo
    assert shown.headers["cache-control"] == "no-store"

    # Replaced from the account page: the doctor sees the new one, in every consult.
    patient = devices("patient")
    newer = _image("PNG", (250, 250, 0))
    assert _upload(patient, world.patient_a, newer, "residence_card").status_code == 303
    doctor = devices("doctor")
    assert doctor.get(f"/staff/consults/{later}/id-photo").content == newer
    assert doctor.get(f"/staff/consults/{earlier}/id-photo").content == newer
    assert "在留カード" in doctor.get(f"/staff/consults/{later}").text

    clock.advance(seconds=30)
    elsewhere = devices("elsewhere")
    sign_in_staff(elsewhere, world.doctor_b, clock)
    refused = elsewhere.get(f"/staff/consults/{later}/id-photo")
    assert refused.status_code == 404
    assert refused.headers["content-type"].startswith("text/html")
    other = devices("other")
    sign_in_patient(other, PHONE_B, SMS_CODE)
    assert other.get(f"/consults/{later}/id-photo").status_code == 404
    token = csrf_token(other, "/account")
    stolen = other.post(
        f"/consults/{later}/id-photo",
        data={"csrf_token": token, "document": "passport"},
        files={"photo": ("id.jpg", _image(), "image/jpeg")},
        follow_redirects=False,
    )
    assert stolen.status_code == 404
    doctor = devices("doctor")
    assert doctor.get(f"/staff/consults/{later}/id-photo").content == newer

    reads = [
        (action, target)
        for action, outcome, _, target, _ in _audit(settings, "consult.id_photo.")
        if outcome == "success"
    ]
    assert ("consult.id_photo.upload", earlier) in reads
    assert ("consult.id_photo.read", later) in reads
    assert ("consult.id_photo.read", earlier) in reads


def test_the_doctor_is_told_when_no_photo_is_registered(
    browser: TestClient, world: World, settings: Settings, clock: FakeClock
) -> None:
    appointment = _appointment(settings, world, clock)
    sign_in_staff(browser, world.doctor_a, clock)
    room = browser.get(f"/staff/consults/{appointment}").text
    assert "この患者さんは本人確認書類の写真を登録していません。" in room
    assert f'src="/staff/consults/{appointment}/id-photo"' not in room
    assert browser.get(f"/staff/consults/{appointment}/id-photo").status_code == 404


async def test_migration_0006_keeps_the_newest_photo_of_each_patient(
    empty_settings: Settings,
) -> None:
    settings = empty_settings
    context = TortoiseContext()
    with context:
        try:
            await tortoise_migrate(
                config=tortoise_config(settings), target="portal.0005_identity_photo"
            )
        finally:
            await context.close_connections()

    one, two = str(uuid.uuid4()), str(uuid.uuid4())
    start = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
    photos = {
        "old": (one, start, _image("JPEG", (1, 1, 1))),
        "new": (one, start + timedelta(days=3, microseconds=5), _image("PNG", (2, 2, 2))),
        "only": (two, start + timedelta(days=1), _image("JPEG", (3, 3, 3))),
    }
    with use_keyring(keyring_for(settings.key_file, production=False)):
        async with database(settings, global_fallback=False):
            connection = connections.get("default")
            postgres = connection.capabilities.dialect == "postgres"
            marks = ", ".join(f"${n}" if postgres else "?" for n in range(1, 8))
            # Only the placeholders are formatted into the statement.
            columns = "id, appointment_id, clinic_id, patient_id, content_type, data, uploaded_at"
            insert = f"INSERT INTO portal_identity_photo ({columns}) VALUES ({marks})"  # noqa: S608
            for patient_id, uploaded_at, data in photos.values():
                sealed = current_keyring().encrypt(
                    base64.b64encode(data).decode("ascii"), "portal_identity_photo.data"
                )
                values: list[Any] = [
                    str(uuid.uuid4()),
                    str(uuid.uuid4()),  # the appointment
                    str(uuid.uuid4()),  # the clinic
                    patient_id,
                    "image/jpeg",
                    sealed,
                    uploaded_at,
                ]
                await connection.execute_query(insert, values)

        assert "portal.0006_id_photos_per_patient" in await migrate(settings)

        async with database(settings, global_fallback=False):
            kept = {str(p.patient_id): p for p in await IdentityPhoto.all()}
            assert set(kept) == {one, two}
            assert kept[one].data == photos["new"][2]  # still decrypts under the same context
            assert kept[two].data == photos["only"][2]
            assert kept[one].document is None  # the room never asked which document it was
            # A migrated patient can be given a new photo: the unique patient_id holds.
            replaced = IdentityPhoto(
                patient_id=two,
                document=PhotoIdDocument.PASSPORT,
                content_type="image/png",
                data=b"x",
                uploaded_at=start,
            )
            with pytest.raises(IntegrityError):
                await replaced.save()


async def test_uploads_at_the_same_time_leave_one_photo(db: Settings) -> None:
    patient_id = str((await make_patient("+819011110009")).id)
    now = datetime.now(UTC)
    photos = [_image("PNG", (n, n, n)) for n in range(6)]
    results = await asyncio.gather(
        *(
            register_identity_photo(patient_id, PhotoIdDocument.PASSPORT, "image/png", p, now)
            for p in photos
        )
    )
    kept = await IdentityPhoto.filter(patient_id=patient_id)
    assert len(kept) == 1
    assert kept[0].data in photos
    assert sorted(results) == [False] + [True] * 5  # they took turns: one first, five replaced
