"""Patients: SMS-code sign-in and sign-up, profile and family, sessions, and the API's tokens."""

from __future__ import annotations

from starlette.testclient import TestClient

from tests.integration.patient_portal.conftest import PHONE_A, SMS_CODE, World
from tests.support.clock import FakeClock
from tests.support.web import Devices, post_form, sign_in_patient

PROFILE = {
    "family_name": "見本",
    "given_name": "三郎",
    "family_name_kana": "みほん",
    "given_name_kana": "サブロウ",
    "birth_date": "1961-03-03",
    "sex": "male",
    "postal_code": "１００－０００１",
    "email": "",
}


def test_a_new_number_signs_up_then_gives_its_details(browser: TestClient, world: World) -> None:
    sent = post_form(browser, "/signin", {"phone": "090-2222-3333"}, page="/signin")
    assert sent.status_code == 200
    assert "***3333" in sent.text
    assert "090-2222-3333" not in sent.text.replace('value="+819022223333"', "")
    signed_in = post_form(
        browser,
        "/signin/code",
        {"phone": "+819022223333", "code": SMS_CODE},
        page="/signin",
        follow_redirects=False,
    )
    assert signed_in.headers["location"] == "/account/profile"
    bad = post_form(
        browser,
        "/account/profile",
        {**PROFILE, "given_name_kana": "saburo"},
        page="/account/profile",
    )
    assert bad.status_code == 422
    assert "ふりがなはひらがなまたはカタカナで入力してください" in bad.text
    saved = post_form(
        browser, "/account/profile", PROFILE, page="/account/profile", follow_redirects=False
    )
    assert saved.headers["location"] == "/account"
    account = browser.get("/account")
    assert "見本 三郎" in account.text
    assert "1961-03-03" in account.text


def test_an_existing_patient_signs_in_to_their_records(browser: TestClient, world: World) -> None:
    response = sign_in_patient(browser, "090-1111-0001", SMS_CODE)
    assert response.headers["location"] == "/account"
    assert "見本 一子" in browser.get("/account").text


def test_a_wrong_code_is_refused_and_many_lock_the_number(
    browser: TestClient, world: World
) -> None:
    post_form(browser, "/signin", {"phone": PHONE_A}, page="/signin")
    statuses = [
        post_form(
            browser, "/signin/code", {"phone": PHONE_A, "code": "999999"}, page="/signin"
        ).status_code
        for _ in range(6)
    ]
    assert statuses[0] == 401
    assert statuses[-1] == 429
    # Even the right code is refused while the number is locked.
    right = post_form(browser, "/signin/code", {"phone": PHONE_A, "code": SMS_CODE}, page="/signin")
    assert right.status_code == 429


def test_an_expired_code_is_refused(browser: TestClient, world: World, clock: FakeClock) -> None:
    post_form(browser, "/signin", {"phone": PHONE_A}, page="/signin")
    clock.advance(minutes=11)
    late = post_form(browser, "/signin/code", {"phone": PHONE_A, "code": SMS_CODE}, page="/signin")
    assert late.status_code == 401


def test_a_code_cannot_be_used_twice(browser: TestClient, world: World) -> None:
    devices = Devices(browser)
    assert sign_in_patient(devices("phone"), PHONE_A, SMS_CODE).status_code == 303
    replay = post_form(
        devices("attacker"), "/signin/code", {"phone": PHONE_A, "code": SMS_CODE}, page="/signin"
    )
    assert replay.status_code == 401


def test_sms_sending_is_rate_limited_per_number(browser: TestClient, world: World) -> None:
    statuses = [
        post_form(browser, "/signin", {"phone": "090-4444-5555"}, page="/signin").status_code
        for _ in range(4)
    ]
    assert statuses == [200, 200, 200, 429]


