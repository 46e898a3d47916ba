"""The Twilio Verify adapter through the real ``twilio`` SDK, over HTTP, against a local fake."""

from __future__ import annotations

import logging
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta

import pytest

from patient_portal.auth.verifier import (
    InvalidRecipient,
    ProviderUnavailable,
    TooManyAttempts,
    TwilioVerifier,
)
from tests.support.fake_twilio import ACCOUNT_SID, AUTH_TOKEN, SERVICE_SID, FakeTwilioVerify
from tests.support.live_server import free_port, serve

PHONE = "+819012345678"


@pytest.fixture
def fake() -> FakeTwilioVerify:
    return FakeTwilioVerify()


@pytest.fixture
def base_url(fake: FakeTwilioVerify) -> Iterator[str]:
    with serve(fake.app) as url:
        yield url


@pytest.fixture
async def verifier(base_url: str) -> AsyncIterator[TwilioVerifier]:
    async with TwilioVerifier(ACCOUNT_SID, AUTH_TOKEN, SERVICE_SID, base_url=base_url) as adapter:
        yield adapter


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"


async def test_the_right_code_is_approved_once(
    verifier: TwilioVerifier, fake: FakeTwilioVerify
) -> None:
    await verifier.start(PHONE, locale="ja")
    assert fake.locales[PHONE] == "ja"
    assert await verifier.check(PHONE, fake.sent[PHONE])
    assert not await verifier.check(PHONE, fake.sent[PHONE])  # approved: no longer pending


async def test_the_locale_is_passed_on(verifier: TwilioVerifier, fake: FakeTwilioVerify) -> None:
    await verifier.start(PHONE, locale="en")
    assert fake.locales[PHONE] == "en"
    await verifier.start("+818098765432", locale="fr")
    assert fake.locales["+818098765432"] == "ja"


async def test_a_wrong_code_is_refused_and_the_right_one_still_works(
    verifier: TwilioVerifier, fake: FakeTwilioVerify
) -> None:
    await verifier.start(PHONE, locale="ja")
    code = fake.sent[PHONE]
    assert not await verifier.check(PHONE, wrong(code))
    assert not await verifier.check(PHONE, "")  # never sent: Twilio would refuse an empty code
    assert await verifier.check(PHONE, f"{code[:3]} {code[3:]}")


async def test_no_pending_verification(verifier: TwilioVerifier) -> None:
    assert not await verifier.check(PHONE, "123456")


async def test_an_expired_verification(verifier: TwilioVerifier, fake: FakeTwilioVerify) -> None:
    await verifier.start(PHONE, locale="ja")
    fake.now += timedelta(minutes=10, seconds=1)
    assert not await verifier.check(PHONE, fake.sent[PHONE])


async def test_a_resend_keeps_the_code(verifier: TwilioVerifier, fake: FakeTwilioVerify) -> None:
    await verifier.start(PHONE, locale="ja")
    first = fake.sent[PHONE]
    await verifier.start(PHONE, locale="ja")
    assert fake.sent[PHONE] == first
    assert await verifier.check(PHONE, first)


async def test_too_many_checks(verifier: TwilioVerifier, fake: FakeTwilioVerify) -> None:
    await verifier.start(PHONE, locale="ja")
    code = fake.sent[PHONE]
    for _ in range(5):
        assert not await verifier.check(PHONE, wrong(code))
    with pytest.raises(TooManyAttempts) as caught:
        await verifier.check(PHONE, code)
    assert caught.value.status == 429
    assert "60202" in caught.value.detail


async def test_too_many_sends(verifier: TwilioVerifier, fake: FakeTwilioVerify) -> None:
    for _ in range(5):
        await verifier.start(PHONE, locale="ja")
    with pytest.raises(TooManyAttempts) as caught:
        await verifier.start(PHONE, locale="ja")
    assert "60203" in caught.value.detail


async def test_a_number_twilio_refuses(verifier: TwilioVerifier) -> None:
    with pytest.raises(InvalidRecipient) as caught:
        await verifier.start("+81 not a number", locale="ja")
    assert caught.value.status == 400


