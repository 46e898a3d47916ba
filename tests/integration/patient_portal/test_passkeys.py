"""Passkeys through the whole app, answered by a software authenticator that speaks WebAuthn's
wire format (CBOR, COSE keys, ES256 signatures) and is checked by the real py_webauthn."""

from __future__ import annotations

import hashlib
import json
import os
import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import cbor2
import pytest
import redis.asyncio as aioredis
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from starlette.testclient import TestClient
from webauthn.helpers import base64url_to_bytes, bytes_to_base64url

from patient_portal.audit.models import AuditEntry
from patient_portal.auth.models import PasskeyCredential
from patient_portal.auth.passkeys import RedisChallengeStore
from tests.integration.patient_portal.conftest import SMS_CODE, World
from tests.support.clock import FakeClock
from tests.support.web import Devices, post_form, sign_in_patient, sign_in_staff

ORIGIN = "http://127.0.0.1"  # the TestClient's base URL: not production, so the page's origin
RP_ID = "127.0.0.1"
UP, UV, AT = 0x01, 0x04, 0x40
META = re.compile(r'<meta name="csrf-token" content="([0-9a-f]+)">')


class SoftAuthenticator:
    """One resident ES256 credential, answering like a platform authenticator."""

    def __init__(self, rp_id: str = RP_ID) -> None:
        self.rp_id = rp_id
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.credential_id = os.urandom(16)
        self.sign_count = 0
        self.user_handle: str | None = None

    def _cose_key(self) -> bytes:
        numbers = self.key.public_key().public_numbers()
        return cbor2.dumps(
            {
                1: 2,
                3: -7,
                -1: 1,
                -2: numbers.x.to_bytes(32, "big"),
                -3: numbers.y.to_bytes(32, "big"),
            }
        )

    def _auth_data(self, flags: int, attested: bool) -> bytes:
        data = hashlib.sha256(self.rp_id.encode()).digest() + bytes([flags])
        data += self.sign_count.to_bytes(4, "big")
        if attested:
            data += bytes(16) + len(self.credential_id).to_bytes(2, "big") + self.credential_id
            data += self._cose_key()
        return data

    @staticmethod
    def _client_data(kind: str, challenge: str, origin: str) -> bytes:
        return json.dumps(
            {"type": kind, "challenge": challenge, "origin": origin, "crossOrigin": False}
        ).encode()

    def create(self, options: dict[str, Any], origin: str = ORIGIN) -> dict[str, Any]:
        self.user_handle = options["user"]["id"]
        client_data = self._client_data("webauthn.create", options["challenge"], origin)
        attestation = cbor2.dumps(
            {"fmt": "none", "attStmt": {}, "authData": self._auth_data(UP | UV | AT, True)}
        )
        credential_id = bytes_to_base64url(self.credential_id)
        return {
            "id": credential_id,
            "rawId": credential_id,
            "type": "public-key",
            "clientExtensionResults": {},
            "response": {
                "clientDataJSON": bytes_to_base64url(client_data),
                "attestationObject": bytes_to_base64url(attestation),
                "transports": ["internal"],
            },
        }

    def get(
        self,
        options: dict[str, Any],
        origin: str = ORIGIN,
        *,
        key: ec.EllipticCurvePrivateKey | None = None,
        advance: int = 1,
    ) -> dict[str, Any]:
        self.sign_count += advance
        client_data = self._client_data("webauthn.get", options["challenge"], origin)
        auth_data = self._auth_data(UP | UV, False)
        signed = auth_data + hashlib.sha256(client_data).digest()
        signature = (key or self.key).sign(signed, ec.ECDSA(hashes.SHA256()))
        credential_id = bytes_to_base64url(self.credential_id)
        return {
            "id": credential_id,
            "rawId": credential_id,
            "type": "public-key",
            "clientExtensionResults": {},
            "response": {
                "clientDataJSON": bytes_to_base64url(client_data),
                "authenticatorData": bytes_to_base64url(auth_data),
                "signature": bytes_to_base64url(signature),
                "userHandle": self.user_handle,
            },
        }


