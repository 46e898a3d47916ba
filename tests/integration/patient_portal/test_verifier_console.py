"""The console verifier against a real database: right, wrong, expired, replayed, exhausted."""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from patient_portal.auth.models import OtpChallenge
from patient_portal.auth.verifier import ConsoleVerifier, TooManyAttempts
from patient_portal.crypto.keyring import current_keyring
from patient_portal.settings import Settings

START = datetime(2030, 4, 1, 9, 0, tzinfo=UTC)
PHONE = "+819012345678"
OTHER = "+818098765432"
CODE_LINE = re.compile(r"^SMS code for \*\*\*(\d{4}): (\d+)$")


@dataclass
class Clock:
    now: datetime = START

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def verifier(db: Settings, clock: Clock) -> ConsoleVerifier:
    return ConsoleVerifier(clock)


async def send(verifier: ConsoleVerifier, caplog: pytest.LogCaptureFixture, phone: str) -> str:
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="patient_portal.auth.verifier"):
        await verifier.start(phone, locale="ja")
    (record,) = [r for r in caplog.records if r.name == "patient_portal.auth.verifier"]
    assert record.levelno == logging.WARNING
    match = CODE_LINE.match(record.getMessage())
    assert match is not None, record.getMessage()
    assert match.group(1) == phone[-4:]
    return match.group(2)


async def test_the_right_code_signs_in_once(
    verifier: ConsoleVerifier, caplog: pytest.LogCaptureFixture
) -> None:
    code = await send(verifier, caplog, PHONE)
    assert len(code) == 6
    assert await verifier.check(PHONE, code)
    assert not await verifier.check(PHONE, code)  # replayed


async def test_the_log_and_the_database_never_hold_the_number_or_the_code(
    verifier: ConsoleVerifier, caplog: pytest.LogCaptureFixture
) -> None:
    code = await send(verifier, caplog, PHONE)
    assert "9012345678" not in caplog.text
    row = await OtpChallenge.get(phone_index=current_keyring().blind_index(PHONE, "phone"))
    assert code not in row.code_hash
    assert len(row.code_hash) == 64
    assert row.expires_at == START + timedelta(minutes=10)


async def test_a_wrong_code_is_refused_and_the_right_one_still_works(
    verifier: ConsoleVerifier, caplog: pytest.LogCaptureFixture
) -> None:
    code = await send(verifier, caplog, PHONE)
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    assert not await verifier.check(PHONE, wrong)
    assert not await verifier.check(PHONE, "")
    assert not await verifier.check(PHONE, "not a code")
    assert await verifier.check(PHONE, f" {code[:3]} {code[3:]} ")


async def test_full_width_digits_are_accepted(
    verifier: ConsoleVerifier, caplog: pytest.LogCaptureFixture
) -> None:
    code = await send(verifier, caplog, PHONE)
    full_width = code.translate(str.maketrans("0123456789", "０１２３４５６７８９"))
    assert await verifier.check(PHONE, full_width)


async def test_an_expired_code_is_refused(
    verifier: ConsoleVerifier, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    code = await send(verifier, caplog, PHONE)
    clock.advance(timedelta(minutes=10))
    assert not await verifier.check(PHONE, code)


async def test_a_code_just_before_expiry_works(
    verifier: ConsoleVerifier, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    code = await send(verifier, caplog, PHONE)
    clock.advance(timedelta(minutes=10) - timedelta(seconds=1))
    assert await verifier.check(PHONE, code)


async def test_a_code_is_for_its_own_number_only(
    verifier: ConsoleVerifier, caplog: pytest.LogCaptureFixture
) -> None:
    code = await send(verifier, caplog, PHONE)
    other = await send(verifier, caplog, OTHER)
    if other != code:  # one chance in a million that they are the same
        assert not await verifier.check(OTHER, code)
    assert await verifier.check(PHONE, code)


async def test_no_code_was_sent(verifier: ConsoleVerifier) -> None:
    assert not await verifier.check(PHONE, "123456")


async def test_attempts_run_out(
    verifier: ConsoleVerifier, caplog: pytest.LogCaptureFixture
) -> None:
    code = await send(verifier, caplog, PHONE)
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    for _ in range(5):
        assert not await verifier.check(PHONE, wrong)
    with pytest.raises(TooManyAttempts) as caught:
        await verifier.check(PHONE, code)  # even the right code: the challenge is dead
    assert caught.value.status == 429
    assert caught.value.text.ja
    assert caught.value.text.en
    # A new code starts afresh.
    fresh = await send(verifier, caplog, PHONE)
    assert await verifier.check(PHONE, fresh)


async def test_a_new_code_replaces_the_old_one_without_buying_guesses(
    verifier: ConsoleVerifier, caplog: pytest.LogCaptureFixture
) -> None:
    first = await send(verifier, caplog, PHONE)
    wrong = f"{(int(first) + 1) % 1_000_000:06d}"
    for _ in range(3):
        assert not await verifier.check(PHONE, wrong)
    second = await send(verifier, caplog, PHONE)
    if first != second:
        assert not await verifier.check(PHONE, first)  # the old code is gone
    else:
        assert not await verifier.check(PHONE, wrong)
    assert not await verifier.check(PHONE, wrong)
    with pytest.raises(TooManyAttempts):
        await verifier.check(PHONE, second)
    assert await OtpChallenge.all().count() == 1


async def test_concurrent_right_answers_sign_in_once(
    verifier: ConsoleVerifier, caplog: pytest.LogCaptureFixture, db: Settings
) -> None:
    code = await send(verifier, caplog, PHONE)
    results = await asyncio.gather(*(verifier.check(PHONE, code) for _ in range(4)))
    assert results.count(True) == 1


async def test_a_fixed_code_for_the_demo(db: Settings, clock: Clock) -> None:
    verifier = ConsoleVerifier(clock, fixed_code="000000")
    await verifier.start(PHONE, locale="en")
    assert await verifier.check(PHONE, "000000")
    assert not await verifier.check(PHONE, "000000")
    with pytest.raises(ValueError, match="digits"):
        ConsoleVerifier(clock, fixed_code="abc")


async def test_code_length_and_ttl_are_configurable(
    db: Settings, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    verifier = ConsoleVerifier(clock, code_length=8, ttl=timedelta(minutes=2), max_attempts=2)
    code = await send(verifier, caplog, PHONE)
    assert len(code) == 8
    clock.advance(timedelta(minutes=2))
    assert not await verifier.check(PHONE, code)
