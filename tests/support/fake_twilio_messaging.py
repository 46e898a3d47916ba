"""A local stand-in for Twilio Programmable Messaging, speaking its wire format to the real SDK.

One endpoint, as the adapter uses it: ``POST /2010-04-01/Accounts/{AccountSid}/Messages.json``
(form ``To``, ``From`` and/or ``MessagingServiceSid``, ``Body``; HTTP basic auth with the account
SID and auth token). A send answers 201 with a Message resource (``sid`` ``SM…``, ``status``
``queued``, ``num_segments`` counted as GSM-7 or UCS-2 like Twilio) and is recorded in
``fake.sent``.

Errors are Twilio's JSON (``code``, ``message``, ``more_info``, ``status``); like Twilio's, their
messages quote the number. Recipients behave like Twilio's test-credential magic numbers, and the
sets can be changed per test:

- ``fake.invalid`` (``+15005550001``) → 400 21211; ``fake.unroutable`` (``+15005550002``) →
  400 21612; ``fake.not_mobile`` (``+15005550009``) → 400 21614;
  ``fake.unsubscribed`` (``+15005550004``, a recipient who replied STOP) → 400 21610;
- a ``To`` that is not E.164 → 400 21211; no ``Body`` → 400 21602; neither ``From`` nor
  ``MessagingServiceSid`` → 400 21603;
- wrong credentials → 401 20003; another account's path → 404 20404;
- ``fake.outage = True`` → 503 20500, ``fake.rate_limited = True`` → 429 20429,
  ``fake.garbage = True`` → 200 with HTML, ``fake.delay`` → answers that many seconds late.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from tests.support.twilio_wire import common_refusal, twilio_error

ACCOUNT_SID = "AC" + "0" * 31 + "2"
AUTH_TOKEN = "fake-twilio-messaging-token"
FROM_NUMBER = "+15005550006"
MESSAGING_SERVICE_SID = "MG" + "0" * 31 + "1"
GSM7 = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    "ÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà^{}\\[~]|€"
)


def segments(body: str) -> int:
    """How many SMS segments Twilio bills for ``body``: 160/153 GSM-7 or 70/67 UCS-2 units."""
    if set(body) <= GSM7:
        single, multi, units = 160, 153, len(body)
    else:
        single, multi, units = 70, 67, len(body.encode("utf-16-le")) // 2
    return 1 if units <= single else -(-units // multi)


@dataclass(frozen=True)
class SentMessage:
    sid: str
    to: str
    from_: str | None
    messaging_service_sid: str | None
    body: str


@dataclass
class FakeTwilioMessaging:
    account_sid: str = ACCOUNT_SID
    auth_token: str = AUTH_TOKEN
    invalid: set[str] = field(default_factory=lambda: {"+15005550001"})
    unroutable: set[str] = field(default_factory=lambda: {"+15005550002"})
    unsubscribed: set[str] = field(default_factory=lambda: {"+15005550004"})
    not_mobile: set[str] = field(default_factory=lambda: {"+15005550009"})
    outage: bool = False
    rate_limited: bool = False
    garbage: bool = False
    delay: float = 0.0
    sent: list[SentMessage] = field(default_factory=list)
    requests: int = 0

    @property
    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/healthz", self._health),
                Route(
                    "/2010-04-01/Accounts/{account_sid}/Messages.json",
                    self._messages,
                    methods=["POST"],
                ),
            ]
        )

    async def _health(self, request: Request) -> Response:
        return PlainTextResponse("ok")

    async def _refusal(self, request: Request) -> Response | None:
        refused = await common_refusal(self, request)
        if refused is not None:
            return refused
        if request.path_params["account_sid"] != self.account_sid:
            return twilio_error(
                404, 20404, f"The requested resource {request.url.path} was not found"
            )
        if self.rate_limited:
            return twilio_error(429, 20429, "Too Many Requests")
        return None

    def _recipient_error(self, to: str) -> Response | None:
        if to in self.invalid or not (to.startswith("+") and to[1:].isdigit() and len(to) > 8):
            return twilio_error(400, 21211, f"Invalid 'To' Phone Number: {to}")
        if to in self.unroutable:
            return twilio_error(
                400, 21612, f"The 'To' phone number: {to}, is not currently reachable"
            )
        if to in self.not_mobile:
            return twilio_error(400, 21614, f"'To' number {to} is not a valid mobile number")
        if to in self.unsubscribed:
            return twilio_error(400, 21610, "Attempt to send to unsubscribed recipient")
        return None

    async def _messages(self, request: Request) -> Response:
        refusal = await self._refusal(request)
        if refusal is not None:
            return refusal
        form = await request.form()
        to = str(form.get("To", ""))
        sender = str(form["From"]) if "From" in form else None
        service = str(form["MessagingServiceSid"]) if "MessagingServiceSid" in form else None
        body = str(form.get("Body", ""))
        if not sender and not service:
            return twilio_error(
                400, 21603, "A 'From' or 'MessagingServiceSid' parameter is required"
            )
        recipient_error = self._recipient_error(to)
        if recipient_error is not None:
            return recipient_error
        if not body:
            return twilio_error(400, 21602, "Message body is required.")
        sid = "SM" + secrets.token_hex(16)
        self.sent.append(SentMessage(sid, to, sender, service, body))
        return JSONResponse(self._resource(sid, to, sender, service, body), status_code=201)

    def _resource(
        self, sid: str, to: str, sender: str | None, service: str | None, body: str
    ) -> dict[str, Any]:
        now = format_datetime(datetime.now(UTC), usegmt=True)
        uri = f"/2010-04-01/Accounts/{self.account_sid}/Messages/{sid}"
        return {
            "account_sid": self.account_sid,
            "api_version": "2010-04-01",
            "body": body,
            "date_created": now,
            "date_sent": None,
            "date_updated": now,
            "direction": "outbound-api",
            "error_code": None,
            "error_message": None,
            "from": sender,
            "messaging_service_sid": service,
            "num_media": "0",
            "num_segments": str(segments(body)),
            "price": None,
            "price_unit": "USD",
            "sid": sid,
            "status": "accepted" if service and not sender else "queued",
            "subresource_uris": {"media": uri + "/Media.json"},
            "to": to,
            "uri": uri + ".json",
        }
