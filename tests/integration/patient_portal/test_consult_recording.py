"""Consented recording through the real app: nothing is recorded before everyone in the call
agrees; then a real aiortc client sends its camera to the server's recorder, the file on disk is
sealed, the room's "stop" reaches the recorder, and only the clinic's clinical staff can watch
it — every decision kept, every look audited."""

from __future__ import annotations

import asyncio
import io
import json
import threading
from pathlib import Path
from typing import Any

import av
from aiortc import RTCPeerConnection, RTCSessionDescription
from starlette.testclient import TestClient

from patient_portal.audit.models import AuditEntry
from patient_portal.crypto.sealed_files import MAGIC
from patient_portal.db import database
from patient_portal.settings import Settings
from tests.integration.patient_portal.conftest import PHONE_A, PHONE_B, World
from tests.integration.patient_portal.test_booking import token
from tests.integration.patient_portal.test_clinic_setup import bearer as staff_token
from tests.integration.patient_portal.test_consult_signaling import (
    OFFER,
    _appointment,
    _ticket,
    _until,
)
from tests.integration.video.test_precall import NumberedFrames, Tone, frame_number
from tests.support.clock import FakeClock
from tests.support.databases import run_sync
from tests.support.web import sign_in_staff
from video.models import ConsultRecording, RecordingConsent
from video.precall import configure_ice, rtc_configuration


def say(socket: Any, **message: Any) -> None:
    socket.send_text(json.dumps({"v": 1, **message}))


class Camera:
    """A browser's recorder connection in a thread of its own: offers a send-only camera and
    microphone (as consult.js does), keeps sending until :meth:`hang_up`."""

    def __init__(self, browser: TestClient, appointment_id: str, auth: dict[str, str]) -> None:
        self.browser, self.appointment_id, self.auth = browser, appointment_id, auth
        self.sent = 0
        self.answer: tuple[int, dict[str, Any]] | None = None
        self._answered = threading.Event()
        self._hang_up = threading.Event()
        self._thread: threading.Thread | None = None

    def offer(self, segment: int, frames: int = 0) -> tuple[int, dict[str, Any]]:
        """Post the offer; on success keep sending until ``frames`` frames went out."""
        self._thread = threading.Thread(target=asyncio.run, args=(self._run(segment, frames),))
        self._thread.start()
        assert self._answered.wait(30)
        assert self.answer is not None
        if self.answer[0] != 201:
            self._thread.join(10)
        return self.answer

    def hang_up(self) -> None:
        self._hang_up.set()
        if self._thread is not None:
            self._thread.join(30)

    async def _run(self, segment: int, frames: int) -> None:
        pc = RTCPeerConnection(rtc_configuration(()))
        camera = NumberedFrames()
        pc.addTrack(Tone())
        pc.addTrack(camera)
        for transceiver in pc.getTransceivers():
            transceiver.direction = "sendonly"
        try:
            await pc.setLocalDescription(await pc.createOffer())
            answer = await asyncio.to_thread(
                self.browser.post,
                f"/api/v1/consults/{self.appointment_id}/recording",
                json={"sdp": pc.localDescription.sdp, "segment": segment},
                headers=self.auth,
            )
            if answer.status_code == 201:
                sdp = answer.json()["sdp"]
                await pc.setRemoteDescription(RTCSessionDescription(sdp, "answer"))
                async with asyncio.timeout(30):
                    while camera.sent < frames:  # noqa: ASYNC110 - the track counts, no event
                        await asyncio.sleep(0.05)
            self.sent = camera.sent
            self.answer = (answer.status_code, answer.json())
            self._answered.set()
            if answer.status_code == 201:
                await asyncio.to_thread(self._hang_up.wait, 60)
        finally:
            self._answered.set()
            await pc.close()


def record_camera(
    browser: TestClient, appointment_id: str, auth: dict[str, str], segment: int
) -> tuple[int, dict[str, Any]]:
    camera = Camera(browser, appointment_id, auth)
    try:
        return camera.offer(segment)
    finally:
        camera.hang_up()


def recordings(settings: Settings, appointment_id: str) -> list[ConsultRecording]:
    async def read() -> list[ConsultRecording]:
        async with database(settings, global_fallback=False):
            return await ConsultRecording.filter(appointment_id=appointment_id)

    return run_sync(read())


def until_done(settings: Settings, appointment_id: str) -> list[ConsultRecording]:
    """The recorder stops when the room says so: wait (bounded) for its row to say how."""

    async def wait() -> list[ConsultRecording]:
        async with asyncio.timeout(20):
            while True:
                async with database(settings, global_fallback=False):
                    rows = await ConsultRecording.filter(appointment_id=appointment_id)
                if rows and all(r.status != "recording" for r in rows):
                    return rows
                await asyncio.sleep(0.2)

    return asyncio.run(wait())


