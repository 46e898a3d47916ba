"""Real WebAuthn ceremonies in headless Chromium, answered by its CDP virtual authenticator.

The page is opened as ``http://localhost:<port>``: a secure context, and a host name WebAuthn
accepts as the relying party id (it refuses IP addresses).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pyotp
import pytest

from booking.models import Clinic
from patient_portal.accounts.models import StaffRole
from patient_portal.app import create_app
from patient_portal.auth.verifier import ConsoleVerifier
from patient_portal.crypto.keyring import keyring_for, use_keyring
from patient_portal.db import database
from patient_portal.settings import Settings
from tests.support.databases import run_sync
from tests.support.identity import SeededStaff, make_clinic, make_patient, make_staff
from tests.support.live_server import serve

SMS_CODE = "135790"
PHONE = "+819055550001"


@pytest.fixture
def staff_member(settings: Settings) -> SeededStaff:
    async def seed() -> SeededStaff:
        with use_keyring(keyring_for(settings.key_file, production=False)):
            async with database(settings, global_fallback=False):
                clinic: Clinic = await make_clinic("passkey-clinic")
                await make_patient(PHONE, clinic, given_name="鍵子")
                return await make_staff(clinic, StaffRole.DOCTOR)

    return run_sync(seed())


@pytest.fixture
def live_url(settings: Settings, staff_member: SeededStaff) -> Iterator[str]:
    app = create_app(settings, verifier=ConsoleVerifier(fixed_code=SMS_CODE))
    with serve(app) as base_url:
        yield base_url.replace("127.0.0.1", "localhost")


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A page with a virtual platform authenticator that holds passkeys and verifies the user."""
    context = browser.new_context(locale="en-GB")
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.problems = problems
    cdp = context.new_cdp_session(page)
    cdp.send("WebAuthn.enable")
    added = cdp.send(
        "WebAuthn.addVirtualAuthenticator",
        {
            "options": {
                "protocol": "ctap2",
                "transport": "internal",
                "hasResidentKey": True,
                "hasUserVerification": True,
                "isUserVerified": True,
                "automaticPresenceSimulation": True,
            }
        },
    )
    page.cdp = cdp
    page.authenticator = added["authenticatorId"]
    try:
        yield page
    finally:
        context.close()


def credentials(page: Any) -> list[dict[str, Any]]:
    result = page.cdp.send("WebAuthn.getCredentials", {"authenticatorId": page.authenticator})
    return list(result["credentials"])


def add_passkey(page: Any, manage_url: str, name: str) -> None:
    page.goto(manage_url)
    page.get_by_label("Name of the passkey").fill(name)
    with page.expect_navigation():
        page.get_by_role("button", name="Add a passkey").click()
    assert page.locator(".card-title", has_text=name).count() == 1


def test_a_patient_signs_in_again_with_only_a_passkey(live_url: str, page: Any) -> None:
    page.goto(live_url + "/signin")
    page.get_by_label("Mobile phone number").fill("090-5555-0001")
    page.get_by_role("button", name="Send the code").click()
    page.get_by_label("Code").fill(SMS_CODE)
    with page.expect_navigation(url=live_url + "/account"):
        page.get_by_role("button", name="Sign in").click()

    add_passkey(page, live_url + "/account/passkeys", "Test phone")
    [stored] = credentials(page)
    assert stored["isResidentCredential"] is True

    page.goto(live_url + "/account")
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(live_url + "/")
    page.goto(live_url + "/signin")
    with page.expect_navigation(url=live_url + "/account"):
        page.get_by_role("button", name="Sign in with a passkey").click()
    assert page.locator("h1").inner_text() == "Your account"
    assert "鍵子" in page.locator("main").inner_text()
    assert credentials(page)[0]["signCount"] >= 2
    assert page.problems == []


def test_staff_use_a_passkey_as_their_second_factor(
    live_url: str, page: Any, staff_member: SeededStaff
) -> None:
    def password_step() -> None:
        page.goto(live_url + "/staff/signin")
        page.get_by_label("Login ID").fill(staff_member.login_id)
        page.get_by_label("Password").fill(staff_member.password)
        with page.expect_navigation(url=live_url + "/staff/signin/code"):
            page.get_by_role("button", name="Next").click()

    password_step()
    # No passkey yet: the page says so, in the page's language, and the code still works.
    page.get_by_role("button", name="Use a passkey").click()
    alert = page.get_by_role("alert")
    alert.wait_for()
    assert alert.inner_text() == (
        "You have no passkey registered. Enter the code from your authenticator app."
    )
    page.problems.clear()  # the browser logs the refused request itself
    page.get_by_label("Code").fill(pyotp.TOTP(staff_member.totp_secret).now())
    with page.expect_navigation(url=live_url + "/staff"):
        page.get_by_role("button", name="Sign in").click()
    page.get_by_role("link", name="Passkeys").click()
    add_passkey(page, live_url + "/staff/passkeys", "Reception PC")

    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(live_url + "/staff/signin")
    password_step()
    with page.expect_navigation(url=live_url + "/staff"):
        page.get_by_role("button", name="Use a passkey").click()
    assert page.get_by_role("link", name="Passkeys").count() == 1
    assert page.problems == []


def test_without_webauthn_the_passkey_button_stays_hidden(live_url: str, browser: Any) -> None:
    context = browser.new_context(locale="en-GB")
    context.add_init_script("delete window.PublicKeyCredential;")
    page = context.new_page()
    try:
        page.goto(live_url + "/signin")
        assert not page.get_by_role("button", name="Sign in with a passkey").is_visible()
        assert page.get_by_role("button", name="Send the code").is_visible()
    finally:
        context.close()
