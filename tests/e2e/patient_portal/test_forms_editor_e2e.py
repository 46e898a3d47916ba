"""A doctor edits a questionnaire in Chromium: problems and the preview follow the typing."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyotp
import pytest

from patient_portal.accounts.models import StaffRole
from patient_portal.app import create_app
from patient_portal.auth.verifier import ConsoleVerifier
from patient_portal.crypto.keyring import keyring_for, use_keyring
from patient_portal.db import database
from patient_portal.settings import Settings
from tests.support.databases import run_sync
from tests.support.identity import SeededStaff, make_clinic, make_staff
from tests.support.live_server import serve

PHONE_WIDTH = 375
# Set TSUNAGU_SCREENSHOTS=/some/dir to keep screenshots of each step (for reviewing the pages).
SHOTS = os.environ.get("TSUNAGU_SCREENSHOTS")


@pytest.fixture
def doctor(settings: Settings) -> SeededStaff:
    async def seed() -> SeededStaff:
        with use_keyring(keyring_for(settings.key_file, production=False)):
            async with database(settings, global_fallback=False):
                clinic = await make_clinic("forms")
                return await make_staff(clinic, StaffRole.DOCTOR)

    return run_sync(seed())


@pytest.fixture
def live_url(settings: Settings, doctor: SeededStaff) -> Iterator[str]:
    app = create_app(settings, verifier=ConsoleVerifier(fixed_code="135790"))
    with serve(app) as base_url:
        yield base_url


def shot(page: Any, name: str) -> None:
    if SHOTS:
        page.screenshot(path=str(Path(SHOTS) / f"{name}.png"), full_page=True)


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
        page.goto(live_url + "/staff/signin")
        page.fill("#f-login", doctor.login_id)
        page.fill("#f-password", doctor.password)
        page.click("button.primary")
        page.fill("#f-code", pyotp.TOTP(doctor.totp_secret).now())
        page.click("button.primary")

        page.goto(live_url + "/staff/questionnaires")
        page.fill("#f-key", "fever")
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
