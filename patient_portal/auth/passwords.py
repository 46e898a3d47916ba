"""Passwords: argon2id hashes and the rules a new password must pass.

Cost, chosen to take a deliberate time: argon2id with ``time_cost=3``, ``memory_cost=64 MiB``,
``parallelism=1`` (the second recommendation of RFC 9106 §4, with one lane because a web server
verifies many passwords at once rather than one fast). Measured on the development machine (2 vCPU
AMD EPYC, argon2-cffi 25.1): about **140 ms** per hash or verification (median of 7; 138 ms at
best). The bench measures it again; raise the cost when hardware gets faster — ``needs_rehash``
then upgrades each hash at its owner's next sign-in.

Each computation holds 64 MiB, so at most :data:`MAX_CONCURRENT_HASHES` run at the same time;
more wait their turn instead of exhausting memory under a password-guessing flood. The work
blocks its thread: async code calls :func:`hash_password_async` / :func:`verify_password_async`
(or ``asyncio.to_thread``), never the plain functions, on the event loop.

Passwords are NFKC-normalised before hashing, so the same password typed with full-width or
half-width characters (a Japanese IME setting) is the same password.

The policy follows NIST SP 800-63B rather than composition rules: length first (staff
:data:`STAFF_MIN_LENGTH`, patients :data:`PATIENT_MIN_LENGTH`), a maximum long enough for
passphrases, no forced periodic change (MHLW guideline 6.0 Q&A allows this for long passwords),
and refusal of guessable passwords. The common/breached-password list shipped with the product is
zxcvbn's frequency dictionaries (its ``passwords`` list is the top of leaked-password corpora),
with its estimator refusing anything scoring below 3 of 4.
"""

from __future__ import annotations

import asyncio
import os
import re
import threading
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError
from zxcvbn import zxcvbn  # type: ignore[import-untyped]

from patient_portal.problems import Text

STAFF_MIN_LENGTH: Final = 12
PATIENT_MIN_LENGTH: Final = 10
MAX_LENGTH: Final = 128
MIN_ZXCVBN_SCORE: Final = 3
# A phone number is "in" a password when its last eight digits are (this covers 090-1234-5678,
# 09012345678, 9012345678 and 12345678, but not an incidental year such as 2024).
PHONE_DIGITS: Final = 8
MAX_CONCURRENT_HASHES: Final = max(2, os.cpu_count() or 2)

HASHER: Final = PasswordHasher(
    time_cost=3, memory_cost=64 * 1024, parallelism=1, hash_len=32, salt_len=16, type=Type.ID
)
_slots = threading.BoundedSemaphore(MAX_CONCURRENT_HASHES)
# Verified in place of a missing account's hash, so that an unknown login ID takes as long as a
# known one. Made with today's parameters from a random password nobody kept.
DUMMY_HASH: Final = (
    "$argon2id$v=19$m=65536,t=3,p=1$boSqeMWbssIyIczs2xaslQ"
    "$Ns9pECwh6c3MXreXKq2OI6XghkusVepcEbZkof2Ykf8"
)


def _normalise(password: str) -> str:
    return unicodedata.normalize("NFKC", password)


def hash_password(password: str) -> str:
    """The argon2id hash (PHC string, about 100 characters) of ``password``. Blocks ~140 ms."""
    with _slots:
        return HASHER.hash(_normalise(password))


def verify_password(password_hash: str | None, password: str) -> bool:
    """Whether ``password`` matches ``password_hash``; a malformed hash is simply no match.

    Pass ``None`` for an account that does not exist or has no password: a dummy hash is verified
    instead, so the answer takes as long as for a real account (no account enumeration by timing),
    and is always false.
    """
    stored = password_hash or DUMMY_HASH
    with _slots:
        try:
            matched = HASHER.verify(stored, _normalise(password))
        except (VerificationError, InvalidHashError):
            return False
    return matched and password_hash is not None


def needs_rehash(password_hash: str) -> bool:
    """Whether the hash was made with other parameters than today's (rehash after sign-in)."""
    try:
        return HASHER.check_needs_rehash(password_hash)
    except InvalidHashError:
        return True


async def hash_password_async(password: str) -> str:
    """:func:`hash_password` in a worker thread, so the event loop keeps serving."""
    return await asyncio.to_thread(hash_password, password)


async def verify_password_async(password_hash: str | None, password: str) -> bool:
    """:func:`verify_password` in a worker thread, so the event loop keeps serving."""
    return await asyncio.to_thread(verify_password, password_hash, password)


def is_reused(password: str, previous_hashes: Iterable[str]) -> bool:
    """Whether ``password`` is one the account had before. Costs one verification per hash."""
    return any(verify_password(old, password) for old in previous_hashes)


@dataclass(frozen=True, slots=True)
class PolicyProblem:
    """Why a new password is refused. ``code`` is stable (API clients and tests match on it)."""

    code: str
    message: Text


