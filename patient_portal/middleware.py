"""Pure ASGI middleware: the request's language, and the security headers on every response."""

from __future__ import annotations

from http.cookies import CookieError, SimpleCookie
from typing import Final

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from patient_portal.i18n import COOKIE, choose_locale

CONTENT_SECURITY_POLICY: Final = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
# Camera, microphone and Bluetooth stay off here; the pages that need them open them.
PERMISSIONS_POLICY: Final = (
    "camera=(), microphone=(), bluetooth=(), geolocation=(), payment=(), usb=(), serial=(), hid=()"
)


class LocaleMiddleware:
    """Puts the request's language in ``scope["state"]["locale"]`` ("ja" or "en")."""

    def __init__(self, app: ASGIApp, default_locale: str) -> None:
        self.app = app
        self.default_locale = default_locale

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            cookie_value: str | None = None
            accept_language: str | None = None
            for name, value in scope.get("headers", []):
                if name == b"cookie":
                    cookie_value = _cookie(value.decode("latin-1"), COOKIE) or cookie_value
                elif name == b"accept-language":
                    accept_language = value.decode("latin-1")
            locale = choose_locale(cookie_value, accept_language, self.default_locale)
            scope.setdefault("state", {})["locale"] = locale
        await self.app(scope, receive, send)


def _cookie(header: str, name: str) -> str | None:
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(header)
    except CookieError:
        return None
    morsel = jar.get(name)
    return morsel.value if morsel else None


class SecurityHeadersMiddleware:
    """Adds CSP, framing, referrer, permissions and (over TLS) HSTS headers to every response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        over_tls = scope.get("scheme") == "https"

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
                headers.setdefault("X-Content-Type-Options", "nosniff")
                headers.setdefault("X-Frame-Options", "DENY")
                headers.setdefault("Referrer-Policy", "same-origin")
                headers.setdefault("Permissions-Policy", PERMISSIONS_POLICY)
                headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
                headers.setdefault("Cross-Origin-Resource-Policy", "same-origin")
                if over_tls:
                    headers.setdefault(
                        "Strict-Transport-Security", "max-age=63072000; includeSubDomains"
                    )
            await send(message)

        await self.app(scope, receive, send_with_headers)
