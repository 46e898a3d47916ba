"""Booking in a real browser on a small phone, in another time zone than the clinic."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from patient_portal.app import create_app
from patient_portal.auth.verifier import ConsoleVerifier
from patient_portal.crypto.keyring import keyring_for, use_keyring
from patient_portal.db import database
from patient_portal.settings import Settings
from tests.support.booking import make_menu
from tests.support.databases import run_sync
from tests.support.identity import make_clinic, make_patient
from tests.support.live_server import serve

SMS_CODE = "246802"
PHONE = "090-5555-0101"


@pytest.fixture
def menu_page(settings: Settings) -> str:
    async def seed() -> str:
        with use_keyring(keyring_for(settings.key_file, production=False)):
            async with database(settings, global_fallback=False):
                clinic = await make_clinic("tokyo")
                await make_patient("+819055550101", clinic, given_name="旅子")
                menu, _ = await make_menu(clinic, every_day=(0, 24 * 60))
                return f"/clinics/tokyo/menus/{menu.id}"

    return run_sync(seed())


@pytest.fixture
def live_url(settings: Settings, menu_page: str) -> Iterator[str]:
    app = create_app(settings, verifier=ConsoleVerifier(fixed_code=SMS_CODE))
    with serve(app) as base_url:
        yield base_url


@pytest.fixture
def traveller(browser: Any) -> Iterator[Any]:
    """A 320 px phone whose clock is in New York, reading the English pages."""
    context = browser.new_context(
        viewport={"width": 320, "height": 640}, locale="en-US", timezone_id="America/New_York"
    )
    page = context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.problems = problems
    try:
        yield page
    finally:
        context.close()


def test_book_a_time_and_see_it_in_both_zones(
    live_url: str, menu_page: str, traveller: Any
) -> None:
    page = traveller
    page.goto(live_url + "/signin")
    page.fill("#f-phone", PHONE)
    page.click("button.primary")
    page.fill("#f-code", SMS_CODE)
    page.click("button.primary")
    page.goto(live_url + menu_page)
    assert page.evaluate("document.documentElement.scrollWidth") <= 320
    first = page.locator("ul.slots button").first
    clinic_time = first.inner_text().splitlines()[0]
    first.click()
    assert "/confirm" in page.url
    page.get_by_role("button", name="Book").click()
    assert page.url.endswith("/appointments")
    card = page.locator(".card-title").first.inner_text()
    assert clinic_time in card  # the clinic's own time (Asia/Tokyo)
    assert "America/New_York" in card  # and the traveller's, added by the page's script
    assert page.problems == []
