"""A local stand-in for Twilio's Network Traversal Service, speaking its wire format to the SDK.

One endpoint: ``POST /2010-04-01/Accounts/{AccountSid}/Tokens.json`` (HTTP basic auth with the
account SID and auth token, optional form field ``Ttl`` in seconds, default and maximum 86400).
It answers 201 with a Token resource: ``account_sid``, ``date_created``, ``date_updated``
(RFC 2822), ``username``, ``password``, ``ttl`` (a string) and ``ice_servers`` — a STUN entry
without credentials, then TURN over UDP and TCP on 3478 and TURNS on 443, each
``{url, urls, username, credential}``, in Twilio's order. Every token is recorded in
``fake.issued``.

Errors are Twilio's JSON (``code``, ``message``, ``more_info``, ``status``):

- wrong credentials → 401 20003; another account's path → 404 20404;
- a ``Ttl`` that is not a whole number from 0 to 86400 → 400 (Twilio's code for that is not
  documented; this fake says 20001);
- ``fake.outage = True`` → 503 20500; ``fake.failure = 500`` → that status with 20500;
- ``fake.garbage = True`` → 200 with HTML; ``fake.delay`` → answers that many seconds late.
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

ACCOUNT_SID = "AC" + "0" * 31 + "3"
AUTH_TOKEN = "fake-twilio-tokens-auth-token"
MAX_TTL = 86400
STUN_HOST = "global.stun.twilio.com"
TURN_HOST = "global.turn.twilio.com"


@dataclass(frozen=True)
class IssuedToken:
    ttl: int
    username: str
    password: str


@dataclass
class FakeTwilioTokens:
    account_sid: str = ACCOUNT_SID
    auth_token: str = AUTH_TOKEN
    outage: bool = False
    failure: int | None = None
    garbage: bool = False
    delay: float = 0.0
    issued: list[IssuedToken] = field(default_factory=list)
    requests: int = 0

    @property
    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/healthz", self._health),
                Route(
                    "/2010-04-01/Accounts/{account_sid}/Tokens.json",
                    self._tokens,
                    methods=["POST"],
                ),
            ]
        )

    async def _health(self, request: Request) -> Response:
        return PlainTextResponse("ok")

    async def _tokens(self, request: Request) -> Response:
        refused = await common_refusal(self, request)
        if refused is not None:
            return refused
        if self.failure is not None:
            return twilio_error(self.failure, 20500, "Internal Server Error")
        if request.path_params["account_sid"] != self.account_sid:
            return twilio_error(
                404, 20404, f"The requested resource {request.url.path} was not found"
            )
        form = await request.form()
        raw_ttl = str(form.get("Ttl", MAX_TTL))
        if not (raw_ttl.isascii() and raw_ttl.isdigit()) or int(raw_ttl) > MAX_TTL:
            return twilio_error(400, 20001, f"Invalid Ttl: {raw_ttl}")
        token = IssuedToken(
            ttl=int(raw_ttl),
            username=secrets.token_hex(32),
            password=secrets.token_urlsafe(32),
        )
        self.issued.append(token)
        return JSONResponse(self._resource(token), status_code=201)

    def _resource(self, token: IssuedToken) -> dict[str, Any]:
        now = format_datetime(datetime.now(UTC), usegmt=True)
        turn = [
            f"turn:{TURN_HOST}:3478?transport=udp",
            f"turn:{TURN_HOST}:3478?transport=tcp",
            f"turns:{TURN_HOST}:443?transport=tcp",
        ]
        stun = f"stun:{STUN_HOST}:3478"
        return {
            "account_sid": self.account_sid,
            "date_created": now,
            "date_updated": now,
            "ice_servers": [
                {"url": stun, "urls": stun},
                *(
                    {
                        "url": url,
                        "urls": url,
                        "username": token.username,
                        "credential": token.password,
                    }
                    for url in turn
                ),
            ],
            "password": token.password,
            "ttl": str(token.ttl),
            "username": token.username,
        }
