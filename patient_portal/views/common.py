"""What every handler needs: the caller, the client, authorisation, audit, cookies, pages."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Final

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from patient_portal.audit.models import Outcome
from patient_portal.audit.service import AuditEvent, AuditLog
from patient_portal.auth.middleware import auth_of
from patient_portal.auth.models import PrincipalKind
from patient_portal.auth.policy import Action, Principal, Resource, decide
from patient_portal.auth.service import AuthError, Client, Identity
from patient_portal.auth.sessions import COOKIE as SESSION_COOKIE
from patient_portal.auth.sessions import LIFETIMES
from patient_portal.problems import (
    BAD_REQUEST,
    FORBIDDEN,
    NOT_FOUND,
    RATE_LIMITED,
    UNAUTHORIZED,
    Problem,
    Text,
)
from patient_portal.templating import request_locale

SIGN_IN_PAGE: Final = {"patient": "/signin", "staff": "/staff/signin"}


def client_of(request: Request) -> Client:
    host = request.client.host if request.client else ""
    return Client(ip=host, user_agent=request.headers.get("user-agent", "")[:200])


def identity(request: Request) -> Identity:
    return request.app.state.identity  # type: ignore[no-any-return]


def audit_log(request: Request) -> AuditLog:
    return request.app.state.audit  # type: ignore[no-any-return]


def is_api(request: Request) -> bool:
    return request.url.path.startswith("/api/")


def require(request: Request, kind: str) -> Principal:
    """The signed-in principal of ``kind`` ("patient" or "staff"), or 401 / a sign-in redirect."""
    principal = auth_of(request).principal
    if principal is not None and principal.kind == kind:
        return principal
    if is_api(request):
        raise Problem(UNAUTHORIZED, headers={"WWW-Authenticate": "Bearer"})
    raise HTTPException(303, headers={"Location": SIGN_IN_PAGE[kind]})


async def authorize(
    request: Request, principal: Principal, action: Action, resource: Resource
) -> None:
    """Ask the policy; a refusal is audited and answered 404 (nothing is revealed)."""
    decision = decide(principal, action, resource)
    if decision.allowed:
        return
    await record(request, principal, action.value, resource, Outcome.DENIED)
    if resource.id or resource.patient_id:
        raise Problem(NOT_FOUND) if is_api(request) else HTTPException(404)
    raise Problem(FORBIDDEN) if is_api(request) else HTTPException(403)


async def record(
    request: Request,
    principal: Principal | None,
    action: str,
    resource: Resource | None = None,
    outcome: Outcome = Outcome.SUCCESS,
    detail: dict[str, Any] | None = None,
) -> None:
    client = client_of(request)
    await audit_log(request).record(
        AuditEvent(
            action=action,
            outcome=outcome,
            actor_kind=principal.kind if principal else "anonymous",
            actor_id=principal.id if principal else "",
            actor_role=principal.role.value if principal else "",
            clinic_id=principal.clinic_id if principal else "",
            target_kind=resource.kind if resource else "",
            # An id from a URL may be anything an attacker typed: keep what fits the column.
            target_id=((resource.id or resource.patient_id) if resource else "")[:64],
            ip=client.ip,
            user_agent=client.user_agent,
            detail=detail or {},
        ),
        now=datetime.now(UTC),
    )


def set_session_cookie(request: Request, response: Response, token: str, kind: str) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=int(LIFETIMES[PrincipalKind(kind)].absolute.total_seconds()),
        httponly=True,
        samesite="lax",
        secure=secure_cookies(request),
        path="/",
    )


def clear_session_cookie(request: Request, response: Response) -> None:
    response.delete_cookie(
        SESSION_COOKIE, httponly=True, samesite="lax", secure=secure_cookies(request), path="/"
    )


def secure_cookies(request: Request) -> bool:
    return request.url.scheme == "https" or bool(request.app.state.settings.is_production)


def safe_next(value: object, default: str) -> str:
    """A local path to go on to after signing in; anything else (another site, odd) → default."""
    text = str(value or "")
    if (
        not text.startswith("/")
        or text.startswith("//")
        or "\\" in text
        or len(text) > 300
        or any(ord(char) < 0x21 for char in text)
    ):
        return default
    return text


def redirect(location: str) -> RedirectResponse:
    return RedirectResponse(location, status_code=303)


def auth_problem(request: Request, error: AuthError) -> Problem:
    kind = {401: UNAUTHORIZED, 429: RATE_LIMITED}.get(error.status, BAD_REQUEST)
    headers = {"Retry-After": str(error.retry_after)} if error.retry_after else {}
    return Problem(kind, error.text, headers=headers)


def page(
    request: Request, template: str, context: dict[str, Any] | None = None, status: int = 200
) -> Response:
    templates = request.app.state.templates
    return templates.TemplateResponse(  # type: ignore[no-any-return]
        request, template, context or {}, status_code=status
    )


async def form_of(request: Request) -> dict[str, str]:
    """The submitted form as text fields, without NUL characters (no database stores them).
    Files are not read here; the features that accept uploads parse them themselves."""
    form = await request.form()
    return {key: value.replace("\x00", "") for key, value in form.items() if isinstance(value, str)}


def message(request: Request, text: Text) -> str:
    return text.in_locale(request_locale(request))


async def sign_out(request: Request, then: str) -> Response:
    """End this browser's session (if any) and go to ``then``."""
    context = auth_of(request)
    if context.session_token:
        await identity(request).sessions.end(context.session_token)
        await record(request, context.principal, "auth.sign_out")
    response = redirect(then)
    clear_session_cookie(request, response)
    return response


async def sessions_page(request: Request, kind: str, template: str, here: str) -> Response:
    """List where ``kind`` is signed in; POST signs out everywhere else (and revokes tokens)."""
    principal = require(request, kind)
    context = auth_of(request)
    principal_kind = PrincipalKind(kind)
    sessions = identity(request).sessions
    if request.method == "POST":
        ended = await sessions.end_all(
            principal_kind, principal.id, keep_token=context.session_token
        )
        await identity(request).tokens.revoke_all(principal_kind, principal.id)
        await record(request, principal, "auth.sign_out_everywhere", detail={"ended": ended})
        return redirect(here)
    active = await sessions.active(principal_kind, principal.id)
    current = context.session.id if context.session else ""
    return page(request, template, {"sessions": active, "current": current})
