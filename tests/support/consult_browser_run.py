"""A whole video consult in two headless Chromium windows — run inside a network namespace that
has only loopback (Chromium cannot be kept on loopback otherwise), by
tests/e2e/patient_portal/test_consult_browser.py.

Usage: ``python -m tests.support.consult_browser_run`` with TSUNAGU_DATABASE_URL (SQLite) and
TSUNAGU_DATA_DIR set. Migrates, seeds an online appointment, serves the app on 127.0.0.1, and
drives a patient (a 375 px phone) and a doctor (a desktop) with Chromium's fake camera: join,
wait, admit, video both ways, chat, a consented recording, a forced websocket drop and rejoin
with media still flowing, end. Prints one JSON line with what it saw; exits 1 (with the reason)
when a step fails.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pyotp

from booking.models import Clinic, VisitMode
from patient_portal.accounts.models import StaffRole
from patient_portal.app import create_app
from patient_portal.auth.verifier import ConsoleVerifier
from patient_portal.crypto.keyring import keyring_for, use_keyring
from patient_portal.db import database
from patient_portal.jobs import utc_now
from patient_portal.settings import load_settings
from tests.support.booking import book, make_menu
from tests.support.identity import SeededStaff, make_clinic, make_patient, make_staff
from tests.support.live_server import serve

SMS_CODE = "246802"
PHONE = "090-5555-0177"
MEDIA_FLAGS = [
    "--autoplay-policy=no-user-gesture-required",  # a reloaded page plays without a new tap
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
    "--allow-loopback-in-peer-connection",
    "--disable-features=WebRtcHideLocalIpsWithMdns",
]
STATUS = "document.querySelector('[data-status]')?.textContent || location.pathname"
REMOTE_PLAYING = """() => {
  const v = document.querySelector('[data-remote]');
  return v && v.videoWidth > 0 && v.currentTime > 0.3 && !v.paused;
}"""


async def recorded(appointment_id: str) -> list[dict[str, Any]]:
    """The recordings the consult left (after the server stopped: every recorder has ended)."""
    from video.models import ConsultRecording

    settings = load_settings(os.environ)
    async with database(settings, global_fallback=False):
        rows = await ConsultRecording.filter(appointment_id=appointment_id)
        return [
            {"side": r.participant.split(":")[0], "status": r.status, "frames": r.video_frames}
            for r in rows
        ]


async def seed() -> tuple[str, SeededStaff]:
    settings = load_settings(os.environ)
    with use_keyring(keyring_for(settings.key_file, production=False)):
        async with database(settings, global_fallback=False):
            clinic: Clinic = await make_clinic("video")
            menu, practitioner = await make_menu(clinic, mode=VisitMode.ONLINE)
            patient = await make_patient("+819055550177", clinic, given_name="映子")
            doctor = await make_staff(clinic, StaffRole.DOCTOR)
            now = utc_now()
            start = now + timedelta(minutes=5)
            appointment = await book(clinic, menu, practitioner, patient, start, now=now)
            return str(appointment.id), doctor


FRAMES = "document.querySelector('[data-remote]').getVideoPlaybackQuality().totalVideoFrames"


def advancing(page: Any) -> float:
    """Remote video frames shown over one wall-clock second (Chromium's fake camera: ~20)."""
    before = int(page.evaluate(FRAMES))
    time.sleep(1.0)
    return float(int(page.evaluate(FRAMES)) - before)


def run(base: str, appointment_id: str, doctor: SeededStaff, report: dict[str, Any]) -> None:
    from playwright.sync_api import sync_playwright

    from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=[*CHROMIUM_ARGS, *MEDIA_FLAGS]
        )
        allowed = ["camera", "microphone"]
        phone_context = browser.new_context(
            viewport={"width": 375, "height": 740},
            locale="ja-JP",
            is_mobile=True,
            permissions=allowed,
        )
        desk_context = browser.new_context(
            viewport={"width": 1280, "height": 800}, locale="ja-JP", permissions=allowed
        )
        problems: list[str] = []
        report["page_errors"] = problems
        patient, clinician = phone_context.new_page(), desk_context.new_page()
        for page in (patient, clinician):
            page.set_default_timeout(20_000)
            page.on("pageerror", lambda e: problems.append(str(e)))
        try:
            steps(base, appointment_id, doctor, report, patient, clinician)
        except Exception:
            shots = Path(os.environ.get("TSUNAGU_DATA_DIR", ".")).parent
            patient.screenshot(path=str(shots / "patient.png"), full_page=True)
            clinician.screenshot(path=str(shots / "doctor.png"), full_page=True)
            report["last_status"] = {  # what each page said last, for the failure's message
                "patient": patient.evaluate(STATUS),
                "patient_camera": patient.evaluate("window.tsunaguConsult?.cameraError || ''"),
                "doctor": clinician.evaluate(STATUS),
            }
            raise
        finally:
            browser.close()