def test_invalid_and_landline_numbers_are_refused_clearly(browser: TestClient) -> None:
    landline = post_form(browser, "/signin", {"phone": "03-1234-5678"}, page="/signin")
    assert landline.status_code == 400
    assert "携帯電話" in landline.text
    garbage = post_form(browser, "/signin", {"phone": "hello"}, page="/signin")
    assert garbage.status_code == 400


def test_family_members_and_editing(browser: TestClient, world: World) -> None:
    sign_in_patient(browser, PHONE_A, SMS_CODE)
    added = post_form(
        browser,
        "/account/family/new",
        {
            **PROFILE,
            "given_name": "四郎",
            "given_name_kana": "しろう",
            "relationship": "child",
            "birth_date": "2015-05-05",
        },
        page="/account/family/new",
        follow_redirects=False,
    )
    assert added.headers["location"] == "/account"
    account = browser.get("/account").text
    assert "見本 四郎" in account
    own = f"/account/patients/{world.patient_a}"
    assert browser.get(own).status_code == 200
    post_form(browser, own, {**PROFILE, "given_name": "一子改"}, page=own)
    assert "見本 一子改" in browser.get("/account").text
    # Another account's record: as if it did not exist.
    assert browser.get(f"/account/patients/{world.patient_b}").status_code == 404
    assert browser.get("/account/patients/not-a-uuid").status_code == 404


def test_patient_sessions_last_a_week_idle(
    browser: TestClient, world: World, clock: FakeClock
) -> None:
    sign_in_patient(browser, PHONE_A, SMS_CODE)
    clock.advance(days=6)
    assert browser.get("/account").status_code == 200
    clock.advance(days=7, minutes=1)
    assert browser.get("/account", follow_redirects=False).headers["location"] == "/signin"


def test_the_api_signs_in_with_tokens_and_refresh_is_single_use(
    browser: TestClient, world: World
) -> None:
    started = browser.post("/api/v1/auth/sms/start", json={"phone": "090-1111-0001"})
    assert started.status_code == 202
    assert started.json() == {"phone": "***0001"}
    tokens = browser.post(
        "/api/v1/auth/sms/verify", json={"phone": "090-1111-0001", "code": SMS_CODE}
    ).json()
    assert tokens["token_type"] == "Bearer"
    assert tokens["needs_profile"] is False
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    me = browser.get("/api/v1/me", headers=bearer).json()
    assert [p["given_name"] for p in me["patients"]] == ["一子"]
    assert browser.get("/api/v1/me").status_code == 401

    renewed = browser.post(
        "/api/v1/auth/token/refresh", json={"refresh_token": tokens["refresh_token"]}
    )
    assert renewed.status_code == 200
    fresh = renewed.json()
    # The same refresh token again: a stolen copy. Every token of that sign-in is revoked.
    replay = browser.post(
        "/api/v1/auth/token/refresh", json={"refresh_token": tokens["refresh_token"]}
    )
    assert replay.status_code == 401
    assert (
        browser.get(
            "/api/v1/me", headers={"Authorization": f"Bearer {fresh['access_token']}"}
        ).status_code
        == 401
    )


def test_access_tokens_expire(browser: TestClient, world: World, clock: FakeClock) -> None:
    browser.post("/api/v1/auth/sms/start", json={"phone": PHONE_A})
    tokens = browser.post(
        "/api/v1/auth/sms/verify", json={"phone": PHONE_A, "code": SMS_CODE}
    ).json()
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    assert browser.get("/api/v1/me", headers=bearer).status_code == 200
    clock.advance(minutes=16)
    assert browser.get("/api/v1/me", headers=bearer).status_code == 401


