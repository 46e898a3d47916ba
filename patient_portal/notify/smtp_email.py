"""E-mail through an SMTP relay, with the standard library's ``smtplib`` in a worker thread.

``smtp_url`` is ``smtp://USER:PASS@HOST:PORT`` (port 587 by default; STARTTLS whenever the
server offers it) or ``smtps://USER:PASS@HOST:PORT`` (TLS from the first byte, port 465 by
default). User and password are optional and may be percent-encoded. Credentials are never sent
in clear to another machine: on ``smtp://`` without STARTTLS they are only used towards a
loopback address (a local relay), otherwise the send fails with :class:`ChannelUnavailable`.

Each message opens its own connection (reminders are few; no pool to keep healthy). The socket
timeout bounds every network step in the thread and ``asyncio.timeout`` bounds the whole send
for the caller. Errors:

- a recipient refused with a 5xx code, or the message refused for good (5xx after DATA) →
  :class:`Undeliverable`;
- 4xx answers, connection and TLS errors, timeouts, refused credentials or sender →
  :class:`ChannelUnavailable` (credentials and sender refusals are logged at ERROR).

The Message-ID is derived from the message key, so a re-sent message carries the same id and the
receiving side can recognise it. The returned provider id is that Message-ID.
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import logging
import smtplib
import ssl
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from typing import Final
from urllib.parse import unquote, urlsplit

from patient_portal.notify.port import Channel, ChannelUnavailable, Undeliverable, mask_email

logger = logging.getLogger(__name__)

DEFAULT_PORTS: Final = {"smtp": 587, "smtps": 465}
FALLBACK_DOMAIN: Final = "tsunagu.invalid"


class _PlaintextCredentials(smtplib.SMTPException):
    """Raised in the worker thread: the server offers no TLS and is not on this machine."""


@dataclass(frozen=True)
class _Server:
    host: str
    port: int
    implicit_tls: bool
    user: str
    password: str = field(repr=False)


def _parse_url(smtp_url: str) -> _Server:
    """The parts of ``smtp_url``; ``ValueError`` messages never contain the URL (it holds the
    password)."""
    try:
        parts = urlsplit(smtp_url)
        port = parts.port
    except ValueError:
        raise ValueError("smtp_url is not a valid URL") from None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise ValueError("smtp_url must start with smtp:// or smtps://")
    if not parts.hostname:
        raise ValueError("smtp_url has no host")
    user, password = unquote(parts.username or ""), unquote(parts.password or "")
    if not (user + password).isascii():
        raise ValueError("the smtp_url user and password must be ASCII (smtplib sends them so)")
    return _Server(
        host=parts.hostname,
        port=port or DEFAULT_PORTS[scheme],
        implicit_tls=scheme == "smtps",
        user=user,
        password=password,
    )


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine (``localhost``, 127.0.0.0/8, ``::1``)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def message_id(key: str, domain: str) -> str:
    """The Message-ID of the message with ``key``: the same key gives the same id."""
    digest = hashlib.sha256(key.encode()).hexdigest()[:40]
    return f"<{digest}@{domain}>"


class SmtpEmail:
    """An :class:`~patient_portal.notify.port.EmailSender` on an SMTP relay (see the module).

    ``sender`` is the From header (``"Clinic <no-reply@example.jp>"``; a Japanese display name is
    fine). ``tls_context`` replaces the default certificate checks (tests, private CAs);
    ``helo_name`` is the name given in EHLO (default: the sender's domain, which avoids a
    reverse-DNS lookup of this machine).
    """

    def __init__(
        self,
        smtp_url: str,
        sender: str,
        *,
        timeout: float = 10,
        tls_context: ssl.SSLContext | None = None,
        helo_name: str | None = None,
    ) -> None:
        self._server = _parse_url(smtp_url)
        _, self._envelope_from = parseaddr(sender)
        if "@" not in self._envelope_from:
            raise ValueError("the e-mail sender must contain an address (name@domain)")
        self._sender = sender
        self._domain = self._envelope_from.rpartition("@")[2] or FALLBACK_DOMAIN
        self._timeout = timeout
        self._tls_context = tls_context
        self._helo_name = helo_name or self._domain

    async def __aenter__(self) -> SmtpEmail:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Nothing to close (a connection per message); here for the sender protocol."""

    def build(self, to: str, subject: str, body: str, *, key: str) -> EmailMessage:
        """The e-mail as sent: UTF-8 subject and plain-text body, Message-ID from ``key``."""
        message = EmailMessage()
        message["From"] = self._sender
        message["To"] = to
        message["Subject"] = subject
        message["Date"] = format_datetime(datetime.now(UTC))
        message["Message-ID"] = message_id(key, self._domain)
        message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation auto-replies
        # Base64, not 8-bit: a relay that does not offer 8BITMIME still carries Japanese intact.
        message.set_content(body, cte="base64")
        return message

    async def send_email(self, to: str, subject: str, body: str, *, key: str) -> str:
        message = self.build(to, subject, body, key=key)
        try:
            async with asyncio.timeout(self._timeout):
                await asyncio.to_thread(self._deliver, message, to)
        except (TimeoutError, smtplib.SMTPException, OSError) as error:
            raise self._translate(error, to) from None
        logger.info("e-mail to %s handed to the SMTP server", mask_email(to))
        return str(message["Message-ID"])

    def _deliver(self, message: EmailMessage, to: str) -> None:
        """Runs in a worker thread: connect, secure, authenticate, send, quit."""
        server = self._server
        context = self._tls_context or ssl.create_default_context()
        smtp: smtplib.SMTP
        if server.implicit_tls:
            smtp = smtplib.SMTP_SSL(
                server.host,
                server.port,
                local_hostname=self._helo_name,
                timeout=self._timeout,
                context=context,
            )
        else:
            smtp = smtplib.SMTP(
                server.host, server.port, local_hostname=self._helo_name, timeout=self._timeout
            )
        with smtp:
            smtp.ehlo()
            secure = server.implicit_tls
            if not secure and smtp.has_extn("starttls"):
                smtp.starttls(context=context)
                smtp.ehlo()
                secure = True
            if server.user:
                if not secure and not is_loopback(server.host):
                    raise _PlaintextCredentials
                smtp.login(server.user, server.password)
            smtp.send_message(message, from_addr=self._envelope_from, to_addrs=[to])

    def _translate(self, error: BaseException, to: str) -> ChannelUnavailable | Undeliverable:
        host = self._server.host
        if isinstance(error, smtplib.SMTPRecipientsRefused):
            codes = [code for code, _ in error.recipients.values()]
            code = codes[0] if codes else 0
            detail = f"smtp: recipient refused with {code}"
            if code >= 500:
                logger.info("the SMTP server refused %s: %s", mask_email(to), detail)
                return Undeliverable(detail, channel=Channel.EMAIL)
            logger.warning("the SMTP server deferred %s: %s", mask_email(to), detail)
            return ChannelUnavailable(detail, channel=Channel.EMAIL)
        if isinstance(error, _PlaintextCredentials):
            logger.error(
                "%s offers no STARTTLS: not sending SMTP credentials in clear (use smtps://)", host
            )
            return ChannelUnavailable("smtp: no TLS for credentials", channel=Channel.EMAIL)
        if isinstance(error, smtplib.SMTPAuthenticationError | smtplib.SMTPNotSupportedError):
            logger.error("%s refused the SMTP credentials: %s", host, type(error).__name__)
            return ChannelUnavailable(
                f"smtp: credentials refused ({type(error).__name__})", channel=Channel.EMAIL
            )
        if isinstance(error, smtplib.SMTPSenderRefused):
            logger.error("%s refused the sender address (%s)", host, error.smtp_code)
            return ChannelUnavailable(
                f"smtp: sender refused with {error.smtp_code}", channel=Channel.EMAIL
            )
        if isinstance(error, smtplib.SMTPDataError) and error.smtp_code >= 500:
            logger.info("%s refused the e-mail to %s (%s)", host, mask_email(to), error.smtp_code)
            return Undeliverable(
                f"smtp: message refused with {error.smtp_code}", channel=Channel.EMAIL
            )
        if isinstance(error, smtplib.SMTPResponseException):
            detail = f"smtp: {type(error).__name__} {error.smtp_code}"
        elif isinstance(error, TimeoutError):
            detail = "smtp: timeout"
        else:
            detail = f"smtp: {type(error).__name__}"
        logger.warning("the SMTP server %s is unavailable: %s", host, detail)
        return ChannelUnavailable(detail, channel=Channel.EMAIL)
