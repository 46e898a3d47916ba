"""The consult room's signaling websocket through the real app: tickets, the waiting room,
admission, relaying, ending — and everyone else kept out without a hint."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect
from tortoise import connections

from booking.models import Appointment, AppointmentStatus, Clinic, VisitMode
from patient_portal.accounts.models import Patient
from patient_portal.audit.models import AuditEntry
from patient_portal.consult_models import ConsultChatLine, IdentityCheck, Visit
from patient_portal.crypto.keyring import keyring_for, use_keyring
from patient_portal.db import database
from patient_portal.settings import Settings
from tests.integration.patient_portal.conftest import PHONE_A, PHONE_B, World
from tests.integration.patient_portal.test_booking import token
from tests.integration.patient_portal.test_clinic_setup import bearer as staff_token
from tests.support.booking import book, make_menu
from tests.support.clock import FakeClock
from tests.support.databases import run_sync

OFFER = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"


def _appointment(settings: Settings, world: World, clock: FakeClock, **kwargs: Any) -> str:
    async def seed() -> str:
        with use_keyring(keyring_for(settings.key_file, production=False)):
            async with database(settings, global_fallback=False):
                clinic = await Clinic.get(id=world.clinic_a)
                menu, doctor = await make_menu(clinic, mode=kwargs.get("mode", VisitMode.ONLINE))
                patient = await Patient.get(id=world.patient_a)
                start = clock.now + kwargs.get("in_", timedelta(minutes=5))
                appointment = await book(clinic, menu, doctor, patient, start, now=clock.now)
                return str(appointment.id)

    return run_sync(seed())


def _status(settings: Settings, appointment_id: str) -> AppointmentStatus:
    async def read() -> AppointmentStatus:
        async with database(settings, global_fallback=False):
            return (await Appointment.get(id=appointment_id)).status

    return run_sync(read())


def _ticket(client: TestClient, appointment_id: str, auth: dict[str, str]) -> dict[str, Any]:
    answer = client.post(f"/api/v1/consults/{appointment_id}/ticket", headers=auth)
    assert answer.status_code == 200, answer.text
    return answer.json()  # type: ignore[no-any-return]


def _until(socket: Any, kind: str, limit: int = 20) -> dict[str, Any]:
    """The next message of ``kind`` (presence updates and the like may come first)."""
    for _ in range(limit):
        message: dict[str, Any] = json.loads(socket.receive_text())
        if message["type"] == kind:
            return message
    raise AssertionError(f"no {kind} message")


def _close_code(socket: Any) -> int:
    """Read until the server closes the socket; the close code."""
    for _ in range(20):
        try:
            socket.receive_text()
        except WebSocketDisconnect as closed:
            return closed.code
    raise AssertionError("the socket stayed open")


def test_a_consult_from_waiting_room_to_the_end(
    browser: TestClient, world: World, settings: Settings, clock: FakeClock
) -> None:
    appointment_id = _appointment(settings, world, clock)
    patient_auth = token(browser, PHONE_A)
    patient_ticket = _ticket(browser, appointment_id, patient_auth)
    assert patient_ticket["role"] == "patient"
    assert patient_ticket["websocket"] == f"/consults/{appointment_id}/ws"
    doctor_auth = staff_token(browser, world.doctor_a, clock)
    doctor_ticket = _ticket(browser, appointment_id, doctor_auth)
    assert doctor_ticket["role"] == "doctor"

    with browser.websocket_connect(patient_ticket["websocket"]) as patient:
        patient.send_text(json.dumps({"v": 1, "type": "join", "token": patient_ticket["token"]}))
        joined = _until(patient, "joined")
        assert joined["status"] == "waiting"
        assert joined["peers"] == []  # a waiting patient sees nobody
        history = f"/api/v1/consults/{appointment_id}/chat"
        assert browser.get(history, headers=patient_auth).json()["lines"] == []
        assert _status(settings, appointment_id) is AppointmentStatus.CHECKED_IN
        # The reception list shows who waits in their room, and since when.
        from tests.support.web import sign_in_staff

        clock.advance(seconds=30)
        sign_in_staff(browser, world.receptionist_a, clock)
        day = (clock.now + timedelta(minutes=5)).astimezone(ZoneInfo("Asia/Tokyo")).date()
        reception = browser.get(f"/staff/schedule?day={day.isoformat()}").text
        assert "待合室で待機中" in reception
        assert f'href="/staff/consults/{appointment_id}"' in reception

        with browser.websocket_connect(doctor_ticket["websocket"]) as doctor:
            doctor.send_text(json.dumps({"v": 1, "type": "join", "token": doctor_ticket["token"]}))
            seen = _until(doctor, "joined")
            waiting = [p for p in seen["peers"] if p["role"] == "patient"]
            assert [p["status"] for p in waiting] == ["waiting"]
            # A waiting patient cannot reach the doctor with media or chat yet.
            patient.send_text(json.dumps({"v": 1, "type": "offer", "sdp": OFFER}))
            assert _until(patient, "error")["code"]
            doctor.send_text(
                json.dumps({"v": 1, "type": "admit", "participant": joined["participant"]})
            )
            assert _until(patient, "admitted")["participant"] == joined["participant"]
            assert _status(settings, appointment_id) is AppointmentStatus.IN_CONSULT

            patient.send_text(json.dumps({"v": 1, "type": "offer", "sdp": OFFER}))
            relayed = _until(doctor, "offer")
            assert relayed["sdp"] == OFFER
            assert relayed["from"] == joined["participant"]
            doctor.send_text(json.dumps({"v": 1, "type": "answer", "sdp": OFFER}))
            assert _until(patient, "answer")["sdp"] == OFFER
            doctor.send_text(json.dumps({"v": 1, "type": "chat", "text": "聞こえますか"}))
            assert _until(patient, "chat")["text"] == "聞こえますか"
            # A page that reloads gets the chat so far, with its own lines marked.
            seen_by_patient = browser.get(history, headers=patient_auth).json()["lines"]
            assert [(line["text"], line["mine"]) for line in seen_by_patient] == [
                ("聞こえますか", False)
            ]
            seen_by_doctor = browser.get(history, headers=doctor_auth).json()["lines"]
            assert [line["mine"] for line in seen_by_doctor] == [True]

            doctor.send_text(json.dumps({"v": 1, "type": "end"}))
            assert _close_code(patient) == 4010
    assert _status(settings, appointment_id) is AppointmentStatus.DONE

    async def audited() -> list[str]:
        async with database(settings, global_fallback=False):
            rows = await AuditEntry.filter(target_id=appointment_id).order_by("seq")
            return [r.action for r in rows]

    actions = run_sync(audited())
    for expected in ("consult.ticket", "consult.join", "consult.admit", "consult.chat"):
        assert expected in actions
    assert "consult.end" in actions

    async def chat_rows() -> tuple[list[str], list[str]]:
        with use_keyring(keyring_for(settings.key_file, production=False)):
            async with database(settings, global_fallback=False):
                lines = await ConsultChatLine.filter(appointment_id=appointment_id)
                raw = await connections.get("default").execute_query_dict(
                    "SELECT body FROM portal_consult_chat"
                )
                return [line.body for line in lines], [str(row["body"]) for row in raw]

    async def visit() -> Visit | None:
        async with database(settings, global_fallback=False):
            return await Visit.get_or_none(appointment_id=appointment_id)

    record = run_sync(visit())  # what the karte bridge will carry
    assert record is not None
    assert record.ended_by == doctor_ticket["participant"]
    assert record.chat_lines == 1
    assert str(record.patient_id) == world.patient_a
    stored, raw = run_sync(chat_rows())
    assert stored == ["聞こえますか"]  # kept with the visit
    assert all(value.startswith("v1.") and "聞こえ" not in value for value in raw)  # encrypted


def test_only_the_appointments_people_get_in(
    browser: TestClient, world: World, settings: Settings, clock: FakeClock
) -> None:
    appointment_id = _appointment(settings, world, clock)
    stranger = browser.post(
        f"/api/v1/consults/{appointment_id}/ticket", headers=token(browser, PHONE_B)
    )
    assert stranger.status_code == 404
    other_clinic = browser.post(
        f"/api/v1/consults/{appointment_id}/ticket",
        headers=staff_token(browser, world.doctor_b, clock),
    )
    assert other_clinic.status_code == 404
    assert browser.post(f"/api/v1/consults/{appointment_id}/ticket").status_code == 401
    # A forged or foreign ticket: the socket closes with "unauthenticated".
    for bad in ("x" * 40, _ticket(browser, appointment_id, token(browser, PHONE_A))["token"][:-4]):
        with browser.websocket_connect(f"/consults/{appointment_id}/ws") as socket:
            socket.send_text(json.dumps({"v": 1, "type": "join", "token": bad}))
            assert _close_code(socket) == 4001
    # Another appointment's ticket does not open this room.
    other = _appointment(settings, world, clock)
    wrong_room = _ticket(browser, other, token(browser, PHONE_A))
    with browser.websocket_connect(f"/consults/{appointment_id}/ws") as socket:
        socket.send_text(json.dumps({"v": 1, "type": "join", "token": wrong_room["token"]}))
        assert _close_code(socket) == 4001
    # An in-person appointment has no room.
    in_person = _appointment(settings, world, clock, mode=VisitMode.IN_PERSON)
    refused = browser.post(f"/api/v1/consults/{in_person}/ticket", headers=token(browser, PHONE_A))
    assert refused.status_code == 404


def test_the_room_opens_fifteen_minutes_before(
    browser: TestClient, world: World, settings: Settings, clock: FakeClock
) -> None:
    appointment_id = _appointment(settings, world, clock, in_=timedelta(hours=2))
    auth = token(browser, PHONE_A)
    early = browser.post(f"/api/v1/consults/{appointment_id}/ticket", headers=auth)
    assert early.status_code == 403
    assert "分後に開きます" in early.json()["detail"]
    clock.advance(minutes=106)  # 14 minutes before the start
    assert (
        browser.post(
            f"/api/v1/consults/{appointment_id}/ticket", headers=token(browser, PHONE_A)
        ).status_code
        == 200
    )


def test_the_room_pages_open_for_the_patient_and_the_clinic_only(
    browser: TestClient, world: World, settings: Settings, clock: FakeClock
) -> None:
    from tests.support.web import Devices, sign_in_patient, sign_in_staff

    appointment_id = _appointment(settings, world, clock)
    devices = Devices(browser)
    patient = devices("patient")
    sign_in_patient(patient, PHONE_A, "246810")
    assert f'href="/consults/{appointment_id}"' in patient.get("/appointments").text
    page = patient.get(f"/consults/{appointment_id}")
    assert page.status_code == 200
    assert 'data-role="patient"' in page.text
    assert "playsinline" in page.text
    assert page.headers["cache-control"] == "no-store"
    assert "camera=(self)" in page.headers["permissions-policy"]
    assert "camera=()" in patient.get("/appointments").headers["permissions-policy"]
    doctor = devices("doctor")
    sign_in_staff(doctor, world.doctor_a, clock)
    staff_page = doctor.get(f"/staff/consults/{appointment_id}")
    assert staff_page.status_code == 200
    assert 'data-role="doctor"' in staff_page.text
    assert "data-end" in staff_page.text  # only a doctor ends the consult
    other = devices("other")
    sign_in_patient(other, PHONE_B, "246810")
    assert other.get(f"/consults/{appointment_id}").status_code == 404
    clock.advance(seconds=30)
    elsewhere = devices("elsewhere")
    sign_in_staff(elsewhere, world.doctor_b, clock)
    assert elsewhere.get(f"/staff/consults/{appointment_id}").status_code == 404


def test_the_pre_call_check_measures_a_real_connection(
    browser: TestClient, world: World, settings: Settings, clock: FakeClock
) -> None:
    import asyncio

    from aiortc import RTCPeerConnection, RTCSessionDescription, VideoStreamTrack
    from aiortc.mediastreams import AudioStreamTrack

    from video.precall import configure_ice, rtc_configuration

    appointment_id = _appointment(settings, world, clock)
    auth = token(browser, PHONE_A)
    configure_ice(host_addresses=("127.0.0.1",))

    async def check() -> dict[str, Any]:
        client = RTCPeerConnection(rtc_configuration([]))
        client.addTrack(VideoStreamTrack())
        client.addTrack(AudioStreamTrack())
        echoed: list[Any] = []
        client.on("track", echoed.append)
        try:
            await client.setLocalDescription(await client.createOffer())
            started = await asyncio.to_thread(
                browser.post,
                f"/api/v1/consults/{appointment_id}/precall",
                json={"sdp": client.localDescription.sdp},
                headers=auth,
            )
            assert started.status_code == 201, started.text
            body = started.json()
            await client.setRemoteDescription(RTCSessionDescription(body["sdp"], "answer"))
            outcome: dict[str, Any] = {}
            async with asyncio.timeout(40):
                while outcome.get("status") != "done":
                    await asyncio.sleep(0.5)
                    answer = await asyncio.to_thread(
                        browser.get,
                        f"/api/v1/consults/{appointment_id}/precall/{body['check']}",
                        headers=auth,
                    )
                    assert answer.status_code == 200, answer.text
                    outcome = answer.json()
            outcome["echoed_kinds"] = sorted(track.kind for track in echoed)
            return outcome
        finally:
            await client.close()

    outcome = asyncio.run(check())
    assert outcome["echoed_kinds"] == ["audio", "video"]  # the server sent our media back
    assert outcome["figures"]["connected"] is True
    assert outcome["figures"]["video_frames"] > 10
    assert outcome["level"] in ("good", "fair")
    assert outcome["advice"][0]["ja"]
    assert outcome["advice"][0]["en"]
    other = token(browser, PHONE_B)
    assert (
        browser.post(
            f"/api/v1/consults/{appointment_id}/precall", json={"sdp": "v=0 " * 5}, headers=other
        ).status_code
        == 404
    )


def test_the_doctor_records_the_identity_check(
    browser: TestClient, world: World, settings: Settings, clock: FakeClock
) -> None:
    appointment_id = _appointment(settings, world, clock)
    url = f"/api/v1/consults/{appointment_id}/identity"
    body = {"document": "my_number_card", "result": "confirmed"}
    patient = browser.post(url, json=body, headers=token(browser, PHONE_A))
    assert patient.status_code == 403
    doctor = staff_token(browser, world.doctor_a, clock)
    bad = browser.post(
        url, json={"document": "library_card", "result": "confirmed"}, headers=doctor
    )
    assert bad.status_code == 422
    recorded = browser.post(url, json=body, headers=doctor)
    assert recorded.status_code == 201, recorded.text
    assert recorded.json()["result"] == "confirmed"

    async def checks() -> list[tuple[str, str]]:
        with use_keyring(keyring_for(settings.key_file, production=False)):
            async with database(settings, global_fallback=False):
                rows = await IdentityCheck.filter(appointment_id=appointment_id)
                return [(r.document.value, r.result.value) for r in rows]

    assert run_sync(checks()) == [("my_number_card", "confirmed")]


def test_the_patient_sends_an_id_photo_only_the_clinic_sees(
    browser: TestClient, world: World, settings: Settings, clock: FakeClock
) -> None:
    import io

    from PIL import Image

    from tests.support.web import Devices, csrf_token, sign_in_patient, sign_in_staff

    appointment_id = _appointment(settings, world, clock)
    buffer = io.BytesIO()
    Image.new("RGB", (60, 40), (30, 90, 160)).save(buffer, format="JPEG")
    photo = buffer.getvalue()
    devices = Devices(browser)
    patient = devices("patient")
    sign_in_patient(patient, PHONE_A, "246810")
    room = f"/consults/{appointment_id}"
    not_a_photo = patient.post(
        f"{room}/id-photo",
        data={"csrf_token": csrf_token(patient, room), "document": "passport"},
        files={"photo": ("id.jpg", b"%PDF-1.4 forged", "image/jpeg")},
    )
    assert not_a_photo.status_code == 422
    assert "写真(JPEG・PNG・WebP)だけ" in not_a_photo.text
    sent = patient.post(
        f"{room}/id-photo",
        data={"csrf_token": csrf_token(patient, room), "document": "passport"},
        files={"photo": ("id.jpg", photo, "image/jpeg")},
        follow_redirects=False,
    )
    assert sent.status_code == 303
    assert patient.get(f"{room}/id-photo").content == photo
    doctor = devices("doctor")
    sign_in_staff(doctor, world.doctor_a, clock)
    staff_room = doctor.get(f"/staff{room}").text
    assert f'src="/staff{room}/id-photo"' in staff_room
    shown = doctor.get(f"/staff{room}/id-photo")
    assert shown.content == photo
    assert shown.headers["cache-control"] == "no-store"
    other = devices("other")
    sign_in_patient(other, PHONE_B, "246810")
    assert other.get(f"{room}/id-photo").status_code == 404
    clock.advance(seconds=30)
    elsewhere = devices("elsewhere")
    sign_in_staff(elsewhere, world.doctor_b, clock)
    assert elsewhere.get(f"/staff{room}/id-photo").status_code == 404

    async def stored() -> str:
        async with database(settings, global_fallback=False):
            rows = await connections.get("default").execute_query_dict(
                "SELECT data FROM portal_identity_photo"
            )
            return str(rows[0]["data"])

    assert run_sync(stored()).startswith("v1.")  # encrypted at rest
