"""The clinic administrator sets up a menu and hours on a phone; a patient then sees the times."""

from __future__ import annotations

import re
from collections.abc import Iterator
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

PHONE_WIDTH = 320


@pytest.fixture
def admin(settings: Settings) -> SeededStaff:
    async def seed() -> SeededStaff:
        with use_keyring(keyring_for(settings.key_file, production=False)):
            async with database(settings, global_fallback=False):
                clinic = await make_clinic("setup")
                return await make_staff(clinic, StaffRole.CLINIC_ADMIN)

    return run_sync(seed())


@pytest.fixture
def live_url(settings: Settings, admin: SeededStaff) -> Iterator[str]:
    app = create_app(settings, verifier=ConsoleVerifier(fixed_code="135790"))
    with serve(app) as base_url:
        yield base_url


@pytest.fixture
def phone(browser: Any) -> Iterator[Any]:
    """A 320 px phone reading the Japanese pages."""
    context = browser.new_context(
        viewport={"width": PHONE_WIDTH, "height": 640}, locale="ja-JP", timezone_id="Asia/Tokyo"
    )
    page = context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.problems = problems
    try:
        yield page
    finally:
        context.close()


def fits(page: Any) -> bool:
    return bool(page.evaluate("document.documentElement.scrollWidth") <= PHONE_WIDTH)


def test_an_admin_adds_a_menu_and_hours_and_a_patient_sees_the_times(
    live_url: str, admin: SeededStaff, phone: Any, browser: Any
) -> None:
    page = phone
    page.goto(live_url + "/staff/signin")
    page.fill("#f-login", admin.login_id)
    page.fill("#f-password", admin.password)
    page.click("button.primary")
    page.fill("#f-code", pyotp.TOTP(admin.totp_secret).now())
    page.click("button.primary")

    page.goto(live_url + "/staff/clinic/practitioners/new")
    page.fill("#f-display_name", "見本 花子")
    page.fill("#f-display_name_kana", "みほん はなこ")
    page.click("button.primary")
    assert page.url.endswith("/staff/clinic/practitioners")
    assert fits(page)

    page.goto(live_url + "/staff/clinic/menus/new")
    assert fits(page)
    page.fill("#f-title_ja", "一般内科")
    page.fill("#f-title_en", "General medicine")
    page.fill("#f-duration_minutes", "30")
    page.fill("#f-min_notice_minutes", "0")
    page.get_by_label("見本 花子").check()
    page.click("button.primary")
    assert page.url.endswith("/staff/clinic/menus")
    menu_href = page.get_by_role("link", name="一般内科").get_attribute("href")
    assert menu_href is not None

    page.goto(live_url + "/staff/clinic/practitioners")
    page.get_by_role("link", name="週間の診療時間").click()
    assert fits(page)
    for day in ("月曜日", "火曜日", "水曜日", "木曜日", "金曜日", "土曜日", "日曜日"):
        page.get_by_label(day).check()
    page.fill("#f-start", "09:00")
    page.fill("#f-end", "10:00")
    page.click("button.primary")
    assert page.locator("table.table tbody tr").count() == 7

    visitor = browser.new_context(viewport={"width": PHONE_WIDTH, "height": 640}, locale="ja-JP")
    try:
        patient = visitor.new_page()
        menu_id = menu_href.rsplit("/", 1)[-1]
        patient.goto(f"{live_url}/clinics/setup/menus/{menu_id}")
        times = patient.locator("ul.slots").all_inner_texts()
        found = set(re.findall(r"\d{2}:\d{2}", " ".join(times)))
        assert found == {"09:00", "09:30"}
    finally:
        visitor.close()
    for path in ("/staff/clinic", "/staff/clinic/menus", "/staff/clinic/exceptions"):
        page.goto(live_url + path)
        assert fits(page), path
    assert page.problems == []
