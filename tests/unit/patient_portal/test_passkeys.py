"""The pure parts of passkeys: relying party and origin, challenge binding and storage, names."""

from __future__ import annotations

import unicodedata
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from webauthn.helpers.structs import AuthenticatorTransport

from patient_portal.auth.passkeys import (
    NAME_MAX,
    InMemoryChallengeStore,
    PasskeyError,
    RelyingParty,
    binding_of,
    clean_name,
    descriptor,
    origin_of,
    relying_party,
    transports_of,
    user_handle,
)

NOW = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("url", "origin"),
    [
        ("http://127.0.0.1:8000/", "http://127.0.0.1:8000"),
        ("http://localhost:54321/signin?x=1", "http://localhost:54321"),
        ("https://Clinic.Example.JP/", "https://clinic.example.jp"),
        ("https://clinic.example.jp:443/", "https://clinic.example.jp"),
        ("http://clinic.example.jp:80", "http://clinic.example.jp"),
        ("https://clinic.example.jp:8443", "https://clinic.example.jp:8443"),
        ("http://[::1]:8000/", "http://[::1]:8000"),
    ],
)
def test_origin_of_is_written_as_a_browser_writes_it(url: str, origin: str) -> None:
    assert origin_of(url) == origin


def test_production_trusts_only_the_public_url() -> None:
    rp = relying_party("https://clinic.example.jp", "http://evil.example:8000/", production=True)
    assert rp == RelyingParty(id="clinic.example.jp", origin="https://clinic.example.jp")


def test_elsewhere_the_relying_party_is_the_page_the_browser_is_on() -> None:
    rp = relying_party("http://127.0.0.1:8000", "http://localhost:54321/", production=False)
    assert rp == RelyingParty(id="localhost", origin="http://localhost:54321")


def test_a_challenge_is_bound_to_the_session_else_the_browser() -> None:
    assert binding_of("abc", "cookie") == "session:abc"
    browser = binding_of(None, "cookie")
    assert browser is not None
    assert browser.startswith("browser:")
    assert "cookie" not in browser  # the cookie's value never becomes a store key
    assert binding_of(None, "other") != browser
    assert binding_of(None, None) is None


@pytest.mark.parametrize(
    ("raw", "name"),
    [
        ("  My phone ", "My phone"),
        ("仕事用\x00PC", "仕事用PC"),
        ("a\tb\nc", "abc"),
        ("two   spaces", "two spaces"),
        ("x" * 200, "x" * NAME_MAX),
    ],
)
def test_names_are_tidied(raw: str, name: str) -> None:
    assert clean_name(raw) == name


@pytest.mark.parametrize("raw", ["", "   ", "\x00\x01", "\u200b"])
def test_an_empty_name_is_refused(raw: str) -> None:
    with pytest.raises(PasskeyError) as caught:
        clean_name(raw)
    assert caught.value.status == 400
    assert caught.value.text.en == "Give the passkey a name."


@given(st.text(max_size=300))
def test_a_kept_name_is_short_and_printable(raw: str) -> None:
    try:
        name = clean_name(raw)
    except PasskeyError:
        return
    assert 0 < len(name) <= NAME_MAX
    assert name == name.strip()
    assert all(unicodedata.category(c)[0] != "C" for c in name)


def test_the_user_handle_is_the_principal_uuid_bytes() -> None:
    principal = uuid.uuid4()
    assert user_handle(str(principal)) == principal.bytes


def test_unknown_transports_are_dropped() -> None:
    assert transports_of(["internal", "carrier-pigeon", "usb"]) == [
        AuthenticatorTransport.INTERNAL,
        AuthenticatorTransport.USB,
    ]
    assert descriptor("AAEC", []).transports is None
    assert descriptor("AAEC", ["hybrid"]).id == b"\x00\x01\x02"


async def test_a_challenge_is_taken_once() -> None:
    store = InMemoryChallengeStore()
    await store.put("sign-in:b", b"c1", NOW + timedelta(minutes=5))
    assert await store.take("sign-in:b", NOW) == b"c1"
    assert await store.take("sign-in:b", NOW) is None


async def test_a_new_challenge_replaces_the_last_and_keys_do_not_mix() -> None:
    store = InMemoryChallengeStore()
    await store.put("sign-in:b", b"old", NOW + timedelta(minutes=5))
    await store.put("sign-in:b", b"new", NOW + timedelta(minutes=5))
    assert await store.take("register:b", NOW) is None
    assert await store.take("sign-in:b", NOW) == b"new"


async def test_an_expired_challenge_is_gone() -> None:
    store = InMemoryChallengeStore()
    await store.put("k", b"c", NOW + timedelta(minutes=5))
    assert await store.take("k", NOW + timedelta(minutes=5)) is None
    assert len(store) == 0


async def test_the_store_keeps_at_most_its_limit_dropping_the_oldest() -> None:
    store = InMemoryChallengeStore(max_entries=3)
    for n in range(5):
        await store.put(f"k{n}", bytes([n]), NOW + timedelta(minutes=5))
    assert len(store) == 3
    assert await store.take("k0", NOW) is None
    assert await store.take("k4", NOW) == b"\x04"
