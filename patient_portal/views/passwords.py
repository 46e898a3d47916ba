"""Passwords: a patient's optional password (set it, sign in with it) and staff changing theirs."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from patient_portal.auth.models import PrincipalKind
from patient_portal.auth.phone import PhoneError
from patient_portal.auth.service import AuthError
from patient_portal.views.common import (
    client_of,
    form_of,
    identity,
    message,
    page,
    redirect,
    require,
    set_session_cookie,
)


async def patient_password(request: Request) -> Response:
    """Set or change the account's password (an extra way to sign in besides SMS codes)."""
    principal = require(request, "patient")
    if request.method == "GET":
        return page(request, "patient/password.html", {"error": None, "done": False})
    form = await form_of(request)
    try:
        await identity(request).set_patient_password(
            principal, form.get("password", "")[:200], client_of(request)
        )
    except AuthError as error:
        return page(
            request,
            "patient/password.html",
            {"error": message(request, error.text), "done": False},
            422,
        )
    return page(request, "patient/password.html", {"error": None, "done": True})


async def patient_password_signin(request: Request) -> Response:
    if request.method == "GET":
        return page(request, "patient/signin_password.html", {"phone": "", "error": None})
    form = await form_of(request)
    phone = form.get("phone", "")[:40]
    try:
        signed_in = await identity(request).patient_password_sign_in(
            phone, form.get("password", "")[:200], client_of(request)
        )
    except (PhoneError, AuthError) as error:
        return page(
            request,
            "patient/signin_password.html",
            {"phone": phone, "error": message(request, error.text)},
            getattr(error, "status", 400),
        )
    response = redirect("/account/profile" if signed_in.needs_profile else "/account")
    assert signed_in.session_token is not None  # noqa: S101 - a page sign-in makes a session
    set_session_cookie(request, response, signed_in.session_token, "patient")
    return response


async def staff_password(request: Request) -> Response:
    """Change one's own password; every session ends, this one starts again."""
    principal = require(request, "staff")
    if request.method == "GET":
        return page(request, "staff/password.html", {"error": None})
    form = await form_of(request)
    client = client_of(request)
    try:
        await identity(request).change_staff_password(
            principal, form.get("current", "")[:200], form.get("password", "")[:200], client
        )
    except AuthError as error:
        return page(
            request, "staff/password.html", {"error": message(request, error.text)}, error.status
        )
    token, _ = await identity(request).sessions.start(
        PrincipalKind.STAFF, principal.id, ip=client.ip, user_agent=client.user_agent
    )
    response = redirect("/staff")
    set_session_cookie(request, response, token, "staff")
    return response


routes = [
    Route("/account/password", patient_password, methods=["GET", "POST"]),
    Route("/signin/password", patient_password_signin, methods=["GET", "POST"]),
    Route("/staff/password", staff_password, methods=["GET", "POST"]),
]