def meta_token(client: TestClient, path: str) -> str:
    match = META.search(client.get(path).text)
    assert match, f"no CSRF meta tag on {path}"
    return match.group(1)


def post_json(client: TestClient, path: str, body: dict[str, Any], token: str) -> Any:
    return client.post(path, json=body, headers={"X-CSRF-Token": token})


def audit_entries(client: TestClient, action: str) -> list[tuple[str, str, dict[str, object]]]:
    async def query() -> list[tuple[str, str, dict[str, object]]]:
        rows = await AuditEntry.filter(action=action).order_by("seq")
        return [(row.outcome.value, row.actor_kind, dict(row.detail)) for row in rows]

    return client.portal.call(query)  # type: ignore[union-attr]


def register(
    client: TestClient, page: str, authenticator: SoftAuthenticator, name: str = "Pixel 8"
) -> Any:
    token = meta_token(client, page)
    options = post_json(client, "/passkeys/register/options", {}, token)
    assert options.status_code == 200, options.text
    assert options.headers["cache-control"] == "no-store"
    answer = authenticator.create(options.json())
    return post_json(client, "/passkeys/register", {"name": name, "credential": answer}, token)


def passkey_sign_in(
    client: TestClient, authenticator: SoftAuthenticator, **get: Any
) -> tuple[Any, dict[str, Any]]:
    token = meta_token(client, "/signin")
    options = post_json(client, "/passkeys/signin/options", {}, token)
    assert options.status_code == 200, options.text
    answer = authenticator.get(options.json(), **get)
    return post_json(client, "/passkeys/signin", {"credential": answer}, token), answer


def signed_in_patient(browser: TestClient, authenticator: SoftAuthenticator) -> None:
    sign_in_patient(browser, "090-1111-0001", SMS_CODE)
    added = register(browser, "/account/passkeys", authenticator)
    assert added.status_code == 200, added.text
    assert added.json() == {"redirect": "/account/passkeys"}


def sign_out(client: TestClient, path: str = "/signout", page: str = "/account") -> None:
    post_form(client, path, {}, page=page, follow_redirects=False)


def test_a_patient_adds_a_passkey_then_signs_in_with_it_alone(
    browser: TestClient, world: World
) -> None:
    authenticator = SoftAuthenticator()
    signed_in_patient(browser, authenticator)
    listing = browser.get("/account/passkeys").text
    assert "Pixel 8" in listing
    assert browser.get("/account").text.count('href="/account/passkeys"') == 1
    sign_out(browser)
    assert browser.get("/account", follow_redirects=False).status_code == 303

    signed_in, _ = passkey_sign_in(browser, authenticator)
    assert signed_in.status_code == 200, signed_in.text
    assert signed_in.json() == {"redirect": "/account"}
    cookie = signed_in.headers["set-cookie"]
    assert "HttpOnly" in cookie
    assert "samesite=lax" in cookie.lower()
    assert "見本 一子" in browser.get("/account").text
    assert audit_entries(browser, "auth.sign_in")[-1] == (
        "success",
        "patient",
        {"method": "passkey"},
    )
    assert audit_entries(browser, "auth.passkey_added")[-1][:2] == ("success", "patient")


def test_the_registration_options_ask_for_a_resident_key_and_exclude_known_ones(
    browser: TestClient, world: World
) -> None:
    authenticator = SoftAuthenticator()
    signed_in_patient(browser, authenticator)
    options = post_json(
        browser, "/passkeys/register/options", {}, meta_token(browser, "/account/passkeys")
    ).json()
    assert options["rp"] == {"name": "Tsunagu", "id": RP_ID}
    assert options["authenticatorSelection"]["residentKey"] == "required"
    assert [c["id"] for c in options["excludeCredentials"]] == [
        bytes_to_base64url(authenticator.credential_id)
    ]
    assert "090" not in json.dumps(options)  # the account is labelled by a masked number
    # The same authenticator again is refused (its id is already stored).
    again = post_json(
        browser,
        "/passkeys/register",
        {"name": "Again", "credential": authenticator.create(options)},
        meta_token(browser, "/account/passkeys"),
    )
    assert again.status_code == 400
    assert again.headers["content-type"] == "application/problem+json"
    assert again.json()["detail"] == "このパスキーはすでに登録されています"


