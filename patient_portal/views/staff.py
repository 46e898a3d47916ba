"""Staff pages: password + second factor, invitations, the clinic's patients, administration."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from booking.models import Clinic
from patient_portal import recordings
from patient_portal.accounts import service as accounts
from patient_portal.auth import totp
from patient_portal.auth.middleware import AuthContext, auth_of
from patient_portal.auth.models import PrincipalKind
from patient_portal.auth.policy import Action, Principal, Resource, Role, decide
from patient_portal.auth.service import AuthError
from patient_portal.auth.sessions import SessionData
from patient_portal.problems import Text
from patient_portal.views import common
from patient_portal.views.common import (
    audit_log,
    authorize,
    client_of,
    form_of,
    identity,
    message,
    page,
    record,
    redirect,
    require,
    set_session_cookie,
)

INVITABLE_ROLES = (Role.RECEPTIONIST, Role.NURSE, Role.DOCTOR, Role.CLINIC_ADMIN)


def _pending(context: AuthContext) -> tuple[SessionData, str] | None:
    session, token = context.session, context.session_token
    if session and token and session.mfa_pending and session.kind is PrincipalKind.STAFF:
        return session, token
    return None


async def signin(request: Request) -> Response:
    principal = auth_of(request).principal
    if request.method == "GET":
        if principal is not None and principal.kind == "staff":
            return redirect("/staff")
        return page(request, "staff/signin.html", {"login_id": "", "error": None})
    form = await form_of(request)
    login_id = str(form.get("login_id", ""))[:120]
    try:
        token, needs_enrolment = await identity(request).staff_password(
            login_id, str(form.get("password", ""))[:200], client_of(request)
        )
    except AuthError as error:
        return page(
            request,
            "staff/signin.html",
            {"login_id": login_id, "error": message(request, error.text)},
            status=error.status,
        )
    response = redirect("/staff/signin/enrol" if needs_enrolment else "/staff/signin/code")
    set_session_cookie(request, response, token, "staff")
    return response


async def second_factor(request: Request) -> Response:
    pending = _pending(auth_of(request))
    if pending is None:
        return redirect("/staff/signin")
    if request.method == "GET":
        return page(request, "staff/code.html", {"error": None})
    form = await form_of(request)
    try:
        signed_in = await identity(request).staff_second_factor(
            pending[0], pending[1], str(form.get("code", ""))[:40], client_of(request)
        )
    except AuthError as error:
        return page(
            request, "staff/code.html", {"error": message(request, error.text)}, error.status
        )
    response = redirect("/staff")
    assert signed_in.session_token is not None  # noqa: S101 - a page sign-in makes a session
    set_session_cookie(request, response, signed_in.session_token, "staff")
    return response


async def enrol(request: Request) -> Response:
    """First sign-in (or after a reset): scan the QR code, confirm with a code."""
    pending = _pending(auth_of(request))
    if pending is None:
        return redirect("/staff/signin")
    form = await form_of(request) if request.method == "POST" else None
    secret = str(form.get("secret", "")) if form else ""
    if not secret or len(secret) > 64:
        secret = totp.new_secret()
    error = None
    if form is not None:
        try:
            signed_in, codes = await identity(request).finish_totp_enrolment(
                pending[0], pending[1], secret, str(form.get("code", ""))[:12], client_of(request)
            )
        except AuthError as failure:
            error = message(request, failure.text)
        else:
            response = page(request, "staff/recovery_codes.html", {"codes": codes})
            response.headers["Cache-Control"] = "no-store"
            assert signed_in.session_token is not None  # noqa: S101
            set_session_cookie(request, response, signed_in.session_token, "staff")
            return response
    staff = await identity(request).principal_staff(pending[0].principal_id)
    uri = totp.provisioning_uri(secret, staff.login_id if staff else "staff")
    response = page(
        request,
        "staff/enrol.html",
        {"secret": secret, "qr": totp.qr_data_uri(uri), "error": error},
        status=401 if error else 200,
    )
    response.headers["Cache-Control"] = "no-store"
    return response


async def invitation(request: Request) -> Response:
    token = str(request.path_params["token"])
    try:
        invited = await identity(request).invitation(token)
    except AuthError as error:
        return page(
            request,
            "staff/invitation.html",
            {"error": message(request, error.text), "invalid": True},
            404,
        )
    if request.method == "GET":
        return page(
            request,
            "staff/invitation.html",
            {"error": None, "invalid": False, "login_id": invited.login_id},
        )
    form = await form_of(request)
    try:
        session_token, _ = await identity(request).accept_invitation(
            token, str(form.get("password", ""))[:200], client_of(request)
        )
    except AuthError as error:
        return page(
            request,
            "staff/invitation.html",
            {"error": message(request, error.text), "invalid": False, "login_id": invited.login_id},
            422,
        )
    response = redirect("/staff/signin/enrol")
    set_session_cookie(request, response, session_token, "staff")
    return response


async def signout(request: Request) -> Response:
    return await common.sign_out(request, "/staff/signin")


async def home(request: Request) -> Response:
    principal = require(request, "staff")
    if principal.role is Role.PLATFORM_OPERATOR:
        return page(request, "staff/home.html", {"patients": [], "principal": principal})
    await authorize(
        request,
        principal,
        Action.PATIENT_LIST,
        Resource("clinic", principal.clinic_id, clinic_ids=frozenset({principal.clinic_id})),
    )
    patients = await accounts.clinic_patients(principal.clinic_id)
    await record(
        request,
        principal,
        "patient.list",
        Resource("clinic", principal.clinic_id),
        detail={"records": len(patients)},
    )
    return page(request, "staff/home.html", {"patients": patients, "principal": principal})


async def patient_detail(request: Request) -> Response:
    principal = require(request, "staff")
    patient_id = str(request.path_params["patient_id"])
    patient = await accounts.find_patient(patient_id)
    clinics = await accounts.clinics_of(patient_id) if patient else frozenset()
    resource = Resource("patient", patient_id=patient_id, clinic_ids=clinics)
    await authorize(request, principal, Action.PATIENT_READ, resource)
    assert patient is not None  # noqa: S101 - authorize() refused a missing patient
    await record(request, principal, "patient.read", resource)
    recorded = (
        await recordings.recorded_consults(principal.clinic_id, patient_id)
        if decide(principal, Action.RECORDING_READ, resource)
        else []
    )
    clinic = await Clinic.get_or_none(id=principal.clinic_id) if recorded else None
    return page(
        request,
        "staff/patient.html",
        {
            "patient": accounts.view_of(patient),
            "recorded": recorded,
            "zone": ZoneInfo(clinic.time_zone) if clinic else UTC,
        },
    )


def _clinic(principal: Principal) -> Resource:
    return Resource("clinic", principal.clinic_id, clinic_ids=frozenset({principal.clinic_id}))


async def staff_admin(request: Request) -> Response:
    principal = require(request, "staff")
    await authorize(request, principal, Action.STAFF_LIST, _clinic(principal))
    members = await identity(request).clinic_staff(principal.clinic_id)
    context: dict[str, Any] = {
        "members": members,
        "roles": INVITABLE_ROLES,
        "invited": None,
        "error": None,
    }
    if request.method == "POST":
        await authorize(request, principal, Action.STAFF_INVITE, _clinic(principal))
        form = await form_of(request)
        role_value = str(form.get("role", ""))
        login_id = str(form.get("login_id", "")).strip()[:120]
        name = str(form.get("display_name", "")).strip()[:120]
        kana = str(form.get("display_name_kana", "")).strip()[:120]
        if role_value not in {r.value for r in INVITABLE_ROLES} or not (login_id and name and kana):
            context["error"] = message(request, INVITE_INCOMPLETE)
            return page(request, "staff/admin_staff.html", context, 422)
        token = await identity(request).invite(
            principal,
            login_id=login_id,
            display_name=name,
            display_name_kana=kana,
            role=Role(role_value),
            client=client_of(request),
        )
        context["invited"] = f"{request.app.state.settings.public_url}/staff/invitation/{token}"
        response = page(request, "staff/admin_staff.html", context)
        response.headers["Cache-Control"] = "no-store"
        return response
    return page(request, "staff/admin_staff.html", context)


async def staff_member_action(request: Request) -> Response:
    principal = require(request, "staff")
    staff_id = str(request.path_params["staff_id"])
    action = str(request.path_params["action"])
    policy_action = {"disable": Action.STAFF_DISABLE, "reset-mfa": Action.STAFF_RESET_MFA}.get(
        action
    )
    member = await identity(request).staff_in_clinic(principal.clinic_id, staff_id)
    clinics = frozenset({principal.clinic_id}) if member else frozenset()
    resource = Resource("staff", staff_id, clinic_ids=clinics)
    if policy_action is None or member is None:
        await authorize(request, principal, Action.STAFF_DISABLE, Resource("staff", staff_id))
    assert policy_action is not None  # noqa: S101 - authorize() refused otherwise
    assert member is not None  # noqa: S101
    await authorize(request, principal, policy_action, resource)
    if policy_action is Action.STAFF_DISABLE:
        await identity(request).disable_staff(principal, member, client_of(request))
    else:
        await identity(request).reset_second_factor(principal, member, client_of(request))
    return redirect("/staff/admin/staff")


def _date(value: str | None) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


def _range(request: Request) -> tuple[datetime | None, datetime | None]:
    since = _date(request.query_params.get("since"))
    until = _date(request.query_params.get("until"))
    return (
        datetime.combine(since, time.min, UTC) if since else None,
        datetime.combine(until, time.min, UTC) + timedelta(days=1) if until else None,
    )


async def audit_view(request: Request) -> Response:
    principal = require(request, "staff")
    await authorize(request, principal, Action.AUDIT_READ, _clinic(principal))
    since, until = _range(request)
    action = request.query_params.get("action") or None
    entries = await audit_log(request).search(
        clinic_id=principal.clinic_id, since=since, until=until, action=action, limit=200
    )
    await record(request, principal, "audit.read", _clinic(principal))
    return page(
        request,
        "staff/audit.html",
        {"entries": entries, "query": dict(request.query_params)},
    )


async def audit_export(request: Request) -> Response:
    principal = require(request, "staff")
    await authorize(request, principal, Action.AUDIT_EXPORT, _clinic(principal))
    since, until = _range(request)
    action = request.query_params.get("action") or None
    await record(request, principal, "audit.export", _clinic(principal))
    lines = audit_log(request).export_csv(
        clinic_id=principal.clinic_id, since=since, until=until, action=action
    )
    filename = f"audit-{datetime.now(UTC):%Y%m%d}.csv"
    return StreamingResponse(
        lines,
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "Cache-Control": "no-store",
        },
    )


async def sessions(request: Request) -> Response:
    return await common.sessions_page(request, "staff", "staff/sessions.html", "/staff/sessions")


INVITE_INCOMPLETE = Text(
    "ログインID、氏名、ふりがな、役割をすべて入力してください",
    "Enter the login ID, name, reading and role.",
)

routes = [
    Route("/staff/signin", signin, methods=["GET", "POST"]),
    Route("/staff/signin/code", second_factor, methods=["GET", "POST"]),
    Route("/staff/signin/enrol", enrol, methods=["GET", "POST"]),
    Route("/staff/invitation/{token}", invitation, methods=["GET", "POST"]),
    Route("/staff/signout", signout, methods=["POST"]),
    Route("/staff", home, methods=["GET"]),
    Route("/staff/patients/{patient_id}", patient_detail, methods=["GET"]),
    Route("/staff/admin/staff", staff_admin, methods=["GET", "POST"]),
    Route("/staff/admin/staff/{staff_id}/{action}", staff_member_action, methods=["POST"]),
    Route("/staff/admin/audit", audit_view, methods=["GET"]),
    Route("/staff/admin/audit.csv", audit_export, methods=["GET"]),
    Route("/staff/sessions", sessions, methods=["GET", "POST"]),
]
