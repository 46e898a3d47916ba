"""The reception list in headless Chromium changes by itself when a patient enters their consult
room (on the real websocket): no reload, the waiting badge appears, the status says when; left
unused, it stops listening until a key is pressed."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pyotp
import pytest
from websockets.sync.client import connect

from booking.models import VisitMode
from patient_portal.accounts.models import StaffRole
from patient_portal.app import create_app
from patient_portal.auth.models import PrincipalKind
from patient_portal.auth.tokens import Tokens
from patient_portal.crypto.keyring import keyring_for, use_keyring
from patient_portal.db import database
from patient_portal.jobs import utc_now
from patient_portal.settings import Settings
from tests.support.booking import book, make_menu
from tests.support.databases import run_sync
from tests.support.identity import SeededStaff, make_clinic, make_patient, make_staff
from tests.support.live_server import serve


@dataclass(frozen=True)
class Seeded:
    receptionist: SeededStaff
    appointment: str  # an online consult five minutes from now: its room is open
    day: str
    patient_token: str


@pytest.fixture
def seeded(settings: Settings) -> Seeded:
    async def seed() -> Seeded:
        with use_keyring(keyring_for(settings.key_file, production=False)):
            async with database(settings, global_fallback=False):
                clinic = await make_clinic("reception-e2e")
                menu, practitioner = await make_menu(clinic, mode=VisitMode.ONLINE)
                patient = await make_patient("+819055550303", clinic, given_name="受付子")
                receptionist = await make_staff(clinic, StaffRole.RECEPTIONIST)
                now = utc_now()
                start = now + timedelta(minutes=5)
                appointment = await book(clinic, menu, practitioner, patient, start, now=now)
                pair = await Tokens(utc_now).issue(
                    PrincipalKind.PATIENT,
                    str(patient.account_id),  # type: ignore[attr-defined]
                )
                day = start.astimezone(ZoneInfo(clinic.time_zone)).date().isoformat()
                return Seeded(receptionist, str(appointment.id), day, pair.access_token)

    return run_sync(seed())


@pytest.fixture
def live_url(settings: Settings, seeded: Seeded) -> Iterator[str]:
    with serve(create_app(settings)) as base_url:
        yield base_url


def test_the_list_shows_a_patient_entering_their_room_without_a_reload(
    browser: Any, live_url: str, seeded: Seeded
) -> None:
    context = browser.new_context(locale="ja-JP")
    page = context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    try:
        page.goto(live_url + "/staff/signin")
        page.fill("#f-login", seeded.receptionist.login_id)
        page.fill("#f-password", seeded.receptionist.password)
        page.click("button.primary")
        page.wait_for_url(live_url + "/staff/signin/code")
        page.fill("#f-code", pyotp.TOTP(seeded.receptionist.totp_secret).now())
        page.click("button.primary")
        page.wait_for_url(live_url + "/staff")

        page.goto(f"{live_url}/staff/schedule?day={seeded.day}")
        status = page.locator("#reception-live")
        status.filter(has_text="最終更新").wait_for(timeout=10_000)  # listening, rows fetched
        assert status.get_attribute("aria-live") is None  # role=status is polite by itself
        assert status.get_attribute("role") == "status"
        row = page.locator(f'tr[data-appointment="{seeded.appointment}"]')
        assert row.locator(".waiting-badge").count() == 0
        page.evaluate("window.notReloaded = true")

        seat = httpx.post(
            f"{live_url}/api/v1/consults/{seeded.appointment}/ticket",
            headers={"Authorization": f"Bearer {seeded.patient_token}"},
            timeout=10,
        ).json()
        with connect(live_url.replace("http://", "ws://") + seat["websocket"]) as socket:
            socket.send(json.dumps({"v": 1, "type": "join", "token": seat["token"]}))
            assert json.loads(socket.recv(timeout=10))["type"] == "joined"
            badge = row.locator(".waiting-badge")
            badge.wait_for(timeout=10_000)
            assert "待合室で待機中" in badge.inner_text()
            assert page.evaluate("window.notReloaded") is True
            assert "受付済" in row.inner_text()  # entering the room checked the patient in

        # Nobody has used the page for long: it stops listening; a key press goes on.
        page.evaluate("window.tsunaguReception.lastUse = 0")
        status.filter(has_text="操作がないため").wait_for(timeout=10_000)
        assert page.evaluate("window.tsunaguReception.source") is None
        page.keyboard.press("Shift")
        status.filter(has_text="最終更新").wait_for(timeout=10_000)
        assert page.evaluate("window.tsunaguReception.source !== null")
        assert problems == []
    finally:
        context.close()
