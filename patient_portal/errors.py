"""The one mapping from errors to responses: problem+json under ``/api``, pages elsewhere."""

from __future__ import annotations

import logging
import traceback
from typing import Final

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from patient_portal.auth.ratelimit import RateLimiterUnavailable
from patient_portal.i18n import N_
from patient_portal.problems import (
    BAD_REQUEST,
    FORBIDDEN,
    INTERNAL,
    UNAVAILABLE,
    Problem,
    Text,
    for_status,
)
from patient_portal.templating import request_locale

logger = logging.getLogger(__name__)

API_PREFIX: Final = "/api/"

# status → (heading, explanation), English source text, translated through the catalogue.
PAGE_TEXT: Final[dict[int, tuple[str, str]]] = {
    403: (
        N_("You cannot open this page"),
        N_(
            "Your account does not have access to this page. If you think it should, ask your "
            "clinic."
        ),
    ),
    404: (
        N_("Page not found"),
        N_("The page may have moved, or the address may be mistyped. Please check the address."),
    ),
    500: (
        N_("Something went wrong"),
        N_(
            "Sorry, a problem occurred on our side. Nothing you entered has been lost; please "
            "try again in a moment."
        ),
    ),
}
GENERIC_TEXT: Final = (
    N_("The request could not be completed"),
    N_("Please go back and try again."),
)


def _is_api(request: Request) -> bool:
    return request.url.path.startswith(API_PREFIX)


def _page(
    request: Request,
    status: int,
    headers: dict[str, str] | None = None,
    message: str | None = None,
) -> Response:
    heading, explanation = PAGE_TEXT.get(status, GENERIC_TEXT)
    templates = request.app.state.templates
    catalogue = request.app.state.catalogues.get(request_locale(request))
    return templates.TemplateResponse(  # type: ignore[no-any-return]
        request,
        "error.html",
        {
            "status": status,
            "heading": catalogue.ugettext(heading),
            "message": message or catalogue.ugettext(explanation),
        },
        status_code=status,
        headers=headers,
    )


async def handle_problem(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, Problem)  # noqa: S101 - registered for Problem only
    if _is_api(request):
        return exc.to_response(request_locale(request), request.url.path)
    return _page(request, exc.kind.status, exc.headers)


async def handle_http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)  # noqa: S101 - registered for HTTPException only
    headers = dict(exc.headers or {})
    if exc.status_code in (204, 304) or 300 <= exc.status_code < 400:
        return Response(status_code=exc.status_code, headers=headers)
    if _is_api(request):
        problem = Problem(for_status(exc.status_code), headers=headers)
        return problem.to_response(request_locale(request), request.url.path)
    return _page(request, exc.status_code, headers)


def unexpected_error_response(request: Request) -> Response:
    if _is_api(request):
        return Problem(INTERNAL).to_response(request_locale(request))
    return _page(request, 500)


class UnexpectedErrorMiddleware:
    """Turns an unhandled exception into a friendly 500 and logs it without its message.

    Exception messages can carry patient data (a database error quotes the row), so the log gets
    the exception type, the route and the stack frames only. Sits inside Starlette's own server
    error middleware, which would log the full message.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            frames = "".join(traceback.format_tb(exc.__traceback__))
            logger.error(
                "unhandled %s on %s %s\n%s",
                type(exc).__name__,
                scope.get("method"),
                scope.get("path"),
                frames,
            )
            if started:
                raise RuntimeError("response failed after it started") from None
            response = unexpected_error_response(Request(scope))
            await response(scope, receive, send)


CSRF_REFUSED = Text(
    "フォームの有効期限が切れたか、別のページから送信されました。ページを再読み込みしてから"
    "もう一度お試しください",
    "This form has expired or was sent from another page. Reload the page and try again.",
)


async def refuse_csrf(scope: Scope, receive: Receive, send: Send) -> None:
    """The answer to a write without a valid CSRF token: 403, as a problem or a page."""
    request = Request(scope)
    if _is_api(request):
        response: Response = Problem(FORBIDDEN, CSRF_REFUSED).to_response(
            request_locale(request), request.url.path
        )
    else:
        response = _page(request, 403, message=CSRF_REFUSED.in_locale(request_locale(request)))
    await response(scope, receive, send)


async def handle_rate_limiter_down(request: Request, exc: Exception) -> Response:
    """Without its rate limiter, sign-in fails closed: 503, not an unlimited free-for-all."""
    logger.error("rate limiter unavailable on %s %s", request.method, request.url.path)
    problem = Problem(UNAVAILABLE, headers={"Retry-After": "30"})
    return await handle_problem(request, problem)


NUL_IN_ADDRESS = Text(
    "アドレスに使えない文字 (NUL) が含まれています",
    "The address contains a character (NUL) that cannot be used",
)


class NulGuardMiddleware:
    """Refuses a request whose path or query holds a NUL character (400): no database stores
    one, and PostgreSQL refuses it outright — better a clear answer here than a 500 later."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and (
            "\x00" in scope.get("path", "")
            or b"%00" in scope.get("query_string", b"").lower()
            or b"\x00" in scope.get("query_string", b"")
        ):
            request = Request(scope)
            if _is_api(request):
                response: Response = Problem(BAD_REQUEST, NUL_IN_ADDRESS).to_response(
                    request_locale(request), request.url.path
                )
            else:
                response = _page(
                    request, 400, message=NUL_IN_ADDRESS.in_locale(request_locale(request))
                )
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


exception_handlers = {
    Problem: handle_problem,
    HTTPException: handle_http_exception,
    RateLimiterUnavailable: handle_rate_limiter_down,
}
