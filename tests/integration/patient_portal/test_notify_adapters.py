"""The notifier's channel adapters over loopback: TwilioSms through the real ``twilio`` SDK
against a fake Messaging API, SmtpEmail through ``smtplib`` against a fake SMTP server, and the
console channels."""

from __future__ import annotations

import asyncio
import io
import logging
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator

import pytest

from patient_portal.notify import (
    Channel,
    ChannelUnavailable,
    Composite,
    ConsoleEmail,
    ConsoleSms,
    Message,
    Outcome,
    SmtpEmail,
    TwilioSms,
    Undeliverable,
)
from patient_portal.notify.smtp_email import message_id
from tests.support.fake_smtp import HOST, FakeSmtp
from tests.support.fake_twilio_messaging import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    FROM_NUMBER,
    MESSAGING_SERVICE_SID,
    FakeTwilioMessaging,
)
from tests.support.live_server import free_port, serve

PHONE = "+819012345678"
EMAIL = "hanako@example.jp"
SENDER = "つなぐクリニック <no-reply@clinic.example.jp>"
SUBJECT = "【つなぐクリニック】ご予約の確認"
BODY = "つなぐクリニック: 4月1日(水) 9:30 のご予約を承りました。\n変更・キャンセル: https://example.jp/b/x7Q"
KEY = "appointment:42:confirmation"
SMTP_USER = "tsunagu"
SMTP_PASSWORD = "s3cret-smtp-pass"


# --- Twilio Messaging ---------------------------------------------------------------------------


@pytest.fixture
def fake() -> FakeTwilioMessaging:
    return FakeTwilioMessaging()


@pytest.fixture
def base_url(fake: FakeTwilioMessaging) -> Iterator[str]:
    with serve(fake.app) as url:
        yield url


@pytest.fixture
async def twilio(base_url: str) -> AsyncIterator[TwilioSms]:
    async with TwilioSms(
        ACCOUNT_SID, AUTH_TOKEN, from_number=FROM_NUMBER, base_url=base_url
    ) as adapter:
        yield adapter


async def test_an_sms_is_sent(twilio: TwilioSms, fake: FakeTwilioMessaging) -> None:
    sid = await twilio.send_sms(PHONE, BODY, key=KEY)
    assert sid.startswith("SM")
    [sent] = fake.sent
    assert (sent.sid, sent.to, sent.from_, sent.body) == (sid, PHONE, FROM_NUMBER, BODY)
    assert sent.messaging_service_sid is None


async def test_an_sms_through_a_messaging_service(base_url: str, fake: FakeTwilioMessaging) -> None:
    async with TwilioSms(
        ACCOUNT_SID, AUTH_TOKEN, messaging_service_sid=MESSAGING_SERVICE_SID, base_url=base_url
    ) as adapter:
        await adapter.send_sms(PHONE, BODY, key=KEY)
    [sent] = fake.sent
    assert (sent.from_, sent.messaging_service_sid) == (None, MESSAGING_SERVICE_SID)


def test_a_sender_is_required() -> None:
    with pytest.raises(ValueError, match="from_number or messaging_service_sid"):
        TwilioSms(ACCOUNT_SID, AUTH_TOKEN)


@pytest.mark.parametrize(
    ("to", "code"),
    [
        ("+15005550001", 21211),  # invalid number
        ("090-1234-5678", 21211),  # not E.164
        ("+15005550002", 21612),  # not reachable by SMS
        ("+15005550009", 21614),  # not a mobile
        ("+15005550004", 21610),  # replied STOP
    ],
)
async def test_a_recipient_twilio_refuses_is_undeliverable(
    twilio: TwilioSms, fake: FakeTwilioMessaging, to: str, code: int
) -> None:
    with pytest.raises(Undeliverable) as caught:
        await twilio.send_sms(to, BODY, key=KEY)
    assert caught.value.detail == f"twilio: HTTP 400, error {code}"
    assert caught.value.channel is Channel.SMS
    assert to not in str(caught.value)
    assert not fake.sent


async def test_an_unsubscribed_recipient_is_logged_as_such(
    twilio: TwilioSms, fake: FakeTwilioMessaging, caplog: pytest.LogCaptureFixture
) -> None:
    fake.unsubscribed.add(PHONE)
    with caplog.at_level(logging.INFO), pytest.raises(Undeliverable):
        await twilio.send_sms(PHONE, BODY, key=KEY)
    assert "***5678 has unsubscribed" in caplog.text
    assert "9012345678" not in caplog.text


