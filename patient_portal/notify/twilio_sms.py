"""SMS through Twilio Programmable Messaging (``POST /2010-04-01/Accounts/{AC…}/Messages.json``).

Built like :class:`patient_portal.auth.verifier.TwilioVerifier`: the official SDK's asyncio API
(``messages.create_async``) over the shared :mod:`patient_portal.twilio_client` connection, each
call under ``asyncio.timeout``, no retries (a retried send is a second, billed SMS), and Twilio's
errors translated here, at one seam:

=================================================  =========================================
Twilio                                             here
=================================================  =========================================
21211 invalid ``To``, 21612 not routable,          :class:`Undeliverable`
21614 not a mobile, 21408 region not enabled
21610 the recipient replied STOP                   :class:`Undeliverable`
20003 / 401 / 403 credentials refused              :class:`ChannelUnavailable`, logged at ERROR
20429 / 429, 5xx, timeout, network, not JSON       :class:`ChannelUnavailable`
any other 4xx (our request or configuration)       :class:`ChannelUnavailable`, logged at ERROR
=================================================  =========================================

Twilio's own error messages quote the number, so only the HTTP status and error code are kept.
``twilio`` is imported on first use only.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Final

from patient_portal.auth.phone import mask as mask_phone
from patient_portal.notify.port import Channel, ChannelUnavailable, Undeliverable
from patient_portal.twilio_client import TwilioConnection

logger = logging.getLogger(__name__)

# https://www.twilio.com/docs/errors/NNNNN
_UNSUBSCRIBED: Final = 21610
_BAD_RECIPIENT: Final = frozenset({21211, 21408, 21612, 21614})
_AUTH_FAILED: Final = 20003
_TOO_MANY_REQUESTS: Final = 20429


class TwilioSms:
    """An :class:`~patient_portal.notify.port.SmsSender` on Twilio Messaging.

    Sends from ``from_number`` (E.164 or an alphanumeric sender ID) and/or through the Messaging
    Service ``messaging_service_sid`` (then Twilio picks the sender from its pool); at least one
    is required. ``base_url`` points the main API domain elsewhere (the tests' fake server).
    The aiohttp session is made on first use, inside the running loop; close it with
    :meth:`aclose` (or ``async with``) — the adapter can be used again afterwards.

    The message ``key`` is not sent: Twilio's Messages API has no idempotency key, so
    de-duplication is the caller's (:class:`~patient_portal.notify.port.Composite`, job keys).
    """

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        *,
        from_number: str | None = None,
        messaging_service_sid: str | None = None,
        base_url: str | None = None,
        timeout: float = 10,
    ) -> None:
        if not from_number and not messaging_service_sid:
            raise ValueError("TwilioSms needs from_number or messaging_service_sid")
        self._twilio = TwilioConnection(account_sid, auth_token, timeout=timeout)
        self._from_number = from_number or None
        self._messaging_service_sid = messaging_service_sid or None
        self._base_url = base_url
        self._timeout = timeout

    async def __aenter__(self) -> TwilioSms:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._twilio.aclose()

    def _messages(self) -> Any:
        client = self._twilio.client()
        if self._base_url is not None:
            client.api.base_url = self._base_url
        return client.api.account.messages

    async def send_sms(self, to: str, body: str, *, key: str) -> str:
        sender: dict[str, str] = {}
        if self._from_number is not None:
            sender["from_"] = self._from_number
        if self._messaging_service_sid is not None:
            sender["messaging_service_sid"] = self._messaging_service_sid
        message = await self._call(self._messages().create_async(to=to, body=body, **sender), to)
        sid = str(getattr(message, "sid", "") or "")
        if not sid:
            logger.warning("Twilio accepted an SMS but returned no message SID")
            raise ChannelUnavailable("twilio: answer without a message SID", channel=Channel.SMS)
        logger.info("SMS to %s handed to Twilio as %s", mask_phone(to), sid)
        return sid

    async def _call(self, call: Any, to: str) -> Any:
        import aiohttp
        from twilio.base.exceptions import (  # type: ignore[import-untyped]
            TwilioException,
        )

        try:
            async with asyncio.timeout(self._timeout):
                return await call
        except TimeoutError:
            logger.warning("Twilio Messaging did not answer within %ss", self._timeout)
            raise ChannelUnavailable("twilio: timeout", channel=Channel.SMS) from None
        except (aiohttp.ClientError, OSError) as error:
            logger.warning("Twilio Messaging is unreachable: %s", type(error).__name__)
            raise ChannelUnavailable(
                f"twilio: {type(error).__name__}", channel=Channel.SMS
            ) from None
        except TwilioException as error:
            raise self._translate(error, to) from None
        except ValueError:  # a 2xx answer that is not JSON: a proxy or captive portal
            logger.warning("Twilio Messaging answered with something that is not JSON")
            raise ChannelUnavailable("twilio: unparsable answer", channel=Channel.SMS) from None

    @staticmethod
    def _translate(error: Any, to: str) -> ChannelUnavailable | Undeliverable:
        raw_code = str(getattr(error, "code", None))
        status = int(getattr(error, "status", 0) or 0)
        code = int(raw_code) if raw_code.isdigit() else None
        detail = f"twilio: HTTP {status}, error {code}"
        if code == _UNSUBSCRIBED:
            logger.info("%s has unsubscribed from our SMS (STOP): %s", mask_phone(to), detail)
            return Undeliverable(detail, channel=Channel.SMS)
        if code in _BAD_RECIPIENT:
            logger.info("Twilio cannot send an SMS to %s: %s", mask_phone(to), detail)
            return Undeliverable(detail, channel=Channel.SMS)
        if code == _AUTH_FAILED or status in (401, 403):
            logger.error("Twilio refused the credentials (account SID / auth token): %s", detail)
        elif code == _TOO_MANY_REQUESTS or status == 429 or status >= 500:
            logger.warning("Twilio Messaging is unavailable: %s", detail)
        else:
            logger.error(
                "Twilio refused the SMS request (check the sender number or messaging "
                "service SID): %s",
                detail,
            )
        return ChannelUnavailable(detail, channel=Channel.SMS)
