"""Staff sign-in as an attacker would try it: password AND second factor, always."""

from __future__ import annotations

import pyotp
from starlette.testclient import TestClient

from tests.integration.patient_portal.conftest import World
from tests.support.clock import FakeClock
from tests.support.web import Devices, csrf_token, post_form, sign_in_staff

SESSION = "tsunagu_session"


def password_step(client: TestClient, login_id: str, password: str) -> object:
    return post_form(
        client,
        "/staff/signin",
        {"login_id": login_id, "password": password},
        page="/staff/signin",
        follow_redirects=False,
    )


def code_step(client: TestClient, code: str) -> object:
    return post_form(
        client,
        "/staff/signin/code",
        {"code": code},
        page="/staff/signin/code",
        follow_redirects=False,
    )


def test_password_and_code_sign_in_in_a_new_session(
    browser: TestClient, world: World, clock: FakeClock
) -> None:
    first = password_step(browser, world.doctor_a.login_id, world.doctor_a.password)
    assert first.status_code == 303
    pending_cookie = first.cookies[SESSION]
    # Half signed in: nothing but the second step works.
    assert browser.get("/staff", follow_redirects=False).headers["location"] == "/staff/signin"
    done = code_step(browser, pyotp.TOTP(world.doctor_a.totp_secret).at(clock.now))
    assert done.headers["location"] == "/staff"
    assert done.cookies[SESSION] != pending_cookie  # the session id rotates at sign-in
    cookie = done.headers["set-cookie"]
    assert "HttpOnly" in cookie
    assert "samesite=lax" in cookie.lower()
    assert browser.get("/staff").status_code == 200


def test_wrong_password_and_unknown_account_look_the_same(
    browser: TestClient, world: World
) -> None:
    wrong = password_step(browser, world.doctor_a.login_id, "not the password at all")
    unknown = password_step(browser, "nobody@example.invalid", "not the password at all")
    assert wrong.status_code == unknown.status_code == 401
    assert "ログインIDまたはパスワード" in wrong.text

    def strip(text: str) -> str:
        return text.replace(world.doctor_a.login_id, "").replace("nobody@example.invalid", "")

    assert (
        strip(wrong.text).split("<main")[1].split("csrf_token")[0]
        == strip(unknown.text).split("<main")[1].split("csrf_token")[0]
    )


def test_wrong_code_is_refused(browser: TestClient, world: World) -> None:
    password_step(browser, world.doctor_a.login_id, world.doctor_a.password)
    refused = code_step(browser, "000000")
    assert refused.status_code == 401
    assert browser.get("/staff", follow_redirects=False).status_code == 303


def test_a_used_code_cannot_be_replayed(
    browser: TestClient, world: World, clock: FakeClock
) -> None:
    devices = Devices(browser)
    code = pyotp.TOTP(world.doctor_a.totp_secret).at(clock.now)
    password_step(devices("first"), world.doctor_a.login_id, world.doctor_a.password)
    assert code_step(devices("first"), code).headers["location"] == "/staff"
    password_step(devices("second"), world.doctor_a.login_id, world.doctor_a.password)
    assert code_step(devices("second"), code).status_code == 401


def test_an_expired_code_is_refused(browser: TestClient, world: World, clock: FakeClock) -> None:
    old = pyotp.TOTP(world.doctor_a.totp_secret).at(clock.now)
    password_step(browser, world.doctor_a.login_id, world.doctor_a.password)
    clock.advance(minutes=2)
    assert code_step(browser, old).status_code == 401


def test_repeated_failures_lock_the_account_even_for_the_right_password(
    browser: TestClient, world: World
) -> None:
    for _ in range(5):
        assert (
            password_step(browser, world.doctor_a.login_id, "wrong password 123").status_code == 401
        )
    locked = password_step(browser, world.doctor_a.login_id, world.doctor_a.password)
    assert locked.status_code == 429
    assert "しばらく待って" in locked.text


def test_the_lockout_ends_after_its_window(
    browser: TestClient, world: World, clock: FakeClock
) -> None:
    for _ in range(5):
        password_step(browser, world.doctor_a.login_id, "wrong password 123")
    clock.advance(minutes=16)
    assert (
        password_step(browser, world.doctor_a.login_id, world.doctor_a.password).status_code == 303
    )


def test_staff_idle_timeout_ends_the_session(
    browser: TestClient, world: World, clock: FakeClock
) -> None:
    assert sign_in_staff(browser, world.doctor_a, clock).headers["location"] == "/staff"
    clock.advance(minutes=20)
    assert browser.get("/staff").status_code == 200
    clock.advance(minutes=31)
    assert browser.get("/staff", follow_redirects=False).headers["location"] == "/staff/signin"


def test_staff_absolute_timeout(browser: TestClient, world: World, clock: FakeClock) -> None:
    sign_in_staff(browser, world.doctor_a, clock)
    for _ in range(25):  # busy all day, never idle
        clock.advance(minutes=29)
        if browser.get("/staff", follow_redirects=False).status_code != 200:
            break
    assert browser.get("/staff", follow_redirects=False).status_code == 303