async def test_bad_credentials_are_an_outage_and_logged_clearly(
    base_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    async with TwilioSms(
        ACCOUNT_SID, "wrong-token", from_number=FROM_NUMBER, base_url=base_url
    ) as bad:
        with pytest.raises(ChannelUnavailable) as caught:
            await bad.send_sms(PHONE, BODY, key=KEY)
    assert caught.value.detail == "twilio: HTTP 401, error 20003"
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert any("refused the credentials" in r.getMessage() for r in errors)
    assert "wrong-token" not in caplog.text


@pytest.mark.parametrize(
    ("setting", "detail"),
    [
        ("outage", "twilio: HTTP 503, error 20500"),
        ("rate_limited", "twilio: HTTP 429, error 20429"),
        ("garbage", "twilio: unparsable answer"),
    ],
)
async def test_a_provider_in_trouble_is_an_outage(
    twilio: TwilioSms, fake: FakeTwilioMessaging, setting: str, detail: str
) -> None:
    setattr(fake, setting, True)
    with pytest.raises(ChannelUnavailable) as caught:
        await twilio.send_sms(PHONE, BODY, key=KEY)
    assert caught.value.detail == detail


async def test_a_server_that_is_down_is_an_outage() -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    async with TwilioSms(ACCOUNT_SID, AUTH_TOKEN, from_number=FROM_NUMBER, base_url=closed) as down:
        with pytest.raises(ChannelUnavailable, match="twilio: ClientConnectorError"):
            await down.send_sms(PHONE, BODY, key=KEY)


async def test_a_slow_server_times_out(base_url: str, fake: FakeTwilioMessaging) -> None:
    fake.delay = 1.0
    async with TwilioSms(
        ACCOUNT_SID, AUTH_TOKEN, from_number=FROM_NUMBER, base_url=base_url, timeout=0.2
    ) as slow:
        with pytest.raises(ChannelUnavailable, match="timeout"):
            await slow.send_sms(PHONE, BODY, key=KEY)


async def test_twilio_logs_name_the_number_masked_and_never_the_body(
    twilio: TwilioSms, fake: FakeTwilioMessaging, caplog: pytest.LogCaptureFixture
) -> None:
    fake.invalid.add("+819011112222")
    with caplog.at_level(logging.DEBUG):
        await twilio.send_sms(PHONE, BODY, key=KEY)
        with pytest.raises(Undeliverable):
            await twilio.send_sms("+819011112222", BODY, key=KEY)
    assert "***5678" in caplog.text
    assert "***2222" in caplog.text
    for secret in ("9012345678", "9011112222", "ご予約", "x7Q", AUTH_TOKEN):
        assert secret not in caplog.text


async def test_the_sms_adapter_can_be_closed_and_used_again(
    base_url: str, fake: FakeTwilioMessaging
) -> None:
    adapter = TwilioSms(ACCOUNT_SID, AUTH_TOKEN, from_number=FROM_NUMBER, base_url=base_url)
    await adapter.aclose()  # closing an unused adapter is fine
    await adapter.send_sms(PHONE, BODY, key=KEY)
    await adapter.aclose()
    await adapter.send_sms(PHONE, BODY, key=KEY)
    await adapter.aclose()
    assert len(fake.sent) == 2


def test_twilio_is_imported_only_when_the_adapter_is_used() -> None:
    probe = (
        "import sys, patient_portal.notify as n\n"
        "assert 'twilio' not in sys.modules, 'twilio imported at module level'\n"
        "n.TwilioSms('AC1', 'token', from_number='+15005550006')\n"
        "assert 'twilio' not in sys.modules, 'twilio imported by the constructor'\n"
    )
    subprocess.run([sys.executable, "-c", probe], check=True, timeout=60)


# --- SMTP ---------------------------------------------------------------------------------------


@pytest.fixture
async def smtp() -> AsyncIterator[FakeSmtp]:
    async with FakeSmtp(user=SMTP_USER, password=SMTP_PASSWORD) as server:
        yield server


def mailer(server: FakeSmtp) -> SmtpEmail:
    return SmtpEmail(server.url, SENDER)


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN"])
async def test_japanese_mail_round_trips_with_auth(smtp: FakeSmtp, mechanism: str) -> None:
    smtp.mechanisms = (mechanism,)
    provider_id = await mailer(smtp).send_email(EMAIL, SUBJECT, BODY, key=KEY)
    [received] = smtp.received
    assert received.user == SMTP_USER
    assert received.mail_from == "no-reply@clinic.example.jp"
    assert received.rcpt_to == (EMAIL,)
    assert received.data.isascii()  # encoded for any relay: no 8-bit data on the wire
    parsed = received.message
    assert parsed["Subject"] == SUBJECT
    assert parsed["From"].addresses[0].display_name == "つなぐクリニック"
    assert parsed["To"] == EMAIL
    assert parsed.get_content_charset() == "utf-8"
    assert parsed.get_content().rstrip("\n") == BODY
    assert parsed["Message-ID"] == provider_id == message_id(KEY, "clinic.example.jp")
    assert parsed["Auto-Submitted"] == "auto-generated"
    assert parsed["Date"] is not None


async def test_a_percent_encoded_password_is_decoded() -> None:
    async with FakeSmtp(user="user@clinic", password="p@ss:word/%") as server:
        url = f"smtp://user%40clinic:p%40ss%3Aword%2F%25@{HOST}:{server.port}"
        await SmtpEmail(url, SENDER).send_email(EMAIL, SUBJECT, BODY, key=KEY)
        assert server.logins == ["user@clinic"]


async def test_a_server_without_auth_takes_mail_without_credentials() -> None:
    async with FakeSmtp() as server:
        await mailer(server).send_email(EMAIL, SUBJECT, BODY, key=KEY)
        assert server.received[0].user is None


async def test_wrong_credentials_are_an_outage_and_logged_clearly(
    smtp: FakeSmtp, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"smtp://{SMTP_USER}:not-the-password@{HOST}:{smtp.port}"
    with pytest.raises(ChannelUnavailable, match="credentials refused"):
        await SmtpEmail(url, SENDER).send_email(EMAIL, SUBJECT, BODY, key=KEY)
    assert any(r.levelno == logging.ERROR for r in caplog.records)
    assert "not-the-password" not in caplog.text
    assert not smtp.received


async def test_missing_credentials_are_an_outage(smtp: FakeSmtp) -> None:
    url = f"smtp://{HOST}:{smtp.port}"
    with pytest.raises(ChannelUnavailable, match="sender refused with 530"):
        await SmtpEmail(url, SENDER).send_email(EMAIL, SUBJECT, BODY, key=KEY)


async def test_a_refused_recipient_is_undeliverable(smtp: FakeSmtp) -> None:
    smtp.refused.add(EMAIL)
    with pytest.raises(Undeliverable) as caught:
        await mailer(smtp).send_email(EMAIL, SUBJECT, BODY, key=KEY)
    assert caught.value.detail == "smtp: recipient refused with 550"
    assert caught.value.channel is Channel.EMAIL
    assert not smtp.received


async def test_a_deferred_recipient_is_an_outage(smtp: FakeSmtp) -> None:
    smtp.deferred.add(EMAIL)
    with pytest.raises(ChannelUnavailable, match="recipient refused with 450"):
        await mailer(smtp).send_email(EMAIL, SUBJECT, BODY, key=KEY)


async def test_a_server_in_maintenance_is_an_outage(smtp: FakeSmtp) -> None:
    smtp.closed_for_now = True
    with pytest.raises(ChannelUnavailable, match="SMTPConnectError 421"):
        await mailer(smtp).send_email(EMAIL, SUBJECT, BODY, key=KEY)


async def test_an_smtp_server_that_is_down_is_an_outage() -> None:
    adapter = SmtpEmail(f"smtp://{HOST}:{free_port()}", SENDER)
    with pytest.raises(ChannelUnavailable, match="ConnectionRefusedError"):
        await adapter.send_email(EMAIL, SUBJECT, BODY, key=KEY)


async def test_a_silent_smtp_server_times_out() -> None:
    connections: list[tuple[asyncio.Task[None], asyncio.StreamWriter]] = []

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        connections.append((task, writer))
        await reader.read()  # never greets; returns when either side hangs up

    server = await asyncio.start_server(silent, HOST, 0)
    port = server.sockets[0].getsockname()[1]
    try:
        adapter = SmtpEmail(f"smtp://{HOST}:{port}", SENDER, timeout=0.3)
        with pytest.raises(ChannelUnavailable, match="timeout"):
            await adapter.send_email(EMAIL, SUBJECT, BODY, key=KEY)
    finally:
        server.close()
        for _, writer in connections:
            writer.close()
        await asyncio.gather(*(task for task, _ in connections), return_exceptions=True)
        await asyncio.gather(*(w.wait_closed() for _, w in connections), return_exceptions=True)
        await server.wait_closed()


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://u:hunter2@mail.example.jp", "smtp:// or smtps://"),
        ("smtp://u:hunter2@:25", "no host"),
        ("smtp://u:hunter2@mail.example.jp:99999", "not a valid URL"),
        ("smtp://u:hunter2%C3%B6@mail.example.jp", "ASCII"),
    ],
)
def test_a_bad_smtp_url_is_refused_without_showing_it(url: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason) as caught:
        SmtpEmail(url, SENDER)
    assert "hunter2" not in str(caught.value)


