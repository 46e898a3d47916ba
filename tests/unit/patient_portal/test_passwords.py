"""Passwords: argon2id hashing, verification, rehash, reuse, and the policy for new passwords."""

from __future__ import annotations

import asyncio

import pytest
from argon2 import PasswordHasher, Type
from hypothesis import given, settings
from hypothesis import strategies as st

from patient_portal.auth.passwords import (
    DUMMY_HASH,
    HASHER,
    MAX_LENGTH,
    PATIENT_MIN_LENGTH,
    STAFF_MIN_LENGTH,
    check_policy,
    hash_password,
    hash_password_async,
    is_reused,
    needs_rehash,
    verify_password,
    verify_password_async,
)

GOOD = "purple dragon eats seventeen mangoes"
STAFF = ["+819012345678", "山田 花子", "ヤマダ ハナコ", "yamada.hanako@clinic.example"]


def codes(
    password: str, *, min_length: int = STAFF_MIN_LENGTH, personal: list[str] | None = None
) -> list[str]:
    return [p.code for p in check_policy(password, min_length=min_length, personal=personal or [])]


def test_hash_is_argon2id_with_the_documented_parameters() -> None:
    hashed = hash_password(GOOD)
    assert hashed.startswith("$argon2id$v=19$m=65536,t=3,p=1$")
    assert hash_password(GOOD) != hashed  # salted
    assert not needs_rehash(hashed)


def test_verify_accepts_the_password_and_nothing_else() -> None:
    hashed = hash_password(GOOD)
    assert verify_password(hashed, GOOD)
    assert not verify_password(hashed, GOOD + " ")
    assert not verify_password(hashed, GOOD.upper())
    assert not verify_password(hashed, "")


def test_full_width_and_half_width_are_the_same_password() -> None:
    hashed = hash_password("ｔｓｕｎａｇｕ－ｃｌｉｎｉｃ２０３１")
    assert verify_password(hashed, "tsunagu-clinic2031")


@pytest.mark.parametrize(
    "stored", ["", "not a hash", "$argon2id$v=19$m=65536,t=3,p=1$broken", "$2b$12$abc"]
)
def test_a_malformed_hash_is_no_match(stored: str) -> None:
    assert not verify_password(stored, GOOD)


def test_a_missing_account_takes_a_real_verification_and_fails() -> None:
    assert not verify_password(None, GOOD)
    assert DUMMY_HASH.startswith("$argon2id$v=19$m=65536,t=3,p=1$")
    assert not needs_rehash(DUMMY_HASH)


def test_needs_rehash_when_the_parameters_change() -> None:
    weaker = PasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1, type=Type.ID)
    old = weaker.hash(GOOD)
    assert needs_rehash(old)
    assert verify_password(old, GOOD)  # still verifies, so the owner can sign in and be upgraded
    assert needs_rehash("garbage")
    assert not needs_rehash(HASHER.hash(GOOD))


async def test_async_variants_run_off_the_event_loop() -> None:
    hashed = await hash_password_async(GOOD)
    results = await asyncio.gather(
        verify_password_async(hashed, GOOD), verify_password_async(hashed, "wrong password")
    )
    assert list(results) == [True, False]


def test_reuse_of_any_previous_password_is_detected() -> None:
    history = [hash_password("first passphrase of the year"), hash_password(GOOD)]
    assert is_reused(GOOD, history)
    assert is_reused("first passphrase of the year", history)
    assert not is_reused("an entirely new passphrase here", history)
    assert not is_reused(GOOD, [])


@pytest.mark.parametrize(
    ("password", "expected"),
    [
        (GOOD, []),
        ("correct horse battery staple", []),
        ("sunshine tokyo clinic 2031", []),
        ("やまぶき色の傘と青い自転車", []),
        ("short", ["password-too-short", "password-guessable"]),
        ("password1234", ["password-common"]),
        ("Password123!", ["password-common"]),
        ("P@ssw0rd12345", ["password-common"]),
        ("iloveyou2020!!", ["password-common"]),
        ("qwertyuiop12", ["password-common"]),
        ("abc123abc123", ["password-guessable"]),
        ("aaaaaaaaaaaaaaaa", ["password-guessable"]),
        ("x" * (MAX_LENGTH + 1), ["password-too-long"]),
    ],
)
def test_policy(password: str, expected: list[str]) -> None:
    assert codes(password) == expected


def test_length_limits_are_inclusive() -> None:
    assert "password-too-short" not in codes("ka7#Rm2!qZ9w", min_length=STAFF_MIN_LENGTH)
    assert "password-too-short" in codes("ka7#Rm2!qZ9", min_length=STAFF_MIN_LENGTH)
    assert "password-too-short" not in codes("k7#Rm2!qZ9", min_length=PATIENT_MIN_LENGTH)
    assert codes("v" + GOOD.replace(" ", "-") * 3 + "x" * (MAX_LENGTH - 109)) == []
    assert len("v" + GOOD.replace(" ", "-") * 3 + "x" * (MAX_LENGTH - 109)) == MAX_LENGTH


def test_length_counts_characters_not_bytes() -> None:
    # Twelve kanji/kana are twelve characters (36 bytes in UTF-8).
    assert "password-too-short" not in codes("山田花子は青い自転車で行く")
    assert "password-too-short" in codes("青い自転車で行く")


@pytest.mark.parametrize(
    "password",
    [
        "wind 09012345678 river",
        "wind 090-1234-5678 river",
        "wind 9012345678 river",
        "river12345678wind",
        "wind１２３４５６７８river",
    ],
)
def test_refuses_the_phone_number(password: str) -> None:
    assert "password-contains-phone" in codes(password, personal=STAFF)


def test_a_few_digits_of_the_phone_are_fine() -> None:
    assert "password-contains-phone" not in codes("blue kite 5678 over the bay", personal=STAFF)
    assert "password-contains-phone" not in codes("blue kite 2024 over the bay", personal=STAFF)


@pytest.mark.parametrize(
    "password",
    [
        "yamada loves blue kites",
        "blue kites for HANAKO!",
        "山田の青い自転車と凧",
        "やまだの青い自転車と凧",  # hiragana against the katakana name
        "はなこの青い自転車と凧",
        "ハナコの青い自転車と凧",
        "ＹＡＭＡＤＡ loves kites",  # full-width
    ],
)
def test_refuses_the_name_or_login_id(password: str) -> None:
    assert "password-contains-personal" in codes(password, personal=STAFF)


def test_the_login_ids_mail_domain_is_not_personal() -> None:
    assert "password-contains-personal" not in codes(
        "the clinic garden in example spring", personal=STAFF
    )


def test_problems_carry_bilingual_messages() -> None:
    (problem,) = check_policy("x" * 200, min_length=12, personal=[])
    assert problem.message.ja
    assert problem.message.en
    (short, *_) = check_policy("a", min_length=12, personal=[])
    assert "12" in short.message.ja
    assert "12" in short.message.en


@settings(max_examples=60, deadline=None)
@given(st.text(max_size=140), st.lists(st.text(max_size=30), max_size=4))
def test_policy_never_raises(password: str, personal: list[str]) -> None:
    problems = check_policy(password, min_length=STAFF_MIN_LENGTH, personal=personal)
    assert all(p.code.startswith("password-") for p in problems)
