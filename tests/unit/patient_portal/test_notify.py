"""The Composite notifier with in-memory channels: routing, idempotency, outages, refusals."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

import pytest

from patient_portal.notify import (
    Channel,
    ChannelUnavailable,
    Composite,
    Message,
    NotifyError,
    Outcome,
    Undeliverable,
    mask_email,
)
from patient_portal.notify.smtp_email import is_loopback, message_id

PHONE = "+819012345678"
EMAIL = "hanako@example.jp"
BODY = "つなぐクリニック: 4月1日 9:30 のご予約を承りました。https://example.jp/b/abc"


def message(
    key: str = "appointment:1:confirmation",
    *,
    phone: str | None = PHONE,
    email: str | None = EMAIL,
) -> Message:
    return Message(to_phone=phone, to_email=email, subject="ご予約の確認", body=BODY, key=key)


@dataclass
class FakeSms:
    """Raises the queued errors one per call, then sends."""

    errors: list[NotifyError] = field(default_factory=list)
    sent: list[tuple[str, str, str]] = field(default_factory=list)
    calls: int = 0
    delay: float = 0.0
    closed: bool = False

    async def send_sms(self, to: str, body: str, *, key: str) -> str:
        self.calls += 1
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.errors:
            raise self.errors.pop(0)
        self.sent.append((to, body, key))
        return f"SM{len(self.sent)}"

    async def aclose(self) -> None:
        self.closed = True


@dataclass
class FakeEmail:
    errors: list[NotifyError] = field(default_factory=list)
    sent: list[tuple[str, str, str, str]] = field(default_factory=list)
    calls: int = 0
    closed: bool = False

    async def send_email(self, to: str, subject: str, body: str, *, key: str) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        self.sent.append((to, subject, body, key))
        return f"<{len(self.sent)}@example.jp>"

    async def aclose(self) -> None:
        self.closed = True


def outage(channel: Channel) -> ChannelUnavailable:
    return ChannelUnavailable("provider: HTTP 503", channel=channel)


def refusal(channel: Channel) -> Undeliverable:
    return Undeliverable("provider: error 21211", channel=channel)


@pytest.fixture
def sms() -> FakeSms:
    return FakeSms()


@pytest.fixture
def email() -> FakeEmail:
    return FakeEmail()


@pytest.fixture
def notifier(sms: FakeSms, email: FakeEmail) -> Composite:
    return Composite(sms=sms, email=email)


async def test_both_channels_are_sent(notifier: Composite, sms: FakeSms, email: FakeEmail) -> None:
    report = await notifier.send(message())
    assert sms.sent == [(PHONE, BODY, "appointment:1:confirmation")]
    assert email.sent == [(EMAIL, "ご予約の確認", BODY, "appointment:1:confirmation")]
    assert (report.sms.outcome, report.sms.provider_id) == (Outcome.SENT, "SM1")
    assert (report.email.outcome, report.email.provider_id) == (Outcome.SENT, "<1@example.jp>")
    assert report.delivered
    assert not report.retryable
    assert report.summary() == "sms sent, email sent"


@pytest.mark.parametrize(
    ("phone", "address", "sms_outcome", "email_outcome"),
    [
        (PHONE, None, Outcome.SENT, Outcome.SKIPPED),
        (None, EMAIL, Outcome.SKIPPED, Outcome.SENT),
        (None, None, Outcome.SKIPPED, Outcome.SKIPPED),
        ("", "", Outcome.SKIPPED, Outcome.SKIPPED),
    ],
)
async def test_a_channel_without_an_address_is_skipped(
    notifier: Composite,
    sms: FakeSms,
    email: FakeEmail,
    phone: str | None,
    address: str | None,
    sms_outcome: Outcome,
    email_outcome: Outcome,
) -> None:
    report = await notifier.send(message(phone=phone, email=address))
    assert (report.sms.outcome, report.email.outcome) == (sms_outcome, email_outcome)
    assert sms.calls == (sms_outcome is Outcome.SENT)
    assert email.calls == (email_outcome is Outcome.SENT)
    assert report.delivered == (Outcome.SENT in (sms_outcome, email_outcome))


async def test_an_address_without_a_channel_is_skipped(sms: FakeSms) -> None:
    report = await Composite(sms=sms).send(message())
    assert report.sms.outcome is Outcome.SENT
    assert report.email.outcome is Outcome.SKIPPED
    assert report.email.detail == "no channel configured"


async def test_the_same_key_is_sent_once(
    notifier: Composite, sms: FakeSms, email: FakeEmail
) -> None:
    first = await notifier.send(message())
    again = await notifier.send(message())
    assert (len(sms.sent), len(email.sent)) == (1, 1)
    assert again.sms.repeated
    assert again.email.repeated
    assert again.sms.provider_id == first.sms.provider_id
    await notifier.send(message("appointment:1:reminder:1440"))
    assert (len(sms.sent), len(email.sent)) == (2, 2)


async def test_concurrent_sends_of_one_key_send_once(email: FakeEmail) -> None:
    sms = FakeSms(delay=0.05)
    notifier = Composite(sms=sms, email=email)
    reports = await asyncio.gather(*(notifier.send(message()) for _ in range(3)))
    assert sms.calls == 1
    assert len(email.sent) == 1
    assert [r.sms.repeated for r in reports].count(False) == 1


async def test_a_partial_outage_raises_and_the_retry_sends_only_the_missing_channel(
    notifier: Composite, sms: FakeSms, email: FakeEmail
) -> None:
    email.errors.append(outage(Channel.EMAIL))
    with pytest.raises(ChannelUnavailable) as caught:
        await notifier.send(message())
    report = caught.value.report
    assert report is not None
    assert report.sms.outcome is Outcome.SENT
    assert (report.email.outcome, report.email.retryable) == (Outcome.FAILED, True)
    assert caught.value.channel is Channel.EMAIL
    assert str(caught.value) == "email: provider: HTTP 503"

    retried = await notifier.send(message())
    assert len(sms.sent) == 1  # not sent twice
    assert retried.sms.repeated
    assert retried.email.outcome is Outcome.SENT
    assert len(email.sent) == 1


async def test_an_outage_on_both_channels_names_both(
    notifier: Composite, sms: FakeSms, email: FakeEmail
) -> None:
    sms.errors.append(outage(Channel.SMS))
    email.errors.append(outage(Channel.EMAIL))
    with pytest.raises(ChannelUnavailable, match=r"^sms: .*; email: ") as caught:
        await notifier.send(message())
    assert caught.value.report is not None
    assert not caught.value.report.delivered
    await notifier.send(message())
    assert (len(sms.sent), len(email.sent)) == (1, 1)


async def test_an_undeliverable_recipient_is_reported_not_raised_and_not_retried(
    notifier: Composite, sms: FakeSms, email: FakeEmail
) -> None:
    sms.errors.append(refusal(Channel.SMS))
    report = await notifier.send(message())
    assert (report.sms.outcome, report.sms.retryable) == (Outcome.FAILED, False)
    assert report.sms.detail == "provider: error 21211"
    assert report.email.outcome is Outcome.SENT
    assert report.delivered
    assert not report.retryable

    again = await notifier.send(message())
    assert sms.calls == 1
    assert again.sms.outcome is Outcome.FAILED
    assert again.sms.repeated


async def test_undeliverable_everywhere_is_a_report_without_delivery(
    notifier: Composite, sms: FakeSms, email: FakeEmail
) -> None:
    sms.errors.append(refusal(Channel.SMS))
    email.errors.append(refusal(Channel.EMAIL))
    report = await notifier.send(message())
    assert not report.delivered
    assert not report.retryable


async def test_an_outage_with_an_undeliverable_channel_retries_only_the_outage(
    notifier: Composite, sms: FakeSms, email: FakeEmail
) -> None:
    sms.errors.append(refusal(Channel.SMS))
    email.errors.append(outage(Channel.EMAIL))
    with pytest.raises(ChannelUnavailable):
        await notifier.send(message())
    report = await notifier.send(message())
    assert sms.calls == 1
    assert report.sms.outcome is Outcome.FAILED
    assert report.email.outcome is Outcome.SENT


async def test_an_unexpected_error_propagates_and_is_not_remembered(
    notifier: Composite, email: FakeEmail
) -> None:
    class Broken(FakeSms):
        async def send_sms(self, to: str, body: str, *, key: str) -> str:
            self.calls += 1
            if self.calls == 1:
                raise RuntimeError("bug")
            return await super().send_sms(to, body, key=key)

    broken = Broken()
    composite = Composite(sms=broken, email=email)
    with pytest.raises(RuntimeError):
        await composite.send(message())
    report = await composite.send(message())
    assert report.sms.outcome is Outcome.SENT
    assert not report.sms.repeated


async def test_the_record_is_bounded(sms: FakeSms, email: FakeEmail) -> None:
    notifier = Composite(sms=sms, memory=2)
    await notifier.send(message("a", email=None))
    await notifier.send(message("b", email=None))
    await notifier.send(message("a", email=None))  # remembered: "a" is now the newest
    await notifier.send(message("c", email=None))  # evicts "b"
    await notifier.send(message("a", email=None))
    assert [key for _, _, key in sms.sent] == ["a", "b", "c"]
    await notifier.send(message("b", email=None))
    assert [key for _, _, key in sms.sent] == ["a", "b", "c", "b"]
    with pytest.raises(ValueError, match="memory"):
        Composite(memory=0)


async def test_aclose_closes_both_channels(
    notifier: Composite, sms: FakeSms, email: FakeEmail
) -> None:
    await notifier.aclose()
    assert sms.closed
    assert email.closed


async def test_logs_carry_the_key_and_outcomes_only(
    notifier: Composite, email: FakeEmail, caplog: pytest.LogCaptureFixture
) -> None:
    email.errors.append(outage(Channel.EMAIL))
    with caplog.at_level(logging.DEBUG, logger="patient_portal.notify"):
        with pytest.raises(ChannelUnavailable):
            await notifier.send(message())
        await notifier.send(message())
    assert "appointment:1:confirmation" in caplog.text
    for secret in ("9012345678", "hanako", BODY[:8], "ご予約の確認"):
        assert secret not in caplog.text


def test_a_message_hides_recipients_and_body_in_its_repr() -> None:
    text = repr(message())
    assert "appointment:1:confirmation" in text
    for secret in (PHONE, EMAIL, BODY):
        assert secret not in text
    with pytest.raises(ValueError, match="key"):
        message("")


@pytest.mark.parametrize(
    ("address", "masked"),
    [("hanako@example.jp", "***@example.jp"), ("a@b@example.jp", "***@example.jp"), ("x", "***")],
)
def test_mask_email(address: str, masked: str) -> None:
    assert mask_email(address) == masked


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("localhost", True),
        ("127.0.0.1", True),
        ("127.5.5.5", True),
        ("::1", True),
        ("10.0.0.1", False),
        ("smtp.example.jp", False),
    ],
)
def test_only_loopback_hosts_may_get_credentials_without_tls(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_the_message_id_is_stable_per_key() -> None:
    first = message_id("appointment:1:reminder:1440", "example.jp")
    assert first == message_id("appointment:1:reminder:1440", "example.jp")
    assert first != message_id("appointment:1:reminder:60", "example.jp")
    assert first.startswith("<")
    assert first.endswith("@example.jp>")
    assert ":" not in first