def test_options_need_a_session_and_every_post_needs_the_csrf_header(
    browser: TestClient, world: World
) -> None:
    token = meta_token(browser, "/signin")
    refused = post_json(browser, "/passkeys/register/options", {}, token)
    assert refused.status_code == 401
    assert refused.headers["content-type"] == "application/problem+json"
    assert post_json(browser, "/passkeys/register", {}, token).status_code == 401
    assert post_json(browser, "/passkeys/second-factor/options", {}, token).status_code == 401
    assert post_json(browser, "/passkeys/second-factor", {}, token).status_code == 401
    assert browser.post("/passkeys/signin/options", json={}).status_code == 403
    assert (
        browser.post("/passkeys/signin/options", json={}, headers={"X-CSRF-Token": "0"}).status_code
        == 403
    )
    # The management pages send visitors who are not signed in to sign in.
    for page in ("/account/passkeys", "/staff/passkeys"):
        assert browser.get(page, follow_redirects=False).status_code == 303


def test_a_forged_or_mismatched_answer_is_refused_and_audited(
    browser: TestClient, world: World
) -> None:
    authenticator = SoftAuthenticator()
    signed_in_patient(browser, authenticator)
    sign_out(browser)

    other_key = ec.generate_private_key(ec.SECP256R1())
    forged, _ = passkey_sign_in(browser, authenticator, key=other_key)
    assert forged.status_code == 401
    assert "パスキーを確認できませんでした" in forged.json()["detail"]
    phished, _ = passkey_sign_in(browser, authenticator, origin="http://evil.example")
    assert phished.status_code == 401
    unknown, _ = passkey_sign_in(browser, SoftAuthenticator())
    assert unknown.status_code == 401
    garbage = post_json(
        browser, "/passkeys/signin", {"credential": "nonsense"}, meta_token(browser, "/signin")
    )
    assert garbage.status_code == 401
    assert "set-cookie" not in forged.headers
    assert browser.get("/account", follow_redirects=False).status_code == 303

    failures = [e for e in audit_entries(browser, "auth.sign_in") if e[0] == "failure"]
    assert failures == [("failure", "anonymous", {"method": "passkey"})] * 4


def test_a_replayed_or_late_answer_is_refused(
    browser: TestClient, world: World, clock: FakeClock
) -> None:
    authenticator = SoftAuthenticator()
    signed_in_patient(browser, authenticator)
    sign_out(browser)

    first, answer = passkey_sign_in(browser, authenticator)
    assert first.status_code == 200
    sign_out(browser)
    token = meta_token(browser, "/signin")
    replayed = post_json(browser, "/passkeys/signin", {"credential": answer}, token)
    assert replayed.status_code == 401
    assert "すでに使われた" in replayed.json()["detail"]
    # A counter that did not move (a cloned authenticator) is refused.
    cloned, _ = passkey_sign_in(browser, authenticator, advance=0)
    assert cloned.status_code == 401

    options = post_json(browser, "/passkeys/signin/options", {}, token).json()
    clock.advance(minutes=6)
    late = post_json(browser, "/passkeys/signin", {"credential": authenticator.get(options)}, token)
    assert late.status_code == 401
    # A challenge from one browser cannot be answered from another.
    devices = Devices(browser)
    attacker = devices("attacker")
    options = post_json(
        attacker, "/passkeys/signin/options", {}, meta_token(attacker, "/signin")
    ).json()
    victim = devices("victim")
    stolen = post_json(
        victim,
        "/passkeys/signin",
        {"credential": authenticator.get(options)},
        meta_token(victim, "/signin"),
    )
    assert stolen.status_code == 401


