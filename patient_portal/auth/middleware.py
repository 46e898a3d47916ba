"""Who is asking (session cookie or bearer token), and CSRF protection for everything that writes.

``AuthMiddleware`` puts an :class:`AuthContext` in ``scope["state"]["auth"]`` for every request.
``CsrfMiddleware`` refuses any POST/PUT/PATCH/DELETE that carries ambient credentials (a cookie)
without a token bound to them: a session's own token, or, before sign-in, a token bound to a
random ``tsunagu_csrf`` cookie (double submit, so sign-in forms cannot be forged either). Bearer
requests carry no ambient credentials and need no token. Forms send ``csrf_token`` as a field;
scripts send the ``X-CSRF-Token`` header.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from email.parser import BytesParser
from email.policy import HTTP
from http.cookies import CookieError, SimpleCookie
from typing import Any, Final
from urllib.parse import parse_qs

from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from patient_portal.auth.policy import Principal
from patient_portal.auth.sessions import COOKIE as SESSION_COOKIE
from patient_portal.auth.sessions import SessionData

CSRF_COOKIE: Final = "tsunagu_csrf"
CSRF_FIELD: Final = "csrf_token"
CSRF_HEADER: Final = b"x-csrf-token"
UNSAFE: Final = frozenset({"POST", "PUT", "PATCH", "DELETE"})
MAX_FORM_BYTES: Final = 1_048_576
MAX_UPLOAD_BYTES: Final = 10 * 1_048_576  # multipart forms carry photos (8 MB each at most)


@dataclass(frozen=True, slots=True)
class AuthContext:
    principal: Principal | None = None
    session: SessionData | None = None
    session_token: str | None = None
    via_bearer: bool = False
    csrf_cookie: str | None = None

    @property
    def signed_in(self) -> bool:
        return self.principal is not None


Resolver = Callable[[str | None, str | None], Awaitable[AuthContext]]


def cookies_of(scope: Scope) -> dict[str, str]:
    jar: SimpleCookie = SimpleCookie()
    for name, value in scope.get("headers", []):
        if name == b"cookie":
            try:
                jar.load(value.decode("latin-1"))
            except CookieError:
                continue
    return {key: morsel.value for key, morsel in jar.items()}


def _bearer(scope: Scope) -> str | None:
    for name, value in scope.get("headers", []):
        if name == b"authorization":
            scheme, _, credentials = value.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer" and credentials.strip():
                return str(credentials.strip())
    return None


class AuthMiddleware:
    """Resolves the caller through ``resolve(session_token, bearer_token)`` (set on app state)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        resolve: Resolver = scope["app"].state.resolve_auth
        cookies = cookies_of(scope)
        context = await resolve(cookies.get(SESSION_COOKIE), _bearer(scope))
        scope.setdefault("state", {})["auth"] = context
        await self.app(scope, receive, send)


def auth_of(request: Request) -> AuthContext:
    context = getattr(request.state, "auth", None)
    return context if isinstance(context, AuthContext) else AuthContext()


def csrf_token_for(secret_key: str, context: AuthContext) -> str:
    """The token forms and scripts must send back, bound to the session or the CSRF cookie."""
    if context.session is not None:
        material = "session:" + context.session.csrf_secret
    else:
        material = "anonymous:" + (context.csrf_cookie or "")
    return hmac.new(secret_key.encode(), material.encode(), hashlib.sha256).hexdigest()


class CsrfMiddleware:
    """See the module docstring. ``refuse(scope, receive, send)`` answers a refused request."""

    def __init__(
        self,
        app: ASGIApp,
        secret_key: str,
        refuse: Callable[[Scope, Receive, Send], Awaitable[None]],
        secure_cookie: bool,
    ) -> None:
        self.app = app
        self.secret_key = secret_key
        self.refuse = refuse
        self.secure_cookie = secure_cookie

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state: dict[str, Any] = scope.setdefault("state", {})
        context: AuthContext = state.get("auth", AuthContext())
        cookie = cookies_of(scope).get(CSRF_COOKIE)
        new_cookie = None
        if not cookie:
            cookie = new_cookie = secrets.token_urlsafe(24)
        context = AuthContext(
            principal=context.principal,
            session=context.session,
            session_token=context.session_token,
            via_bearer=context.via_bearer,
            csrf_cookie=cookie,
        )
        state["auth"] = context

        if scope["method"] in UNSAFE and self._needs_token(scope, context):
            body, receive = await _buffer(receive, _limit(scope))
            if body is None:
                await self.refuse(scope, receive, send)
                return
            presented = _presented_token(scope, body)
            expected = csrf_token_for(self.secret_key, context)
            if new_cookie is not None or not hmac.compare_digest(presented, expected):
                await self.refuse(scope, receive, send)
                return

        if new_cookie is None:
            await self.app(scope, receive, send)
            return

        async def send_with_cookie(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                attributes = "Path=/; HttpOnly; SameSite=Lax"
                if self.secure_cookie:
                    attributes += "; Secure"
                headers.append("Set-Cookie", f"{CSRF_COOKIE}={new_cookie}; {attributes}")
            await send(message)

        await self.app(scope, receive, send_with_cookie)

    @staticmethod
    def _needs_token(scope: Scope, context: AuthContext) -> bool:
        if context.via_bearer:
            return False
        if scope["path"].startswith("/api/"):
            # The API without a session cookie carries no ambient credentials to ride on.
            return context.session is not None
        return True


async def _buffer(receive: Receive, limit: int) -> tuple[bytes | None, Receive]:
    """Read the whole body (None if it is too large) and give a receive that replays it."""
    chunks: list[bytes] = []
    size = 0
    more = True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None, receive
        chunks.append(chunk)
        more = message.get("more_body", False)
    body = b"".join(chunks)
    replayed = False

    async def replay() -> Message:
        nonlocal replayed
        if not replayed:
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return body, replay


def _content_type(scope: Scope) -> bytes:
    for name, value in scope.get("headers", []):
        if name == b"content-type":
            return bytes(value)
    return b""


def _limit(scope: Scope) -> int:
    multipart = _content_type(scope).split(b";")[0].strip() == b"multipart/form-data"
    return MAX_UPLOAD_BYTES if multipart else MAX_FORM_BYTES


def _multipart_field(content_type: bytes, body: bytes, name: str) -> str:
    """One text field of a multipart/form-data body (the standard library's MIME parser)."""
    message = BytesParser(policy=HTTP).parsebytes(
        b"Content-Type: " + content_type + b"\r\n\r\n" + body
    )
    if not message.is_multipart():
        return ""
    for part in message.iter_parts():
        if part.get_param("name", header="content-disposition") == name:
            content = part.get_payload(decode=True)
            return content.decode("utf-8", "replace").strip() if isinstance(content, bytes) else ""
    return ""


def _presented_token(scope: Scope, body: bytes) -> str:
    content_type = b""
    for name, value in scope.get("headers", []):
        if name == CSRF_HEADER:
            return str(value.decode("latin-1"))
        if name == b"content-type":
            content_type = value
    kind = content_type.split(b";")[0].strip()
    if kind == b"application/x-www-form-urlencoded":
        values = parse_qs(body.decode("latin-1"), max_num_fields=200).get(CSRF_FIELD)
        if values:
            return values[0]
    if kind == b"multipart/form-data":
        return _multipart_field(content_type, body, CSRF_FIELD)
    return ""
