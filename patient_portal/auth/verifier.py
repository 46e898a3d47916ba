"""One-time SMS codes behind the :class:`Verifier` port: Twilio Verify, or the console for demos.

Errors::

    VerifierError                 text: Text (bilingual, safe to show), status: HTTP hint
     ├── TooManyAttempts          too many codes sent or checked for this number (429)
     ├── InvalidRecipient         the provider will not send an SMS to this number (400)
     └── ProviderUnavailable      the provider is down, slow or refuses our credentials (503)

A wrong, expired or already used code is not an error: :meth:`Verifier.check` returns ``False``.
Phone numbers reach this module already in E.164
(:func:`patient_portal.auth.phone.normalise_mobile`) and leave it only masked (``***5678``) in logs.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import secrets
import unicodedata
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Protocol

from tortoise.expressions import F

from patient_portal.auth.models import OtpChallenge
from patient_portal.auth.phone import mask
from patient_portal.crypto.keyring import current_keyring
from patient_portal.problems import Text
from patient_portal.twilio_client import TwilioConnection

logger = logging.getLogger(__name__)

Clock = Callable[[], datetime]
PHONE_PURPOSE: Final = "phone"
CODE_PURPOSE: Final = "otp-code"
MAX_CODE_LENGTH: Final = 16
LOCALES: Final = ("ja", "en")


class VerifierError(Exception):
    """Sending or checking a code failed. ``text`` is safe to show; no phone number inside."""

    status = 400
    text = Text("確認コードを処理できませんでした", "The code could not be processed")

    def __init__(self, detail: str = "") -> None:
        super().__init__(detail or self.text.en)
        self.detail = detail


class TooManyAttempts(VerifierError):
    status = 429
    text = Text(
        "確認コードの送信または入力が多すぎます。しばらく待ってからもう一度お試しください",
        "Too many codes were sent or tried for this number. Please wait and try again.",
    )


class InvalidRecipient(VerifierError):
    status = 400
    text = Text(
        "この電話番号には SMS を送信できません。別の携帯電話番号をお試しください",
        "A text message cannot be sent to this number. Please try another mobile number.",
    )


class ProviderUnavailable(VerifierError):
    status = 503
    text = Text(
        "SMS を送信できませんでした。しばらくしてからもう一度お試しください",
        "The text message service is unavailable. Please try again in a moment.",
    )


class Verifier(Protocol):
    async def start(self, phone: str, *, locale: str) -> None:
        """Send a fresh code to ``phone`` (E.164) in ``locale`` (``ja`` or ``en``)."""
        ...

    async def check(self, phone: str, code: str) -> bool:
        """Whether ``code`` is the live code of ``phone``; a right code works once.

        Raises :class:`TooManyAttempts` once the code has been tried too often (it is dead then;
        start again).
        """
        ...


def utc_now() -> datetime:
    return datetime.now(UTC)


def _typed_code(code: str) -> str:
    return unicodedata.normalize("NFKC", code).strip().replace(" ", "")[:MAX_CODE_LENGTH]


class ConsoleVerifier:
    """Codes kept in ``OtpChallenge`` rows and "sent" to the log — for the embedded default and
    demos only (production refuses the console provider).

    The log line ``SMS code for ***5678: 123456`` (WARNING) names the number masked. The demo may
    pass ``fixed_code`` so a visitor can sign in without reading logs.

    A new code for a number replaces its previous one, inheriting its failed attempts so that
    asking for another code does not buy more guesses. Codes are stored as an HMAC under the
    keyring's index key, salted with the challenge id.
    """

    def __init__(
        self,
        clock: Clock = utc_now,
        *,
        code_length: int = 6,
        ttl: timedelta = timedelta(minutes=10),
        max_attempts: int = 5,
        fixed_code: str | None = None,
    ) -> None:
        if fixed_code is not None and not fixed_code.isdigit():
            raise ValueError("fixed_code must be digits")
        self._clock = clock
        self._code_length = code_length
        self._ttl = ttl
        self._max_attempts = max_attempts
        self._fixed_code = fixed_code

    def _now(self) -> datetime:
        return self._clock().astimezone(UTC)

    def _new_code(self) -> str:
        if self._fixed_code is not None:
            return self._fixed_code
        return f"{secrets.randbelow(10**self._code_length):0{self._code_length}d}"

    @staticmethod
    def _hash(challenge_id: uuid.UUID, code: str) -> str:
        return current_keyring().blind_index(f"{challenge_id}\x00{code}", CODE_PURPOSE)

    async def start(self, phone: str, *, locale: str) -> None:
        now = self._now()
        phone_index = current_keyring().blind_index(phone, PHONE_PURPOSE)
        previous = await OtpChallenge.filter(phone_index=phone_index).order_by("-created_at")
        carried = next(
            (
                c.attempts
                for c in previous
                if c.consumed_at is None and c.expires_at > now and c.attempts < self._max_attempts
            ),
            0,
        )
        await OtpChallenge.filter(phone_index=phone_index).delete()
        code = self._new_code()
        challenge_id = uuid.uuid4()
        await OtpChallenge.create(
            id=challenge_id,
            phone_index=phone_index,
            code_hash=self._hash(challenge_id, code),
            created_at=now,
            expires_at=now + self._ttl,
            attempts=carried,
        )
        logger.warning("SMS code for %s: %s", mask(phone), code)

    async def check(self, phone: str, code: str) -> bool:
        now = self._now()
        phone_index = current_keyring().blind_index(phone, PHONE_PURPOSE)
        challenge = (
            await OtpChallenge.filter(phone_index=phone_index, consumed_at=None)
            .order_by("-created_at")
            .first()
        )
        if challenge is None or challenge.expires_at <= now:
            return False
        # Count the attempt first, atomically: concurrent guesses cannot exceed the maximum.
        counted = await OtpChallenge.filter(
            id=challenge.id, consumed_at=None, attempts__lt=self._max_attempts
        ).update(attempts=F("attempts") + 1)
        if not counted:
            if challenge.attempts >= self._max_attempts:
                raise TooManyAttempts("the code was tried too often")
            return False  # used by a concurrent check in the meantime
        if not hmac.compare_digest(
            challenge.code_hash, self._hash(challenge.id, _typed_code(code))
        ):
            return False
        # Single use: only one of two concurrent right answers consumes the code.
        consumed = await OtpChallenge.filter(id=challenge.id, consumed_at=None).update(
            consumed_at=now
        )
        return consumed == 1


# Twilio error codes (https://www.twilio.com/docs/errors/NNNNN) and what they mean here.
_NOT_FOUND: Final = 20404  # no pending verification: never started, expired, approved or canceled
_TOO_MANY: Final = frozenset({60202, 60203})  # max check attempts / max send attempts
_BAD_RECIPIENT: Final = frozenset({60200, 60205, 21211, 21408, 21614})


class TwilioVerifier:
    """Twilio Verify v2 through the official SDK's asyncio support.

    The SDK's async API (``create_async``) is used rather than the sync client in a thread: a
    slow Twilio then holds no thread, and cancelling a request (client gone, timeout) really stops
    it. Each call also runs under ``asyncio.timeout(timeout)``; there are no retries (a retried
    send is a second SMS, billed).

    The connection (:mod:`patient_portal.twilio_client`) explains why its transport is not the
    SDK's ``AsyncTwilioHttpClient``; everything above the transport is the SDK's own.

    The aiohttp session is made on first use, inside the running event loop, and must be closed
    with :meth:`aclose` (or ``async with``). ``twilio`` is imported only here, so an installation
    on the console provider never loads it. ``base_url`` points the Verify domain elsewhere (the
    tests' fake server).
    """

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        service_sid: str,
        *,
        base_url: str | None = None,
        timeout: float = 10,
    ) -> None:
        self._twilio = TwilioConnection(account_sid, auth_token, timeout=timeout)
        self._service_sid = service_sid
        self._base_url = base_url
        self._timeout = timeout

    async def __aenter__(self) -> TwilioVerifier:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._twilio.aclose()

    def _service(self) -> Any:
        client = self._twilio.client()
        if self._base_url is not None:
            client.verify.base_url = self._base_url
        return client.verify.v2.services(self._service_sid)

    async def start(self, phone: str, *, locale: str) -> None:
        service = self._service()
        await self._call(
            service.verifications.create_async(
                to=phone, channel="sms", locale=locale if locale in LOCALES else "ja"
            ),
            phone,
        )
        logger.info("verification code sent to %s", mask(phone))

    async def check(self, phone: str, code: str) -> bool:
        typed = _typed_code(code)
        if not typed:
            return False
        service = self._service()
        result = await self._call(
            service.verification_checks.create_async(to=phone, code=typed), phone
        )
        if result is None:
            return False
        status = str(getattr(result, "status", ""))
        if status == "max_attempts_reached":
            raise TooManyAttempts("twilio: max_attempts_reached")
        return status == "approved"

    async def _call(self, call: Any, phone: str) -> Any:
        """Await an SDK call; ``None`` when Twilio has no pending verification for the number."""
        import aiohttp
        from twilio.base.exceptions import (  # type: ignore[import-untyped]
            TwilioException,
        )

        try:
            async with asyncio.timeout(self._timeout):
                return await call
        except TimeoutError:
            logger.warning("Twilio Verify did not answer within %ss", self._timeout)
            raise ProviderUnavailable("twilio: timeout") from None
        except (aiohttp.ClientError, OSError) as error:
            logger.warning("Twilio Verify is unreachable: %s", type(error).__name__)
            raise ProviderUnavailable(f"twilio: {type(error).__name__}") from None
        except TwilioException as error:
            return self._translate(error, phone)
        except ValueError:  # a 2xx answer that is not JSON: a proxy or captive portal, not Twilio
            logger.warning("Twilio Verify answered with something that is not JSON")
            raise ProviderUnavailable("twilio: unparsable answer") from None

    def _translate(self, error: Any, phone: str) -> None:
        code = getattr(error, "code", None)
        status = int(getattr(error, "status", 0) or 0)
        code = int(code) if isinstance(code, int | str) and str(code).isdigit() else None
        detail = f"twilio: HTTP {status}, error {code}"
        if code == _NOT_FOUND or (status == 404 and code is None):
            if "VerificationCheck" in str(getattr(error, "uri", "")):
                return
            logger.error("Twilio Verify service not found (check the service SID): %s", detail)
            raise ProviderUnavailable(detail)
        if code in _TOO_MANY:
            logger.info("Twilio Verify refused %s: %s", mask(phone), detail)
            raise TooManyAttempts(detail)
        if code in _BAD_RECIPIENT or status == 400:
            logger.info("Twilio Verify cannot send to %s: %s", mask(phone), detail)
            raise InvalidRecipient(detail)
        if status in (401, 403):
            logger.error("Twilio refused the credentials (account SID / auth token): %s", detail)
        else:
            logger.warning("Twilio Verify failed: %s", detail)
        raise ProviderUnavailable(detail)