def test_the_sender_needs_an_address() -> None:
    with pytest.raises(ValueError, match="sender"):
        SmtpEmail("smtp://127.0.0.1", "Tsunagu")


async def test_smtp_logs_name_the_address_masked_and_never_the_text(
    smtp: FakeSmtp, caplog: pytest.LogCaptureFixture
) -> None:
    smtp.refused.add("taro@example.com")
    with caplog.at_level(logging.DEBUG):
        await mailer(smtp).send_email(EMAIL, SUBJECT, BODY, key=KEY)
        with pytest.raises(Undeliverable):
            await mailer(smtp).send_email("taro@example.com", SUBJECT, BODY, key=KEY)
    assert "***@example.jp" in caplog.text
    assert "***@example.com" in caplog.text
    for secret in ("hanako", "taro", "ご予約", "x7Q", SMTP_PASSWORD):
        assert secret not in caplog.text


# --- both, through the Composite ----------------------------------------------------------------


async def test_the_composite_sends_both_and_retries_only_the_failed_channel(
    twilio: TwilioSms, fake: FakeTwilioMessaging, smtp: FakeSmtp
) -> None:
    notifier = Composite(sms=twilio, email=mailer(smtp))
    message = Message(to_phone=PHONE, to_email=EMAIL, subject=SUBJECT, body=BODY, key=KEY)
    smtp.closed_for_now = True
    with pytest.raises(ChannelUnavailable):
        await notifier.send(message)
    smtp.closed_for_now = False
    report = await notifier.send(message)
    assert report.sms.repeated
    assert report.sms.provider_id == fake.sent[0].sid
    assert report.email.outcome is Outcome.SENT
    assert (len(fake.sent), len(smtp.received)) == (1, 1)
    await notifier.aclose()