def _too_short(min_length: int) -> PolicyProblem:
    return PolicyProblem(
        "password-too-short",
        Text(
            f"パスワードは{min_length}文字以上にしてください",
            f"Use at least {min_length} characters",
        ),
    )


TOO_LONG: Final = PolicyProblem(
    "password-too-long",
    Text(
        f"パスワードは{MAX_LENGTH}文字以内にしてください",
        f"Use at most {MAX_LENGTH} characters",
    ),
)
COMMON: Final = PolicyProblem(
    "password-common",
    Text(
        "よく使われているパスワードです。別のパスワードにしてください",
        "This is a commonly used password; choose another",
    ),
)
GUESSABLE: Final = PolicyProblem(
    "password-guessable",
    Text(
        "推測されやすいパスワードです。単語をいくつか組み合わせるなど、長く予測しにくいものにしてください",
        "This password is easy to guess; a few unrelated words make a strong one",
    ),
)
CONTAINS_PHONE: Final = PolicyProblem(
    "password-contains-phone",
    Text(
        "パスワードに電話番号を含めないでください",
        "Do not use your phone number in your password",
    ),
)
CONTAINS_PERSONAL: Final = PolicyProblem(
    "password-contains-personal",
    Text(
        "パスワードに氏名やログインIDを含めないでください",
        "Do not use your name or login ID in your password",
    ),
)

_SEPARATORS = re.compile(r"[\s\W_]+")
_PHONE_LIKE = re.compile(r"^\+?[\d\s()\-.]+$")


def check_policy(password: str, *, min_length: int, personal: Sequence[str]) -> list[PolicyProblem]:
    """Every reason to refuse ``password`` as a new password; empty when it is acceptable.

    ``personal`` holds what an attacker would try first: the account's phone number(s), names
    (kanji and kana) and login ID. Length counts characters (code points) after NFKC, so
    Japanese passphrases are measured fairly.
    """
    text = _normalise(password)
    if len(text) > MAX_LENGTH:
        return [TOO_LONG]  # the other checks are not worth running on such input
    problems: list[PolicyProblem] = []
    if len(text) < min_length:
        problems.append(_too_short(min_length))
    phones = [p for p in (_normalise(item) for item in personal) if _is_phone(p)]
    names = [p for p in (_normalise(item) for item in personal) if p and not _is_phone(p)]
    if any(_contains_phone(text, phone) for phone in phones):
        problems.append(CONTAINS_PHONE)
    if any(_contains_name(text, name) for name in names):
        problems.append(CONTAINS_PERSONAL)
    if text:
        problems.extend(_guessability(text, names))
    return problems


def _guessability(text: str, names: Sequence[str]) -> list[PolicyProblem]:
    result = zxcvbn(text, user_inputs=list(names), max_length=MAX_LENGTH)
    # Any word of the ``passwords`` list is a weakness, but it only makes the password "common"
    # when it is most of it: passphrases legitimately contain words such as "dragon" or "monkey".
    common = any(
        match["pattern"] == "dictionary"
        and match.get("dictionary_name") == "passwords"
        and 2 * len(match["token"]) >= len(text)
        for match in result["sequence"]
    )
    if common:
        return [COMMON]
    if int(result["score"]) < MIN_ZXCVBN_SCORE:
        return [GUESSABLE]
    return []


def _is_phone(item: str) -> bool:
    return bool(_PHONE_LIKE.match(item)) and sum(c.isdigit() for c in item) >= PHONE_DIGITS


def _digits(text: str) -> str:
    return "".join(c for c in text if c.isdecimal() and c.isascii())


def _contains_phone(text: str, phone: str) -> bool:
    # Separators are ignored on both sides: "abc-1234-5678" hides 12345678 as well.
    return _digits(phone)[-PHONE_DIGITS:] in _digits(text)


def _fold(text: str) -> str:
    """Case-fold and map katakana to hiragana, so ヤマダ, やまだ and YAMADA/yamada compare."""
    folded = text.casefold()
    return "".join(chr(ord(c) - 0x60) if "\u30a1" <= c <= "\u30f6" else c for c in folded)


def _name_parts(name: str) -> set[str]:
    """The pieces of a name or login ID worth refusing: the whole and each part long enough to
    matter (three letters in Latin script; two characters in kanji/kana, where names are short)."""
    folded = _fold(name.split("@", 1)[0])  # a login ID's mail domain is not personal
    parts = {p for p in _SEPARATORS.split(folded) if p}
    parts.add(_SEPARATORS.sub("", folded))
    return {p for p in parts if len(p) >= (3 if p.isascii() else 2)}


def _contains_name(text: str, name: str) -> bool:
    folded = _fold(text)
    compact = _SEPARATORS.sub("", folded)
    return any(part in folded or part in compact for part in _name_parts(name))
