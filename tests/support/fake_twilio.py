"""A local stand-in for Twilio Verify v2, speaking its wire format to the real ``twilio`` SDK.

Two endpoints, as the adapter uses them (form-encoded POST, HTTP basic auth with the account SID
and auth token):

- ``/v2/Services/{ServiceSid}/Verifications`` — starts a verification (201, ``status=pending``);
  sending again within its 10 minutes reuses it and its code, like Twilio; a sixth send within
  10 minutes is refused with 60203.
- ``/v2/Services/{ServiceSid}/VerificationCheck`` — 200 ``approved``/``pending``; no pending
  verification → 404 20404; a sixth check → 429 60202.

Errors are Twilio's JSON (``code``, ``message``, ``more_info``, ``status``). The test reads the
last code sent to a number from ``fake.sent[to]``, moves the fake's time with ``fake.now``, and
can make it fail with ``fake.outage = True`` (503), answer 200 with HTML like a captive portal
(``fake.garbage = True``) or answer slowly with ``fake.delay`` (seconds).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from tests.support.twilio_wire import common_refusal, twilio_error

ACCOUNT_SID = "AC" + "0" * 31 + "1"
AUTH_TOKEN = "fake-twilio-auth-token"
SERVICE_SID = "VA" + "0" * 31 + "1"
LIFETIME = timedelta(minutes=10)
MAX_CHECKS = 5
MAX_SENDS = 5
CHANNELS = ("sms", "call", "email", "whatsapp", "sna", "auto")


def _sid(prefix: str) -> str:
    return prefix + secrets.token_hex(16)


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Verification:
    sid: str
    to: str
    channel: str
    locale: str
    code: str
    created: datetime
    updated: datetime
    sends: list[datetime] = field(default_factory=list)
    checks: int = 0
    status: str = "pending"


@dataclass
class FakeTwilioVerify:
    account_sid: str = ACCOUNT_SID
    auth_token: str = AUTH_TOKEN
    service_sid: str = SERVICE_SID
    now: datetime = field(default_factory=lambda: datetime.now(UTC))
    outage: bool = False
    delay: float = 0.0
    garbage: bool = False
    sent: dict[str, str] = field(default_factory=dict)
    locales: dict[str, str] = field(default_factory=dict)
    requests: int = 0
    _pending: dict[str, Verification] = field(default_factory=dict)
    _send_times: dict[str, list[datetime]] = field(default_factory=dict)

    @property
    def app(self) -> Starlette:
        prefix = "/v2/Services/{service_sid}"
        return Starlette(
            routes=[
                Route("/healthz", self._health),
                Route(prefix + "/Verifications", self._verifications, methods=["POST"]),
                Route(prefix + "/VerificationCheck", self._check, methods=["POST"]),
            ]
        )

    async def _health(self, request: Request) -> Response:
        return PlainTextResponse("ok")

    async def _refusal(self, request: Request) -> Response | None:
        refused = await common_refusal(self, request)
        if refused is not None:
            return refused
        if request.path_params["service_sid"] != self.service_sid:
            return twilio_error(
                404, 20404, f"The requested resource {request.url.path[3:]} was not found"
            )
        return None

    def _live(self, to: str) -> Verification | None:
        verification = self._pending.get(to)
        if verification is None:
            return None
        if verification.status != "pending" or self.now >= verification.created + LIFETIME:
            del self._pending[to]
            return None
        return verification

    def _body(self, verification: Verification) -> dict[str, Any]:
        return {
            "sid": verification.sid,
            "service_sid": self.service_sid,
            "account_sid": self.account_sid,
            "to": verification.to,
            "channel": verification.channel,
            "status": verification.status,
            "valid": verification.status == "approved",
            "amount": None,
            "payee": None,
            "date_created": _iso(verification.created),
            "date_updated": _iso(verification.updated),
        }

    async def _verifications(self, request: Request) -> Response:
        refusal = await self._refusal(request)
        if refusal is not None:
            return refusal
        form = await request.form()
        to, channel = str(form.get("To", "")), str(form.get("Channel", ""))
        if not to.startswith("+") or not to[1:].isdigit() or not 8 <= len(to) <= 16:
            return twilio_error(400, 60200, "Invalid parameter `To`: " + to)
        if channel not in CHANNELS:
            return twilio_error(400, 60200, "Invalid parameter: Channel")
        recent = [t for t in self._send_times.get(to, []) if t > self.now - LIFETIME]
        if len(recent) >= MAX_SENDS:
            return twilio_error(429, 60203, "Max send attempts reached")
        self._send_times[to] = [*recent, self.now]
        verification = self._live(to)
        if verification is None:
            verification = Verification(
                sid=_sid("VE"),
                to=to,
                channel=channel,
                locale=str(form.get("Locale", "")),
                code=f"{secrets.randbelow(10**6):06d}",
                created=self.now,
                updated=self.now,
            )
            self._pending[to] = verification
        verification.sends.append(self.now)
        verification.updated = self.now
        self.sent[to] = verification.code
        self.locales[to] = str(form.get("Locale", ""))
        body = self._body(verification) | {
            "lookup": {"carrier": None},
            "send_code_attempts": [
                {"attempt_sid": _sid("VL"), "channel": channel, "time": _iso(moment)}
                for moment in verification.sends
            ],
            "sna": None,
            "url": f"https://verify.twilio.com/v2/Services/{self.service_sid}/Verifications/"
            + verification.sid,
        }
        return JSONResponse(body, status_code=201)

    async def _check(self, request: Request) -> Response:
        refusal = await self._refusal(request)
        if refusal is not None:
            return refusal
        form = await request.form()
        to, code = str(form.get("To", "")), str(form.get("Code", ""))
        if not code:
            return twilio_error(400, 60200, "Invalid parameter: Code")
        verification = self._live(to)
        if verification is None:
            return twilio_error(
                404, 20404, f"The requested resource {request.url.path[3:]} was not found"
            )
        if verification.checks >= MAX_CHECKS:
            return twilio_error(429, 60202, "Max check attempts reached")
        verification.checks += 1
        verification.updated = self.now
        if secrets.compare_digest(code, verification.code):
            verification.status = "approved"
        body = self._body(verification) | {"sna_attempts_error_codes": []}
        return JSONResponse(body, status_code=200)