# --- console ------------------------------------------------------------------------------------


async def test_console_channels_log_no_number_address_or_text(
    caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    with caplog.at_level(logging.DEBUG):
        sms_id = await ConsoleSms().send_sms(PHONE, BODY, key=KEY)
        email_id = await ConsoleEmail().send_email(EMAIL, SUBJECT, BODY, key=KEY)
    assert sms_id != email_id
    assert f"SMS to ***5678 ({len(BODY)} chars)" in caplog.messages
    assert f"e-mail to ***@example.jp ({len(BODY)} chars)" in caplog.messages
    for secret in ("9012345678", "hanako", "ご予約", "x7Q"):
        assert secret not in caplog.text
    assert capsys.readouterr().out == ""


async def test_console_channels_show_bodies_only_when_asked(
    caplog: pytest.LogCaptureFixture,
) -> None:
    out = io.StringIO()
    with caplog.at_level(logging.DEBUG):
        await ConsoleSms(show_bodies=True, stream=out).send_sms(PHONE, BODY, key=KEY)
        await ConsoleEmail(show_bodies=True, stream=out).send_email(EMAIL, SUBJECT, BODY, key=KEY)
    printed = out.getvalue()
    assert printed.count(BODY) == 2
    assert SUBJECT in printed
    assert "***5678" in printed
    assert "***@example.jp" in printed
    assert "9012345678" not in printed
    assert "hanako" not in printed
    assert "x7Q" not in caplog.text