def test_a_patient_removes_a_passkey_and_nobody_else_can(browser: TestClient, world: World) -> None:
    authenticator = SoftAuthenticator()
    devices = Devices(browser)
    owner = devices("owner")
    signed_in_patient(owner, authenticator)
    found = re.search(r"/account/passkeys/([0-9a-f-]+)/remove", owner.get("/account/passkeys").text)
    assert found
    path = f"/account/passkeys/{found.group(1)}/remove"

    stranger = devices("stranger")
    sign_in_patient(stranger, "090-1111-0002", SMS_CODE)
    refused = post_form(stranger, path, {}, page="/account/passkeys", follow_redirects=False)
    assert refused.status_code == 404
    owner = devices("owner")
    assert "Pixel 8" in owner.get("/account/passkeys").text

    removed = post_form(owner, path, {}, page="/account/passkeys", follow_redirects=False)
    assert removed.headers["location"] == "/account/passkeys"
    assert "Pixel 8" not in owner.get("/account/passkeys").text
    assert audit_entries(owner, "auth.passkey_removed") == [("success", "patient", {})]
    sign_out(owner)
    gone, _ = passkey_sign_in(owner, authenticator)
    assert gone.status_code == 401


def test_staff_add_a_passkey_and_use_it_as_the_second_factor(
    browser: TestClient, world: World, clock: FakeClock
) -> None:
    authenticator = SoftAuthenticator()
    done = sign_in_staff(browser, world.doctor_a, clock)
    assert done.headers["location"] == "/staff"
    assert 'href="/staff/passkeys"' in browser.get("/staff").text
    added = register(browser, "/staff/passkeys", authenticator, name="Reception PC")
    assert added.json() == {"redirect": "/staff/passkeys"}
    assert "Reception PC" in browser.get("/staff/passkeys").text
    sign_out(browser, "/staff/signout", "/staff")

    first = post_form(
        browser,
        "/staff/signin",
        {"login_id": world.doctor_a.login_id, "password": world.doctor_a.password},
        page="/staff/signin",
        follow_redirects=False,
    )
    pending_cookie = first.cookies["tsunagu_session"]
    token = meta_token(browser, "/staff/signin/code")
    options = post_json(browser, "/passkeys/second-factor/options", {}, token)
    assert options.status_code == 200, options.text
    assert [c["id"] for c in options.json()["allowCredentials"]] == [
        bytes_to_base64url(authenticator.credential_id)
    ]
    finished = post_json(
        browser,
        "/passkeys/second-factor",
        {"credential": authenticator.get(options.json())},
        token,
    )
    assert finished.status_code == 200, finished.text
    assert finished.json() == {"redirect": "/staff"}
    assert finished.cookies["tsunagu_session"] != pending_cookie
    assert browser.get("/staff").status_code == 200
    assert audit_entries(browser, "auth.sign_in")[-1] == ("success", "staff", {"method": "passkey"})