def test_api_staff_sign_in_needs_the_code_too(
    browser: TestClient, world: World, clock: FakeClock
) -> None:
    import pyotp

    staff = world.doctor_a
    without = browser.post(
        "/api/v1/auth/staff/signin",
        json={"login_id": staff.login_id, "password": staff.password, "code": "000000"},
    )
    assert without.status_code == 401
    ok = browser.post(
        "/api/v1/auth/staff/signin",
        json={
            "login_id": staff.login_id,
            "password": staff.password,
            "code": pyotp.TOTP(staff.totp_secret).at(clock.now),
        },
    )
    assert ok.status_code == 200
    bearer = {"Authorization": f"Bearer {ok.json()['access_token']}"}
    listed = browser.get(f"/api/v1/clinics/{world.clinic_a}/patients", headers=bearer)
    assert listed.status_code == 200
    assert [p["patient"]["id"] for p in listed.json()["patients"]] == [world.patient_a]


def test_an_optional_password_then_signing_in_with_it(browser: TestClient, world: World) -> None:
    devices = Devices(browser)
    phone = devices("phone")
    sign_in_patient(phone, PHONE_A, SMS_CODE)
    weak = post_form(
        phone, "/account/password", {"password": "password123"}, page="/account/password"
    )
    assert weak.status_code == 422
    with_phone = post_form(
        phone, "/account/password", {"password": "my number 11110001 x"}, page="/account/password"
    )
    assert with_phone.status_code == 422
    ok = post_form(
        phone, "/account/password", {"password": "maple river lantern"}, page="/account/password"
    )
    assert ok.status_code == 200
    again = post_form(
        phone, "/account/password", {"password": "maple river lantern"}, page="/account/password"
    )
    assert again.status_code == 422  # a password used before

    laptop = devices("laptop")
    wrong = post_form(
        laptop,
        "/signin/password",
        {"phone": "090-1111-0001", "password": "x" * 12},
        page="/signin/password",
    )
    assert wrong.status_code == 401
    unknown = post_form(
        laptop,
        "/signin/password",
        {"phone": "090-9999-9999", "password": "maple river lantern"},
        page="/signin/password",
    )
    assert unknown.status_code == 401
    assert (
        wrong.text.split("<main")[1].split("csrf")[0]
        == unknown.text.replace("090-9999-9999", "090-1111-0001").split("<main")[1].split("csrf")[0]
    )
    signed_in = post_form(
        laptop,
        "/signin/password",
        {"phone": "090-1111-0001", "password": "maple river lantern"},
        page="/signin/password",
        follow_redirects=False,
    )
    assert signed_in.headers["location"] == "/account"
    devices("app")  # a phone app: no cookies, a bearer token
    tokens = browser.post(
        "/api/v1/auth/password/signin",
        json={"phone": "090-1111-0001", "password": "maple river lantern"},
    )
    assert tokens.status_code == 200
    bearer = {"Authorization": f"Bearer {tokens.json()['access_token']}"}
    assert browser.get("/api/v1/me", headers=bearer).status_code == 200


def test_staff_change_their_password_and_other_sessions_end(
    browser: TestClient, world: World, clock: FakeClock
) -> None:
    from tests.support.web import sign_in_staff

    devices = Devices(browser)
    sign_in_staff(devices("pc1"), world.doctor_a, clock)
    clock.advance(seconds=31)
    sign_in_staff(devices("pc2"), world.doctor_a, clock)
    wrong = post_form(
        devices("pc1"),
        "/staff/password",
        {"current": "not it at all", "password": "amber falcon meadow stone"},
        page="/staff/password",
    )
    assert wrong.status_code == 401
    changed = post_form(
        devices("pc1"),
        "/staff/password",
        {"current": world.doctor_a.password, "password": "amber falcon meadow stone"},
        page="/staff/password",
        follow_redirects=False,
    )
    assert changed.headers["location"] == "/staff"
    assert devices("pc1").get("/staff").status_code == 200
    assert devices("pc2").get("/staff", follow_redirects=False).status_code == 303
    reuse = post_form(
        devices("pc1"),
        "/staff/password",
        {"current": "amber falcon meadow stone", "password": world.doctor_a.password},
        page="/staff/password",
    )
    assert reuse.status_code == 400
