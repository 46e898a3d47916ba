"""The questionnaire in a real browser on a phone: questions appear the moment they apply
(the browser evaluator), the answers survive, and the server agrees on sending."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from booking.models import Menu
from patient_portal.app import create_app
from patient_portal.auth.verifier import ConsoleVerifier
from patient_portal.crypto.keyring import keyring_for, use_keyring
from patient_portal.db import database
from patient_portal.settings import Settings
from tests.support import forms
from tests.support.booking import make_menu
from tests.support.databases import run_sync
from tests.support.identity import make_clinic, make_patient
from tests.support.live_server import serve

SMS_CODE = "246802"
PHONE = "090-5555-0102"


@pytest.fixture
def menu_page(settings: Settings) -> str:
    async def seed() -> str:
        with use_keyring(keyring_for(settings.key_file, production=False)):
            async with database(settings, global_fallback=False):
                clinic = await make_clinic("tokyo")
                await make_patient("+819055550102", clinic, given_name="問子")
                await forms.publish(str(clinic.id))
                menu, _ = await make_menu(clinic, every_day=(0, 24 * 60))
                await Menu.filter(id=menu.id).update(questionnaire_id="fever")
                return f"/clinics/tokyo/menus/{menu.id}"

    return run_sync(seed())


@pytest.fixture
def live_url(settings: Settings, menu_page: str) -> Iterator[str]:
    app = create_app(settings, verifier=ConsoleVerifier(fixed_code=SMS_CODE))
    with serve(app) as base_url:
        yield base_url


@pytest.fixture
def phone(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 360, "height": 740}, locale="ja-JP")
    page = context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.problems = problems
    try:
        yield page
    finally:
        context.close()


def test_questions_appear_as_the_patient_answers_and_the_server_agrees(
    live_url: str, menu_page: str, phone: Any
) -> None:
    page = phone
    page.goto(live_url + "/signin")
    page.fill("#f-phone", PHONE)
    page.click("button.primary")
    page.fill("#f-code", SMS_CODE)
    page.click("button.primary")
    page.goto(live_url + menu_page)
    page.locator("ul.slots button").first.click()
    page.get_by_role("button", name="次へ:問診票").click()
    assert page.url.endswith("/questionnaire")
    page.wait_for_selector("form[data-live=on]")  # the browser evaluator is running

    temperature = page.locator('[data-field-key="temp"]')
    assert temperature.is_hidden()
    page.get_by_label("はい").first.check()  # fever: yes
    assert temperature.is_visible()  # at once, no round trip
    page.get_by_label("いいえ").first.check()
    assert temperature.is_hidden()
    page.get_by_label("はい").first.check()
    page.fill("#q-temp", "38.2")
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    page.get_by_role("button", name="次へ").click()
    assert "section=1" in page.url  # no "more questions" round trip: the browser showed them

    page.fill('[id="q-meds[0]/med_name"]', "カロナール")
    page.get_by_role("button", name="もう1件追加").click()
    page.fill('[id="q-meds[1]/med_name"]', "ムコダイン")
    assert page.input_value('[id="q-meds[0]/med_name"]') == "カロナール"
    page.get_by_role("button", name="回答を送信する").click()
    assert "/questionnaire/done" in page.url
    assert "ご回答ありがとうございました" in page.content()
    page.get_by_role("link", name="予約の確定へ").click()
    page.get_by_role("button", name="予約", exact=True).click()
    assert page.url.endswith("/appointments")
    assert page.problems == []