def test_staff_without_passkeys_or_with_anothers_are_refused(
    browser: TestClient, world: World, clock: FakeClock
) -> None:
    devices = Devices(browser)
    admin = devices("admin")
    sign_in_staff(admin, world.admin_a, clock)
    theirs = SoftAuthenticator()
    assert register(admin, "/staff/passkeys", theirs).status_code == 200

    doctor = devices("doctor")
    post_form(
        doctor,
        "/staff/signin",
        {"login_id": world.doctor_a.login_id, "password": world.doctor_a.password},
        page="/staff/signin",
        follow_redirects=False,
    )
    token = meta_token(doctor, "/staff/signin/code")
    none = post_json(doctor, "/passkeys/second-factor/options", {}, token)
    assert none.status_code == 400
    assert "登録されたパスキーがありません" in none.json()["detail"]
    # The doctor answers with the admin's passkey: refused, audited, still half signed in.
    sign_in_staff(devices("doctor-2"), world.doctor_a, clock)
    assert register(devices("doctor-2"), "/staff/passkeys", SoftAuthenticator()).status_code == 200
    options = post_json(devices("doctor"), "/passkeys/second-factor/options", {}, token).json()
    stolen = post_json(
        devices("doctor"), "/passkeys/second-factor", {"credential": theirs.get(options)}, token
    )
    assert stolen.status_code == 401
    assert devices("doctor").get("/staff", follow_redirects=False).status_code == 303
    failures = [e for e in audit_entries(browser, "auth.sign_in") if e[0] == "failure"]
    assert failures[-1] == ("failure", "staff", {"step": "passkey"})


def test_staff_passkeys_do_not_sign_in_a_patient(
    browser: TestClient, world: World, clock: FakeClock
) -> None:
    authenticator = SoftAuthenticator()
    sign_in_staff(browser, world.doctor_a, clock)
    assert register(browser, "/staff/passkeys", authenticator).status_code == 200
    sign_out(browser, "/staff/signout", "/staff")
    refused, _ = passkey_sign_in(browser, authenticator)
    assert refused.status_code == 401


@pytest.mark.parametrize("body", [b"[]", b"{not json", b"x" * 70_000])
def test_malformed_bodies_are_refused_as_problems(
    browser: TestClient, world: World, body: bytes
) -> None:
    response = browser.post(
        "/passkeys/signin",
        content=body,
        headers={
            "X-CSRF-Token": meta_token(browser, "/signin"),
            "Content-Type": "application/json",
        },
    )
    assert response.status_code in (400, 413)
    assert response.headers["content-type"] == "application/problem+json"


def test_stored_credentials_keep_keys_and_counters_not_secrets(
    browser: TestClient, world: World
) -> None:
    authenticator = SoftAuthenticator()
    signed_in_patient(browser, authenticator)
    sign_out(browser)
    passkey_sign_in(browser, authenticator)

    async def stored() -> PasskeyCredential:
        return await PasskeyCredential.get()

    row = browser.portal.call(stored)  # type: ignore[union-attr]
    assert base64url_to_bytes(row.credential_id) == authenticator.credential_id
    assert row.sign_count == 1
    assert row.transports == ["internal"]
    assert row.last_used_at is not None


@pytest.mark.redis
async def test_the_redis_store_gives_a_challenge_once_and_not_after_it_expires(
    redis_url: str,
) -> None:
    client = aioredis.Redis.from_url(redis_url)
    store = RedisChallengeStore(client, prefix=f"t:{uuid.uuid4().hex}:")
    now = datetime(2030, 4, 1, 9, 0, tzinfo=UTC)
    try:
        await store.put("sign-in:b", b"\x00challenge", now + timedelta(minutes=5))
        assert await store.take("sign-in:b", now) == b"\x00challenge"
        assert await store.take("sign-in:b", now) is None
        await store.put("sign-in:b", b"late", now + timedelta(minutes=5))
        assert await store.take("sign-in:b", now + timedelta(minutes=6)) is None
    finally:
        await client.aclose()


def test_passkey_sign_in_is_rate_limited_per_address(browser: TestClient, world: World) -> None:
    token = meta_token(browser, "/signin")
    stranger = SoftAuthenticator()
    statuses = []
    for _ in range(31):
        options = post_json(browser, "/passkeys/signin/options", {}, token).json()
        answer = stranger.get(options)
        statuses.append(post_json(browser, "/passkeys/signin", {"credential": answer}, token))
    assert {r.status_code for r in statuses[:30]} == {401}
    limited = statuses[30]
    assert limited.status_code == 429
    assert int(limited.headers["retry-after"]) > 0
    assert limited.headers["content-type"] == "application/problem+json"