def test_a_consult_is_recorded_only_with_everyones_consent_and_shown_to_the_clinic(
    browser: TestClient, world: World, settings: Settings, clock: FakeClock
) -> None:
    configure_ice(host_addresses=("127.0.0.1",))
    appointment_id = _appointment(settings, world, clock)
    patient_auth = token(browser, PHONE_A)
    patient_ticket = _ticket(browser, appointment_id, patient_auth)
    doctor_ticket = _ticket(browser, appointment_id, staff_token(browser, world.doctor_a, clock))

    with (
        browser.websocket_connect(patient_ticket["websocket"]) as patient,
        browser.websocket_connect(doctor_ticket["websocket"]) as doctor,
    ):
        say(patient, type="join", token=patient_ticket["token"])
        me = _until(patient, "joined")["participant"]
        say(doctor, type="join", token=doctor_ticket["token"])
        _until(doctor, "joined")
        say(doctor, type="admit", participant=me)
        _until(patient, "admitted")
        say(patient, type="offer", sdp=OFFER)
        _until(doctor, "offer")
        say(doctor, type="answer", sdp=OFFER)
        _until(patient, "answer")

        # Nobody asked: the recorder refuses, in words the patient can act on.
        status, body = record_camera(browser, appointment_id, patient_auth, 1)
        assert status == 409
        assert "同意" in body["detail"]  # Japanese first, English beside it
        assert "agrees" in body["i18n"]["en"]["detail"]
        # The doctor asks; the patient has not agreed yet: still refused.
        say(doctor, type="recording", action="request", id="r1")
        asked = _until(patient, "recording")
        assert (asked["status"], asked["consented"]) == (
            "requested",
            [doctor_ticket["participant"]],
        )
        assert _until(doctor, "recording")["id"] == "r1"
        assert record_camera(browser, appointment_id, patient_auth, 1)[0] == 409
        # The patient agrees: on, for everyone in the call.
        say(patient, type="recording", action="consent")
        on = _until(patient, "recording")
        assert (on["status"], on["segment"]) == ("on", 1)
        assert _until(doctor, "recording")["status"] == "on"
        # Someone else's patient account cannot send anything into it.
        other = token(browser, PHONE_B)
        assert record_camera(browser, appointment_id, other, 1)[0] == 404
        # A stale segment number is refused; the current one records.
        assert record_camera(browser, appointment_id, patient_auth, 2)[0] == 409
        camera = Camera(browser, appointment_id, patient_auth)
        try:
            status, started = camera.offer(1, frames=75)
            assert status == 201, started
            assert [r.status for r in recordings(settings, appointment_id)] == ["recording"]
            # The patient stops it: the room says off, the recorder stops while the camera is
            # still sending (a stop reaches the recorder on whichever worker holds it).
            say(patient, type="recording", action="stop")
            assert _until(patient, "recording")["status"] == "off"
            assert _until(doctor, "recording")["status"] == "off"
            done = until_done(settings, appointment_id)
        finally:
            camera.hang_up()
        sent = camera.sent
        say(doctor, type="end")

    (row,) = done
    assert str(row.id) == started["recording"]
    assert row.participant == patient_ticket["participant"]
    assert (row.status, row.end_reason) == ("done", "stopped")
    assert row.video_frames > 20
    assert (row.width, row.height) == (640, 480)
    # Sealed on disk: no WebM header, no frame data in the clear.
    path = Path(settings.recordings_path) / str(row.clinic_id) / f"{row.id}.sealed"
    raw = path.read_bytes()
    assert raw.startswith(MAGIC)
    assert b"\x1a\x45\xdf\xa3" not in raw
    assert b"webm" not in raw
    assert row.file_bytes == len(raw)

    # The doctor watches it: the frames the patient's camera sent, in order.
    clock.advance(seconds=30)  # a fresh authenticator code
    sign_in_staff(browser, world.doctor_a, clock)
    listing = browser.get(f"/staff/appointments/{appointment_id}/recordings")
    assert listing.status_code == 200
    assert f"/staff/recordings/{row.id}.webm" in listing.text
    assert listing.text.count("data-consent=") == 3
    # ... and finds it from the patient's page after the consult.
    recordings_link = f'href="/staff/appointments/{appointment_id}/recordings"'
    assert recordings_link in browser.get(f"/staff/patients/{world.patient_a}").text
    video = browser.get(f"/staff/recordings/{row.id}.webm")
    assert video.status_code == 200
    assert video.headers["content-type"] == "video/webm"
    assert video.headers["cache-control"] == "no-store"
    with av.open(io.BytesIO(video.content), mode="r", format="webm") as container:
        numbers = [frame_number(f.reformat(format="yuv420p")) for f in container.decode(video=0)]
    assert len(numbers) > 20
    assert numbers == sorted(numbers)
    assert numbers[-1] <= sent

    # Nobody else: not the receptionist, not another clinic, not a patient.
    clock.advance(seconds=30)
    sign_in_staff(browser, world.receptionist_a, clock)
    assert browser.get(f"/staff/recordings/{row.id}.webm").status_code == 403
    assert browser.get(f"/staff/appointments/{appointment_id}/recordings").status_code == 403
    reception_view = browser.get(f"/staff/patients/{world.patient_a}")
    assert reception_view.status_code == 200
    assert recordings_link not in reception_view.text
    clock.advance(seconds=30)
    sign_in_staff(browser, world.doctor_b, clock)
    assert browser.get(f"/staff/recordings/{row.id}.webm").status_code == 404
    assert browser.get(f"/staff/appointments/{appointment_id}/recordings").status_code == 404
    browser.cookies.clear()
    patient_try = browser.get(
        f"/staff/recordings/{row.id}.webm", headers=patient_auth, follow_redirects=False
    )
    assert patient_try.status_code == 303  # to the staff sign-in: patients have no way in
    assert patient_try.headers["location"] == "/staff/signin"

    async def kept() -> tuple[list[tuple[str, str, int]], list[str]]:
        async with database(settings, global_fallback=False):
            consents = await RecordingConsent.filter(appointment_id=appointment_id).order_by(
                "decided_at"
            )
            audit = await AuditEntry.filter(target_id=appointment_id).order_by("seq")
            return (
                [(c.participant, c.decision, c.segment) for c in consents],
                [a.action for a in audit],
            )

    consents, actions = run_sync(kept())
    assert consents == [
        (doctor_ticket["participant"], "request", 1),
        (patient_ticket["participant"], "consent", 1),
        (patient_ticket["participant"], "withdraw", 1),
    ]
    for expected in (
        "consult.recording.consent",
        "consult.recording_on",
        "consult.recording.start",
        "consult.recording_off",
        "recording.list",
        "recording.read",
    ):
        assert expected in actions, expected