async def test_bad_credentials_are_an_unavailable_provider_and_logged_clearly(
    base_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    async with TwilioVerifier(ACCOUNT_SID, "wrong-token", SERVICE_SID, base_url=base_url) as bad:
        with pytest.raises(ProviderUnavailable) as caught:
            await bad.start(PHONE, locale="ja")
        with pytest.raises(ProviderUnavailable):
            await bad.check(PHONE, "123456")
    assert caught.value.status == 503
    assert "401" in caught.value.detail
    assert "refused the credentials" in caplog.text
    assert "wrong-token" not in caplog.text


async def test_an_unknown_service_is_an_unavailable_provider(base_url: str) -> None:
    other_service = "VA" + "f" * 32
    async with TwilioVerifier(ACCOUNT_SID, AUTH_TOKEN, other_service, base_url=base_url) as bad:
        with pytest.raises(ProviderUnavailable):
            await bad.start(PHONE, locale="ja")


async def test_a_server_error_is_an_unavailable_provider(
    verifier: TwilioVerifier, fake: FakeTwilioVerify
) -> None:
    fake.outage = True
    with pytest.raises(ProviderUnavailable) as caught:
        await verifier.start(PHONE, locale="ja")
    assert "503" in caught.value.detail
    with pytest.raises(ProviderUnavailable):
        await verifier.check(PHONE, "123456")


async def test_an_answer_that_is_not_json_is_an_unavailable_provider(
    verifier: TwilioVerifier, fake: FakeTwilioVerify
) -> None:
    fake.garbage = True
    with pytest.raises(ProviderUnavailable, match="unparsable"):
        await verifier.start(PHONE, locale="ja")


async def test_a_server_that_is_down(fake: FakeTwilioVerify) -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    async with TwilioVerifier(ACCOUNT_SID, AUTH_TOKEN, SERVICE_SID, base_url=closed) as down:
        with pytest.raises(ProviderUnavailable):
            await down.start(PHONE, locale="ja")
        with pytest.raises(ProviderUnavailable):
            await down.check(PHONE, "123456")


async def test_a_slow_server_times_out(base_url: str, fake: FakeTwilioVerify) -> None:
    fake.delay = 1.0
    async with TwilioVerifier(
        ACCOUNT_SID, AUTH_TOKEN, SERVICE_SID, base_url=base_url, timeout=0.2
    ) as slow:
        with pytest.raises(ProviderUnavailable, match="timeout"):
            await slow.start(PHONE, locale="ja")


async def test_logs_name_the_number_masked_only(
    verifier: TwilioVerifier, fake: FakeTwilioVerify, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG):
        await verifier.start(PHONE, locale="ja")
        await verifier.check(PHONE, wrong(fake.sent[PHONE]))
        await verifier.check(PHONE, fake.sent[PHONE])
    assert "***5678" in caplog.text
    assert "9012345678" not in caplog.text
    assert fake.sent[PHONE] not in caplog.text


async def test_the_verifier_can_be_closed_and_used_again(
    base_url: str, fake: FakeTwilioVerify
) -> None:
    adapter = TwilioVerifier(ACCOUNT_SID, AUTH_TOKEN, SERVICE_SID, base_url=base_url)
    await adapter.aclose()  # closing an unused adapter is fine
    await adapter.start(PHONE, locale="ja")
    await adapter.aclose()
    assert await adapter.check(PHONE, fake.sent[PHONE])
    await adapter.aclose()


def test_twilio_is_imported_only_when_the_adapter_is_used() -> None:
    probe = (
        "import sys, patient_portal.auth.verifier as v\n"
        "assert 'twilio' not in sys.modules, 'twilio imported at module level'\n"
        "v.TwilioVerifier('AC1', 'token', 'VA1')\n"
        "assert 'twilio' not in sys.modules, 'twilio imported by the constructor'\n"
    )
    subprocess.run([sys.executable, "-c", probe], check=True, timeout=60)
