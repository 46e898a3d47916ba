"""The home page in a real browser, on the narrowest phone we support (320 px)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from patient_portal.app import create_app
from patient_portal.settings import Settings
from tests.support.live_server import serve


@pytest.fixture
def live_url(settings: Settings) -> Iterator[str]:
    with serve(create_app(settings)) as base_url:
        yield base_url


@pytest.fixture
def phone(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 320, "height": 640}, locale="ja-JP")
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.problems = problems
    try:
        yield page
    finally:
        context.close()


def test_home_page_fits_a_320px_phone_and_switches_language(live_url: str, phone: Any) -> None:
    phone.goto(live_url + "/")
    assert phone.get_attribute("html", "lang") == "ja"
    assert phone.locator("h1").inner_text() == "スマホから、かかりつけの先生へ"
    # Nothing wider than the screen: no sideways scrolling on a small phone.
    assert phone.evaluate("document.documentElement.scrollWidth") <= 320
    # Tap targets are at least 44 px tall.
    for button in phone.locator("button").all():
        assert button.bounding_box()["height"] >= 44

    phone.get_by_role("button", name="English").click()
    phone.wait_for_load_state()
    assert phone.get_attribute("html", "lang") == "en"
    assert phone.locator("h1").inner_text() == "See your doctor, from your phone"
    phone.reload()
    assert phone.get_attribute("html", "lang") == "en"  # the choice is remembered
    assert phone.problems == []  # no script errors, no CSP violations


def test_keyboard_focus_is_visible(live_url: str, phone: Any) -> None:
    phone.goto(live_url + "/")
    phone.keyboard.press("Tab")
    focused = phone.evaluate(
        "(() => { const s = getComputedStyle(document.activeElement);"
        " return [document.activeElement.className, s.outlineStyle, s.outlineWidth]; })()"
    )
    assert focused[0] == "skip-link"
    assert focused[1] != "none"
    assert focused[2] != "0px"