def test_a_damaged_recording_file_gets_a_clear_page_not_an_error(
    browser: TestClient, world: World, settings: Settings, clock: FakeClock
) -> None:
    appointment_id = _appointment(settings, world, clock)

    async def seed() -> str:
        async with database(settings, global_fallback=False):
            row = await ConsultRecording.create(
                appointment_id=appointment_id,
                clinic_id=world.clinic_a,
                participant="patient:x",
                segment=1,
                status="done",
                started_at=clock.now,
            )
            return str(row.id)

    recording_id = run_sync(seed())
    sign_in_staff(browser, world.doctor_a, clock)
    missing = browser.get(f"/staff/recordings/{recording_id}.webm")
    assert missing.status_code == 410
    assert "録画" in missing.text
    path = Path(settings.recordings_path) / world.clinic_a / f"{recording_id}.sealed"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(MAGIC + b"\0\0\0\x02{}")
    assert browser.get(f"/staff/recordings/{recording_id}.webm").status_code == 410
    assert browser.get("/staff/recordings/not-a-uuid.webm").status_code == 404


def test_recordings_left_running_by_a_dead_process_are_marked_at_start_up(
    world: World, settings: Settings, clock: FakeClock
) -> None:
    from datetime import timedelta

    from patient_portal.pubsub import InMemoryPubSub
    from patient_portal.recordings import Recordings
    from video.recording import RecorderService, RecorderSettings

    async def run() -> dict[str, tuple[str, str | None]]:
        async with database(settings, global_fallback=False):
            rows = {}
            for name, age in (("long gone", timedelta(hours=3)), ("running", timedelta(0))):
                row = await ConsultRecording.create(
                    appointment_id=world.appointment_b,
                    clinic_id=world.clinic_b,
                    participant="patient:x",
                    segment=1,
                    started_at=clock.now - age,
                )
                rows[name] = str(row.id)
            service = RecorderService(RecorderSettings(max_seconds=3600))
            recordings = Recordings(service, InMemoryPubSub(), settings.recordings_path, clock)
            assert await recordings.mark_interrupted() == 1
            return {
                name: (row.status, row.end_reason)
                for name, key in rows.items()
                if (row := await ConsultRecording.get(id=key))
            }

    assert run_sync(run()) == {
        "long gone": ("failed", "interrupted"),
        "running": ("recording", None),  # may belong to a recorder of another worker
    }
