"""Passkey pages (list, remove) for patients and staff, and the JSON endpoints ``passkeys.js``
calls for each ceremony's two steps.

The JSON endpoints answer ``application/problem+json`` on failure (they are not under ``/api``,
so the app-wide handlers would answer with HTML pages); every write needs the CSRF header.
"""

from __future__ import annotations

import json
from typing import Any, Final

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from patient_portal.auth.middleware import auth_of
from patient_portal.auth.models import PrincipalKind
from patient_portal.auth.passkeys import (
    InMemoryChallengeStore,
    Passkeys,
    RedisChallengeStore,
    RelyingParty,
    binding_of,
    relying_party,
)
from patient_portal.auth.policy import Principal
from patient_portal.auth.service import AuthError
from patient_portal.auth.sessions import SessionData
from patient_portal.problems import (
    BAD_REQUEST,
    MALFORMED_JSON,
    PAYLOAD_TOO_LARGE,
    UNAUTHORIZED,
    ProblemKind,
)
from patient_portal.problems import Problem as ProblemDetails
from patient_portal.templating import request_locale
from patient_portal.views.common import (
    auth_problem,
    client_of,
    identity,
    page,
    redirect,
    require,
    set_session_cookie,
)

MAX_BODY: Final = 64 * 1024
HOME: Final = {"patient": "/account", "staff": "/staff"}
MANAGE: Final = {"patient": "/account/passkeys", "staff": "/staff/passkeys"}


def passkeys(request: Request) -> Passkeys:
    """The app's passkey service, built on first use from Identity's parts."""
    state = request.app.state
    service: Passkeys | None = getattr(state, "passkeys", None)
    if service is None:
        ident = identity(request)
        redis = state.redis
        service = Passkeys(
            identity=ident,
            challenges=RedisChallengeStore(redis) if redis else InMemoryChallengeStore(),
        )
        state.passkeys = service
    return service


def relying_party_of(request: Request) -> RelyingParty:
    settings = request.app.state.settings
    return relying_party(
        settings.public_url, str(request.base_url), production=settings.is_production
    )


def _problem(request: Request, kind: ProblemKind, error: AuthError | None = None) -> Response:
    problem = auth_problem(request, error) if error else ProblemDetails(kind)
    return problem.to_response(request_locale(request), request.url.path)


async def _body(request: Request) -> dict[str, Any] | Response:
    raw = await request.body()
    if len(raw) > MAX_BODY:
        return _problem(request, PAYLOAD_TOO_LARGE)
    try:
        body = json.loads(raw or b"{}")
    except (ValueError, UnicodeDecodeError):
        return _problem(request, MALFORMED_JSON)
    if not isinstance(body, dict):
        return _problem(request, MALFORMED_JSON)
    return body


def _binding(request: Request) -> str | None:
    context = auth_of(request)
    return binding_of(context.session.id if context.session else None, context.csrf_cookie)


def _signed_in(request: Request) -> tuple[Principal, str] | None:
    context = auth_of(request)
    principal = context.principal
    binding = _binding(request)
    if principal is None or context.session is None or binding is None:
        return None  # bearer tokens do not manage passkeys: they have no browser to bind to
    return principal, binding


def _pending(request: Request) -> tuple[SessionData, str, str] | None:
    context = auth_of(request)
    session, token, binding = context.session, context.session_token, _binding(request)
    if (
        session
        and token
        and binding
        and session.mfa_pending
        and session.kind is PrincipalKind.STAFF
    ):
        return session, token, binding
    return None


# -- pages -------------------------------------------------------------------------------------


async def _manage(request: Request, kind: str) -> Response:
    principal = require(request, kind)
    listed = await passkeys(request).list_for(principal)
    return page(request, "passkeys/manage.html", {"passkeys": listed, "kind": kind})


async def patient_passkeys(request: Request) -> Response:
    return await _manage(request, "patient")


async def staff_passkeys(request: Request) -> Response:
    return await _manage(request, "staff")


async def _remove(request: Request, kind: str) -> Response:
    principal = require(request, kind)
    removed = await passkeys(request).remove(
        principal, str(request.path_params["passkey_id"]), client_of(request)
    )
    if not removed:
        raise HTTPException(404)  # somebody else's passkey looks like no passkey at all
    return redirect(MANAGE[kind])


async def patient_remove(request: Request) -> Response:
    return await _remove(request, "patient")


