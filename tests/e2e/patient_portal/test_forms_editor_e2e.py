"""A doctor edits a questionnaire in Chromium: problems and the preview follow the typing."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyotp
import pytest

from interview_forms import submit, versions
from interview_forms.models import FormResponse, ResponseStatus
from patient_portal.accounts.models import StaffRole
from patient_portal.app import create_app
from patient_portal.auth.verifier import ConsoleVerifier
from patient_portal.crypto.keyring import keyring_for, use_keyring
from patient_portal.db import database
from patient_portal.settings import Settings
from tests.support.booking import make_appointment
from tests.support.databases import run_sync
from tests.support.identity import SeededStaff, make_clinic, make_patient, make_staff
from tests.support.live_server import serve

PHONE_WIDTH = 375
# Set TSUNAGU_SCREENSHOTS=/some/dir to keep screenshots of each step (for reviewing the pages).
SHOTS = os.environ.get("TSUNAGU_SCREENSHOTS")


@dataclass(frozen=True)
class Seeded:
    doctor: SeededStaff
    appointment_id: str  # with a completed cold/fever questionnaire


@pytest.fixture
def seeded(settings: Settings) -> Seeded:
    async def seed() -> Seeded:
        with use_keyring(keyring_for(settings.key_file, production=False)):
            async with database(settings, global_fallback=False):
                clinic = await make_clinic("forms")
                doctor = await make_staff(clinic, StaffRole.DOCTOR)
                patient = await make_patient("+819011119999", clinic, given_name="問診")
                appointment = await make_appointment(clinic, patient)
                now = datetime.now(UTC)
                template = versions.template("cold-fever-online")
                assert template is not None
                version, _ = await versions.create_draft(
                    str(clinic.id), "fever-online", template.text, created_by=None, now=now
                )
                await versions.publish(version, now=now)
                answers = {
                    **{f"rf_{name}": False for name in ("consciousness", "cyanosis", "chest")},
                    "rf_breath": True,
                    "rf_drink": False,
                    "fever_now": True,
                    "temperature": 38.6,
                    "fever_days": 2,
                    "age": 45,
                    "chronic": False,
                }
                result = submit(versions.definition(version), answers, authored=now)
                assert result.ok, result.errors
                await FormResponse.create(
                    clinic_id=clinic.id,
                    questionnaire=version,
                    account_id=patient.account_id,  # type: ignore[attr-defined]
                    patient_id=patient.id,
                    appointment_id=appointment.id,
                    status=ResponseStatus.COMPLETED,
                    answers=answers,
                    response=result.response,
                    structured=result.structured,
                    outcomes=[],
                    created_at=now,
                    updated_at=now,
                    completed_at=now,
                )
                return Seeded(doctor, str(appointment.id))

    return run_sync(seed())


@pytest.fixture
def doctor(seeded: Seeded) -> SeededStaff:
    return seeded.doctor


@pytest.fixture
def live_url(settings: Settings, doctor: SeededStaff) -> Iterator[str]:
    app = create_app(settings, verifier=ConsoleVerifier(fixed_code="135790"))
    with serve(app) as base_url:
        yield base_url


def shot(page: Any, name: str) -> None:
    if SHOTS:
        page.screenshot(path=str(Path(SHOTS) / f"{name}.png"), full_page=True)


def sign_in(page: Any, live_url: str, doctor: SeededStaff) -> None:
    page.goto(live_url + "/staff/signin")
    page.fill("#f-login", doctor.login_id)
    page.fill("#f-password", doctor.password)
    page.click("button.primary")
    page.fill("#f-code", pyotp.TOTP(doctor.totp_secret).now())
    page.click("button.primary")


def test_live_validation_and_preview_while_editing(
    live_url: str, doctor: SeededStaff, browser: Any
) -> None:
    context = browser.new_context(
        viewport={"width": PHONE_WIDTH, "height": 800}, locale="ja-JP", timezone_id="Asia/Tokyo"
    )
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        sign_in(page, live_url, doctor)

        page.goto(live_url + "/staff/questionnaires")
        page.fill("#f-key", "fever")  # "fever-online" is the seeded one
        page.select_option("#f-template", "cold-fever-online")
        page.click("form[action='/staff/questionnaires'] button.primary")
        page.wait_for_url("**/staff/questionnaires/versions/**")
        shot(page, "editor")
        assert page.locator("#preview").inner_text().count("息苦しい") == 1

        definition = json.loads(page.input_value("#f-definition"))
        definition["item"][0]["item"][0]["linkId"] = "rf_cyanosis"  # now a duplicate linkId
        page.fill("#f-definition", json.dumps(definition, ensure_ascii=False))
        problem = page.locator("#problems li").first
        problem.wait_for()
        assert "rf_cyanosis" in problem.inner_text()
        assert page.get_attribute("#f-definition", "aria-invalid") == "true"

        definition["item"][0]["item"][0]["linkId"] = "rf_consciousness"
        definition["item"][0]["item"][2]["text"] = "息が苦しくて横になれない"
        page.fill("#f-definition", json.dumps(definition, ensure_ascii=False))
        page.locator("#preview", has_text="息が苦しくて横になれない").wait_for()
        assert page.locator("#problems li").count() == 0
        shot(page, "editor-live")
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE_WIDTH
    finally:
        context.close()
    assert errors == []


def test_the_doctor_reads_the_answers_and_copies_the_s_summary(
    live_url: str, seeded: Seeded, browser: Any
) -> None:
    context = browser.new_context(
        viewport={"width": PHONE_WIDTH, "height": 800}, locale="ja-JP", timezone_id="Asia/Tokyo"
    )
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_url)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        sign_in(page, live_url, seeded.doctor)
        page.goto(f"{live_url}/staff/appointments/{seeded.appointment_id}/questionnaire")
        assert "来院して受診" in page.locator(".red-flags").inner_text()
        assert page.locator(".answer.red").count() == 1
        shot(page, "answers")
        page.click("button.copy")
        page.locator(".copied").wait_for()
        copied = page.evaluate("navigator.clipboard.readText()")
        assert copied == page.input_value("#s-text")
        assert "息苦しい" in copied
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE_WIDTH
    finally:
        context.close()
    assert errors == []