def test_sign_out_and_sign_out_everywhere(
    browser: TestClient, world: World, clock: FakeClock
) -> None:
    devices = Devices(browser)
    sign_in_staff(devices("pc1"), world.doctor_a, clock)
    clock.advance(seconds=31)  # a new TOTP step for the second device
    sign_in_staff(devices("pc2"), world.doctor_a, clock)
    sessions = devices("pc1").get("/staff/sessions")
    assert sessions.text.count('class="card"') == 2
    post_form(devices("pc1"), "/staff/sessions", {}, page="/staff/sessions")
    assert devices("pc2").get("/staff", follow_redirects=False).status_code == 303
    assert devices("pc1").get("/staff").status_code == 200
    post_form(devices("pc1"), "/staff/signout", {}, page="/staff")
    assert devices("pc1").get("/staff", follow_redirects=False).status_code == 303


def test_recovery_code_works_once(browser: TestClient, world: World, clock: FakeClock) -> None:
    import asyncio

    from patient_portal.accounts.models import RecoveryCode
    from patient_portal.auth import totp
    from patient_portal.crypto.keyring import keyring_for, use_keyring
    from patient_portal.db import database

    settings = browser.app.state.settings  # type: ignore[attr-defined]
    codes = totp.new_recovery_codes(2)

    async def store() -> None:
        with use_keyring(keyring_for(settings.key_file, production=False)):
            async with database(settings, global_fallback=False):
                for code in codes:
                    await RecoveryCode.create(
                        staff_id=world.doctor_a.id, code_hash=totp.hash_recovery_code(code)
                    )

    from tests.support.databases import run_sync

    run_sync(store())
    password_step(browser, world.doctor_a.login_id, world.doctor_a.password)
    assert code_step(browser, codes[0].lower()).headers["location"] == "/staff"
    post_form(browser, "/staff/signout", {}, page="/staff")
    password_step(browser, world.doctor_a.login_id, world.doctor_a.password)
    assert code_step(browser, codes[0]).status_code == 401
    assert asyncio.iscoroutinefunction(store)


def test_invitation_password_policy_enrolment_and_recovery_codes(
    browser: TestClient, world: World, clock: FakeClock
) -> None:
    devices = Devices(browser)
    if True:
        admin = devices("admin")
        sign_in_staff(admin, world.admin_a, clock)
        invited = post_form(
            admin,
            "/staff/admin/staff",
            {
                "login_id": "new.nurse@example.invalid",
                "display_name": "見本 新人",
                "display_name_kana": "ミホン シンジン",
                "role": "nurse",
            },
            page="/staff/admin/staff",
        )
        assert invited.status_code == 200
        link = invited.text.split("/staff/invitation/")[1].split("<")[0]
    if True:
        newcomer = devices("newcomer")
        page = f"/staff/invitation/{link}"
        weak = post_form(newcomer, page, {"password": "password1234"}, page=page)
        assert weak.status_code == 422
        named = post_form(newcomer, page, {"password": "new.nurse@example.invalid!"}, page=page)
        assert named.status_code == 422
        accepted = post_form(
            newcomer,
            page,
            {"password": "lantern orchard velvet thunder"},
            page=page,
            follow_redirects=False,
        )
        assert accepted.headers["location"] == "/staff/signin/enrol"
        enrol_page = newcomer.get("/staff/signin/enrol")
        assert 'src="data:image/svg+xml;base64,' in enrol_page.text
        secret = enrol_page.text.split('name="secret" value="')[1].split('"')[0]
        wrong = post_form(
            newcomer,
            "/staff/signin/enrol",
            {"secret": secret, "code": "000000"},
            page="/staff/signin/enrol",
        )
        assert wrong.status_code == 401
        done = newcomer.post(
            "/staff/signin/enrol",
            data={
                "secret": secret,
                "code": pyotp.TOTP(secret).at(clock.now),
                "csrf_token": csrf_token(newcomer, "/staff/signin/enrol"),
            },
        )
        assert done.status_code == 200
        assert done.text.count("<code>") == 10  # recovery codes, shown once
        assert done.headers["cache-control"] == "no-store"
        assert newcomer.get("/staff").status_code == 200
        # The link works once.
        assert newcomer.get(page).status_code == 404


def test_admin_disables_and_resets_staff(
    browser: TestClient, world: World, clock: FakeClock
) -> None:
    devices = Devices(browser)
    sign_in_staff(devices("doctor"), world.doctor_a, clock)
    sign_in_staff(devices("admin"), world.admin_a, clock)
    post_form(
        devices("admin"),
        f"/staff/admin/staff/{world.doctor_a.id}/reset-mfa",
        {},
        page="/staff/admin/staff",
    )
    assert devices("doctor").get("/staff", follow_redirects=False).status_code == 303
    again = password_step(devices("doctor"), world.doctor_a.login_id, world.doctor_a.password)
    assert again.headers["location"] == "/staff/signin/enrol"  # must enrol again
    post_form(
        devices("admin"),
        f"/staff/admin/staff/{world.doctor_a.id}/disable",
        {},
        page="/staff/admin/staff",
    )
    refused = password_step(devices("doctor"), world.doctor_a.login_id, world.doctor_a.password)
    assert refused.status_code == 401
    # Another clinic's admin cannot touch clinic A's staff.
    sign_in_staff(devices("other"), world.admin_b, clock)
    attempt = post_form(
        devices("other"),
        f"/staff/admin/staff/{world.receptionist_a.id}/disable",
        {},
        page="/staff/admin/staff",
    )
    assert attempt.status_code == 404


def test_control_characters_in_a_form_are_harmless(browser: TestClient, world: World) -> None:
    response = password_step(browser, "doctor\u0000@example.invalid", "pass\u0000word")
    assert response.status_code == 401