def steps(
    base: str,
    appointment_id: str,
    doctor: SeededStaff,
    report: dict[str, Any],
    patient: Any,
    clinician: Any,
) -> None:

    patient.goto(base + "/signin")
    patient.fill("#f-phone", PHONE)
    patient.click("button.primary")
    patient.fill("#f-code", SMS_CODE)
    patient.click("button.primary")
    patient.goto(base + "/appointments")
    patient.click(f'a[href="/consults/{appointment_id}"]')
    patient.click("[data-precall]")  # the pre-call check against the server's peer
    patient.wait_for_function("() => window.tsunaguConsult.precall", timeout=45_000)
    report["precall"] = patient.evaluate("window.tsunaguConsult.precall")
    report["precall_advice"] = patient.inner_text("[data-precall-result]")
    patient.click("[data-join]")
    patient.wait_for_function(
        "() => document.querySelector('[data-status]').textContent.includes('お待ちください')"
    )
    report["patient_waited"] = True

    clinician.goto(base + "/staff/signin")
    clinician.fill("#f-login", doctor.login_id)
    clinician.fill("#f-password", doctor.password)
    clinician.press("#f-password", "Enter")
    clinician.fill("#f-code", pyotp.TOTP(doctor.totp_secret).now())
    clinician.press("#f-code", "Enter")
    clinician.wait_for_url(lambda url: "/signin" not in url)
    clinician.goto(base + f"/staff/consults/{appointment_id}")
    clinician.click("[data-join]")
    clinician.click("[data-admit]")  # the waiting patient, let in
    patient.wait_for_function(REMOTE_PLAYING)
    clinician.wait_for_function(REMOTE_PLAYING)
    report["patient_sees"] = patient.evaluate(
        "[document.querySelector('[data-remote]').videoWidth,"
        " document.querySelector('[data-remote]').videoHeight]"
    )
    report["doctor_sees"] = clinician.evaluate(
        "[document.querySelector('[data-remote]').videoWidth,"
        " document.querySelector('[data-remote]').videoHeight]"
    )
    report["phone_fits"] = patient.evaluate(
        "document.documentElement.scrollWidth <= window.innerWidth"
    )

    clinician.fill("#chat-text", "聞こえますか")
    clinician.click("[data-chat-form] button")
    patient.wait_for_function(
        "() => document.querySelector('[data-chat-lines]').textContent.includes('聞こえますか')"
    )
    report["chat"] = True

    # Consented recording: the doctor asks, the patient agrees, both pages send to the recorder.
    recorder_up = (
        "() => document.querySelector('[data-consult]').classList.contains('recording')"
        " && window.tsunaguConsult.recorder.pc?.connectionState === 'connected'"
    )
    clinician.click("[data-recording-request]")
    patient.wait_for_selector("[data-recording-consent]", state="visible")
    report["patient_asked"] = patient.inner_text("[data-recording-status]")
    patient.click("[data-recording-consent]")
    patient.wait_for_function(recorder_up)
    clinician.wait_for_function(recorder_up)
    report["recording_shown"] = patient.inner_text("[data-recording-status]")
    time.sleep(3)  # three seconds of both cameras into the recorder
    patient.click("[data-recording-stop]")
    for page in (patient, clinician):
        page.wait_for_function(
            "() => !document.querySelector('[data-consult]').classList.contains('recording')"
            " && window.tsunaguConsult.recorder.pc === null"
        )
    report["recording_stopped"] = True

    # Cut the patient's websocket: the page reconnects on its own and the call goes on.
    ufrag = "(window.tsunaguConsult.pc.localDescription.sdp.match(/a=ice-ufrag:(\\S+)/) || [])[1]"
    before = patient.evaluate(ufrag)
    patient.evaluate("window.tsunaguConsult.socket.close(4000)")
    clinician.wait_for_function(
        "() => document.querySelector('[data-status]').textContent.includes('再接続')"
    )
    report["doctor_saw_reconnecting"] = True
    patient.wait_for_function(
        "() => window.tsunaguConsult.socket && window.tsunaguConsult.socket.readyState === 1"
        " && document.querySelector('[data-status]').textContent.includes('診察室に入りました')"
    )
    report["patient_rejoined"] = True
    patient.wait_for_function(f"() => {ufrag} && {ufrag} !== {json.dumps(before)}")
    report["ice_restarted"] = True  # new ICE credentials: the rejoining side restarted ICE
    report["patient_video_after_drop"] = advancing(patient)
    report["doctor_video_after_drop"] = advancing(clinician)

    # The doctor reloads the page: it rejoins by itself and the call starts afresh.
    clinician.reload()
    clinician.wait_for_function(REMOTE_PLAYING, timeout=30_000)
    patient.wait_for_function(REMOTE_PLAYING, timeout=30_000)
    report["doctor_reload_rejoined"] = True
    clinician.wait_for_function(
        "() => document.querySelector('[data-chat-lines]').textContent.includes('聞こえますか')"
    )
    report["chat_after_reload"] = True
    report["patient_video_after_reload"] = advancing(patient)

    clinician.click("[data-end]")
    patient.wait_for_function(
        "() => document.querySelector('[data-status]').textContent.includes('終了')"
    )
    report["ended"] = True


def main() -> int:
    tsunagu = shutil.which("tsunagu") or str(Path(sys.executable).with_name("tsunagu"))
    subprocess.run([tsunagu, "migrate"], check=True, capture_output=True, timeout=120)
    appointment_id, doctor = asyncio.run(seed())
    settings = load_settings(os.environ)
    app = create_app(settings, verifier=ConsoleVerifier(fixed_code=SMS_CODE))
    report: dict[str, Any] = {}
    try:
        with serve(app) as base:
            run(base, appointment_id, doctor, report)
        report["recordings"] = asyncio.run(recorded(appointment_id))
    except Exception as error:  # the reason goes to the test's assertion message
        report["failed"] = f"{type(error).__name__}: {str(error)[:300]}"
        print(json.dumps(report, ensure_ascii=False, default=str))
        return 1
    print(json.dumps(report, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
