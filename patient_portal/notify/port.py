"""The :class:`Notifier` port: one message to a patient, by SMS and/or e-mail, at most once per key.

Errors::

    NotifyError                   detail: short, safe to log (no address, no body)
     ├── ChannelUnavailable       the provider is down, slow or refuses our credentials: retry later
     └── Undeliverable            this number/address cannot be reached: do not retry

Channel adapters (:class:`SmsSender`, :class:`EmailSender`) raise both. :class:`Composite`, the
:class:`Notifier` the portal wires, raises only :class:`ChannelUnavailable` (when any channel had
an outage, so that the job running it is retried); a bad number or address is reported in the
:class:`SendReport`, never raised, because retrying cannot fix it.

Message text carries no medical detail — clinic name, time and a link — and neither it nor the
recipient's full number or address ever reaches a log, an exception message or a ``repr``.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from enum import StrEnum
from functools import partial
from typing import Final, Protocol

logger = logging.getLogger(__name__)

DEFAULT_MEMORY: Final = 10_000
_Call = Callable[[], Awaitable[str]]


def mask_email(address: str) -> str:
    """The address with its local part hidden (``***@example.jp``), for logs."""
    _, at, domain = address.rpartition("@")
    return "***@" + domain if at and domain else "***"


class Channel(StrEnum):
    SMS = "sms"
    EMAIL = "email"


class Outcome(StrEnum):
    SENT = "sent"  # handed to the provider (not necessarily delivered yet)
    SKIPPED = "skipped"  # no address for this channel, or no channel configured
    FAILED = "failed"  # see ChannelResult.retryable


class NotifyError(Exception):
    """Sending failed. ``detail`` (also ``str(error)``) names the provider and its error code;
    it never contains a phone number, an address or the message text."""

    def __init__(self, detail: str, *, channel: Channel | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.channel = channel


class ChannelUnavailable(NotifyError):
    """The provider is down, too slow, rate-limiting or refusing our credentials. Retry the same
    message later. ``report`` is set when raised by :class:`Composite`: what happened on each
    channel (a channel already sent is not sent again on the retry)."""

    def __init__(
        self, detail: str, *, channel: Channel | None = None, report: SendReport | None = None
    ) -> None:
        super().__init__(detail, channel=channel)
        self.report = report


class Undeliverable(NotifyError):
    """This recipient cannot be reached on this channel (invalid or landline number, STOP sent,
    mailbox refused). Retrying will not help; the caller may record it for staff to follow up."""


@dataclass(frozen=True)
class Message:
    """One notification. ``key`` identifies it for de-duplication, e.g.
    ``"appointment:<id>:reminder:1440"``: the same key is sent at most once per channel by a
    :class:`Composite` (within its process). ``to_phone`` is E.164, ``to_email`` a plain address;
    either may be ``None``. The body is plain text: clinic name, time, link — no medical detail.
    ``repr()`` shows neither recipient nor body."""

    to_phone: str | None = field(repr=False)
    to_email: str | None = field(repr=False)
    subject: str
    body: str = field(repr=False)
    key: str

    def __post_init__(self) -> None:
        if not self.key:
            raise ValueError("a message needs a key")


@dataclass(frozen=True)
class ChannelResult:
    """What one channel did with a message. ``provider_id`` is the provider's id (Twilio message
    SID, e-mail Message-ID) when sent. ``retryable`` is true for a failure due to an outage,
    false for an undeliverable recipient. ``repeated``: sent earlier for the same key, not again."""

    channel: Channel
    outcome: Outcome
    provider_id: str | None = None
    detail: str = ""
    retryable: bool = False
    repeated: bool = False


@dataclass(frozen=True)
class SendReport:
    key: str
    sms: ChannelResult
    email: ChannelResult

    @property
    def results(self) -> tuple[ChannelResult, ChannelResult]:
        return (self.sms, self.email)

    @property
    def delivered(self) -> bool:
        """Whether at least one channel handed the message to its provider."""
        return any(result.outcome is Outcome.SENT for result in self.results)

    @property
    def retryable(self) -> bool:
        """Whether a channel failed because of an outage (sending again may succeed)."""
        return any(r.outcome is Outcome.FAILED and r.retryable for r in self.results)

    def summary(self) -> str:
        """``"sms sent, email skipped"``: safe to log."""
        return ", ".join(f"{r.channel} {r.outcome}" for r in self.results)


class Notifier(Protocol):
    async def send(self, message: Message) -> SendReport:
        """Send ``message`` on every channel it has an address for.

        Raises :class:`ChannelUnavailable` when a channel had an outage: send the same message
        (same ``key``) again later. An undeliverable recipient is reported, not raised.
        """
        ...


class SmsSender(Protocol):
    async def send_sms(self, to: str, body: str, *, key: str) -> str:
        """Hand ``body`` to the provider for ``to`` (E.164); return the provider's message id.

        Raises :class:`ChannelUnavailable` or :class:`Undeliverable`. Every network wait is
        bounded by a timeout; there are no retries inside (a retried send may be a second SMS).
        """
        ...

    async def aclose(self) -> None: ...


class EmailSender(Protocol):
    async def send_email(self, to: str, subject: str, body: str, *, key: str) -> str:
        """Hand the e-mail to the provider; return its id. Errors as :meth:`SmsSender.send_sms`."""
        ...

    async def aclose(self) -> None: ...


@dataclass
class _KeyLock:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    users: int = 0


class Composite:
    """The :class:`Notifier`: SMS when the message has a phone number, e-mail when it has an
    address, each through its channel adapter (Twilio or console; SMTP or console).

    De-duplication is per ``(key, channel)`` and **within this process only**: a channel that sent
    the message (or found the recipient undeliverable) is not tried again when the same key comes
    back — typically the job retrying after :class:`ChannelUnavailable` on the other channel. The
    record keeps the last ``memory`` entries. Across processes and restarts, de-duplication is the
    caller's job: enqueue each message under a job key derived from the message key, so the job
    queue runs it once. Delivery stays at-least-once: a send that timed out may still have
    reached the provider, and a retry then sends it again.

    Sends for the same key are serialised; different keys go concurrently. :meth:`aclose` closes
    both channel adapters.
    """

    def __init__(
        self,
        *,
        sms: SmsSender | None = None,
        email: EmailSender | None = None,
        memory: int = DEFAULT_MEMORY,
    ) -> None:
        if memory < 1:
            raise ValueError("memory must be at least 1")
        self._sms = sms
        self._email = email
        self._memory = memory
        self._done: OrderedDict[tuple[str, Channel], ChannelResult] = OrderedDict()
        self._locks: dict[str, _KeyLock] = {}

    async def aclose(self) -> None:
        for channel in (self._sms, self._email):
            if channel is not None:
                await channel.aclose()

    async def send(self, message: Message) -> SendReport:
        sms_call: _Call | None = None
        email_call: _Call | None = None
        if self._sms is not None and message.to_phone:
            sms_call = partial(self._sms.send_sms, message.to_phone, message.body, key=message.key)
        if self._email is not None and message.to_email:
            email_call = partial(
                self._email.send_email,
                message.to_email,
                message.subject,
                message.body,
                key=message.key,
            )
        async with self._exclusive(message.key):
            sms = await self._channel(message.key, Channel.SMS, message.to_phone, sms_call)
            email = await self._channel(message.key, Channel.EMAIL, message.to_email, email_call)
        report = SendReport(message.key, sms, email)
        if report.retryable:
            logger.warning("message %s not fully sent: %s", message.key, report.summary())
            failed = [r for r in report.results if r.outcome is Outcome.FAILED and r.retryable]
            detail = "; ".join(f"{r.channel}: {r.detail}" for r in failed)
            raise ChannelUnavailable(detail, channel=failed[0].channel, report=report)
        logger.info("message %s: %s", message.key, report.summary())
        return report

    async def _channel(
        self, key: str, channel: Channel, address: str | None, call: _Call | None
    ) -> ChannelResult:
        if not address:
            return ChannelResult(channel, Outcome.SKIPPED, detail="no address")
        if call is None:
            logger.warning("message %s has an address for %s but no such channel", key, channel)
            return ChannelResult(channel, Outcome.SKIPPED, detail="no channel configured")
        earlier = self._done.get((key, channel))
        if earlier is not None:
            self._done.move_to_end((key, channel))
            return replace(earlier, repeated=True)
        try:
            provider_id = await call()
        except Undeliverable as error:
            result = ChannelResult(channel, Outcome.FAILED, detail=error.detail)
        except ChannelUnavailable as error:
            return ChannelResult(channel, Outcome.FAILED, detail=error.detail, retryable=True)
        else:
            result = ChannelResult(channel, Outcome.SENT, provider_id)
        self._remember(key, result)
        return result

    def _remember(self, key: str, result: ChannelResult) -> None:
        self._done[(key, result.channel)] = result
        self._done.move_to_end((key, result.channel))
        while len(self._done) > self._memory:
            self._done.popitem(last=False)

    @asynccontextmanager
    async def _exclusive(self, key: str) -> AsyncIterator[None]:
        entry = self._locks.setdefault(key, _KeyLock())
        entry.users += 1
        try:
            async with entry.lock:
                yield
        finally:
            entry.users -= 1
            if entry.users == 0:
                del self._locks[key]
