"""What every fake Twilio product answers the same way: error bodies, and the checks a request
meets before the product looks at it (delay, outage, garbage, HTTP Basic credentials)."""

from __future__ import annotations

import asyncio
import base64
import binascii
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response


def twilio_error(status: int, code: int, message: str) -> JSONResponse:
    """Twilio's error document (``code``, ``message``, ``more_info``, ``status``)."""
    return JSONResponse(
        {
            "code": code,
            "message": message,
            "more_info": f"https://www.twilio.com/docs/errors/{code}",
            "status": status,
        },
        status_code=status,
    )


async def common_refusal(fake: Any, request: Request) -> Response | None:
    """Counts the request, then applies ``fake.delay``, ``fake.outage``, ``fake.garbage`` and the
    account's Basic credentials; None when the request may go on to the product."""
    fake.requests += 1
    if fake.delay:
        await asyncio.sleep(fake.delay)
    if fake.outage:
        return twilio_error(503, 20500, "Service Unavailable")
    if fake.garbage:
        return PlainTextResponse("<html>Welcome to the hotel Wi-Fi</html>")
    header = request.headers.get("authorization", "")
    scheme, _, encoded = header.partition(" ")
    try:
        user, _, password = base64.b64decode(encoded).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        user = password = ""
    if scheme.lower() != "basic" or (user, password) != (fake.account_sid, fake.auth_token):
        return twilio_error(401, 20003, "Authenticate")
    return None