async def staff_remove(request: Request) -> Response:
    return await _remove(request, "staff")


# -- registration ------------------------------------------------------------------------------


async def register_options(request: Request) -> Response:
    owner = _signed_in(request)
    if owner is None:
        return _problem(request, UNAUTHORIZED)
    options = await passkeys(request).registration_options(
        owner[0], owner[1], relying_party_of(request)
    )
    return JSONResponse(options, headers={"Cache-Control": "no-store"})


async def register(request: Request) -> Response:
    owner = _signed_in(request)
    if owner is None:
        return _problem(request, UNAUTHORIZED)
    body = await _body(request)
    if isinstance(body, Response):
        return body
    principal, binding = owner
    try:
        await passkeys(request).register(
            principal,
            binding,
            relying_party_of(request),
            body.get("credential"),
            str(body.get("name", ""))[:200],
            client_of(request),
        )
    except AuthError as error:
        return _problem(request, BAD_REQUEST, error)
    return JSONResponse({"redirect": MANAGE[principal.kind]})


# -- patients: sign in -------------------------------------------------------------------------


async def signin_options(request: Request) -> Response:
    binding = _binding(request)
    if binding is None:
        return _problem(request, BAD_REQUEST)
    try:
        options = await passkeys(request).sign_in_options(
            binding, relying_party_of(request), client_of(request)
        )
    except AuthError as error:
        return _problem(request, BAD_REQUEST, error)
    return JSONResponse(options, headers={"Cache-Control": "no-store"})


async def signin(request: Request) -> Response:
    binding = _binding(request)
    if binding is None:
        return _problem(request, BAD_REQUEST)
    body = await _body(request)
    if isinstance(body, Response):
        return body
    try:
        signed_in = await passkeys(request).sign_in_patient(
            binding,
            relying_party_of(request),
            body.get("credential"),
            client_of(request),
            replacing=auth_of(request).session_token,
        )
    except AuthError as error:
        return _problem(request, BAD_REQUEST, error)
    response = JSONResponse(
        {"redirect": "/account/profile" if signed_in.needs_profile else HOME["patient"]}
    )
    assert signed_in.session_token is not None  # noqa: S101 - a passkey sign-in makes a session
    set_session_cookie(request, response, signed_in.session_token, "patient")
    return response


# -- staff: the second factor ------------------------------------------------------------------


async def second_factor_options(request: Request) -> Response:
    pending = _pending(request)
    if pending is None:
        return _problem(request, UNAUTHORIZED)
    try:
        options = await passkeys(request).second_factor_options(
            pending[0], pending[2], relying_party_of(request), client_of(request)
        )
    except AuthError as error:
        return _problem(request, BAD_REQUEST, error)
    return JSONResponse(options, headers={"Cache-Control": "no-store"})


async def second_factor(request: Request) -> Response:
    pending = _pending(request)
    if pending is None:
        return _problem(request, UNAUTHORIZED)
    body = await _body(request)
    if isinstance(body, Response):
        return body
    session, token, binding = pending
    try:
        signed_in = await passkeys(request).staff_second_factor(
            session,
            token,
            binding,
            relying_party_of(request),
            body.get("credential"),
            client_of(request),
        )
    except AuthError as error:
        return _problem(request, BAD_REQUEST, error)
    response = JSONResponse({"redirect": HOME["staff"]})
    assert signed_in.session_token is not None  # noqa: S101 - a page sign-in makes a session
    set_session_cookie(request, response, signed_in.session_token, "staff")
    return response


routes = [
    Route("/account/passkeys", patient_passkeys, methods=["GET"]),
    Route("/account/passkeys/{passkey_id}/remove", patient_remove, methods=["POST"]),
    Route("/staff/passkeys", staff_passkeys, methods=["GET"]),
    Route("/staff/passkeys/{passkey_id}/remove", staff_remove, methods=["POST"]),
    Route("/passkeys/register/options", register_options, methods=["POST"]),
    Route("/passkeys/register", register, methods=["POST"]),
    Route("/passkeys/signin/options", signin_options, methods=["POST"]),
    Route("/passkeys/signin", signin, methods=["POST"]),
    Route("/passkeys/second-factor/options", second_factor_options, methods=["POST"]),
    Route("/passkeys/second-factor", second_factor, methods=["POST"]),
]
