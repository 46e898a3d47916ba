"""Patient pages: sign in with an SMS code, the account, its patients (family), sessions."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from patient_portal.accounts import service as accounts
from patient_portal.accounts.models import Relationship
from patient_portal.auth.middleware import auth_of
from patient_portal.auth.phone import PhoneError, mask
from patient_portal.auth.policy import Action, Resource
from patient_portal.auth.service import AuthError
from patient_portal.auth.verifier import VerifierError
from patient_portal.views import common
from patient_portal.views.common import (
    authorize,
    client_of,
    form_of,
    identity,
    message,
    page,
    record,
    redirect,
    require,
    safe_next,
    set_session_cookie,
)
from patient_portal.views.forms import FamilyMember, PatientProfile, form_errors


async def signin_form(request: Request) -> Response:
    principal = auth_of(request).principal
    after = safe_next(request.query_params.get("next"), "/account")
    if principal is not None and principal.kind == "patient":
        return redirect(after)
    return page(request, "patient/signin.html", {"phone": "", "error": None, "next": after})


async def signin_send(request: Request) -> Response:
    form = await form_of(request)
    after = safe_next(form.get("next"), "/account")
    raw = str(form.get("phone", ""))[:40]
    try:
        phone = await identity(request).send_code(
            raw, client_of(request), locale=request.state.locale
        )
    except (PhoneError, VerifierError, AuthError) as error:
        status = getattr(error, "status", 400)
        return page(
            request,
            "patient/signin.html",
            {"phone": raw, "error": message(request, error.text), "next": after},
            status=status,
        )
    return page(
        request,
        "patient/code.html",
        {"phone": phone, "masked": mask(phone), "error": None, "next": after},
    )


async def signin_code(request: Request) -> Response:
    form = await form_of(request)
    after = safe_next(form.get("next"), "/account")
    phone = str(form.get("phone", ""))[:20]
    code = str(form.get("code", ""))[:12]
    try:
        signed_in = await identity(request).verify_code(phone, code, client_of(request))
    except (PhoneError, AuthError, VerifierError) as error:
        status = getattr(error, "status", 400)
        return page(
            request,
            "patient/code.html",
            {
                "phone": phone,
                "masked": mask(phone) if phone else "",
                "error": message(request, error.text),
                "next": after,
            },
            status=status,
        )
    response = redirect("/account/profile" if signed_in.needs_profile else after)
    assert signed_in.session_token is not None  # noqa: S101 - a page sign-in makes a session
    set_session_cookie(request, response, signed_in.session_token, "patient")
    return response


async def signout(request: Request) -> Response:
    return await common.sign_out(request, "/")


async def account_home(request: Request) -> Response:
    principal = require(request, "patient")
    patients = await accounts.patients_of_account(principal.id)
    if not patients:
        return redirect("/account/profile")
    await record(
        request,
        principal,
        "patient.read",
        Resource("account", principal.id),
        detail={"records": len(patients)},
    )
    return page(request, "patient/account.html", {"patients": patients})


def _profile_context(
    values: dict[str, Any], errors: dict[str, str], **extra: Any
) -> dict[str, Any]:
    return {"values": values, "errors": errors, **extra}


async def _profile_submission(
    request: Request, model: type[PatientProfile]
) -> tuple[PatientProfile | None, dict[str, Any], dict[str, str]]:
    form = await form_of(request)
    values = {key: str(value)[:300] for key, value in form.items() if key != "csrf_token"}
    cleaned = {k: v for k, v in values.items() if v != "" or k in ("postal_code", "email")}
    try:
        return model.model_validate(cleaned), values, {}
    except ValidationError as error:
        errors = {
            e.field.removeprefix("body."): message(request, e.message) for e in form_errors(error)
        }
        return None, values, errors


async def profile_form(request: Request) -> Response:
    """The account holder's own record, asked once after the first sign-in."""
    principal = require(request, "patient")
    if principal.patient_ids:
        return redirect("/account")
    if request.method == "GET":
        return page(request, "patient/profile.html", _profile_context({}, {}, family=False))
    profile, values, errors = await _profile_submission(request, PatientProfile)
    if profile is None:
        return page(
            request, "patient/profile.html", _profile_context(values, errors, family=False), 422
        )
    created = await accounts.add_patient(principal.id, Relationship.SELF, profile.model_dump())
    await record(request, principal, "patient.create", Resource("patient", patient_id=created.id))
    return redirect("/account")


async def family_add(request: Request) -> Response:
    principal = require(request, "patient")
    await authorize(request, principal, Action.FAMILY_ADD, Resource("account", principal.id))
    if request.method == "GET":
        return page(request, "patient/profile.html", _profile_context({}, {}, family=True))
    member, values, errors = await _profile_submission(request, FamilyMember)
    if member is None:
        return page(
            request, "patient/profile.html", _profile_context(values, errors, family=True), 422
        )
    data = member.model_dump()
    relationship = data.pop("relationship")
    created = await accounts.add_patient(principal.id, relationship, data)
    await record(request, principal, "patient.create", Resource("patient", patient_id=created.id))
    return redirect("/account")


async def patient_edit(request: Request) -> Response:
    principal = require(request, "patient")
    patient_id = str(request.path_params["patient_id"])
    patient = await accounts.find_patient(patient_id)
    resource = Resource("patient", patient_id=patient_id)
    if patient is None:
        await authorize(request, principal, Action.PATIENT_WRITE, resource)
    action = Action.PATIENT_READ if request.method == "GET" else Action.PATIENT_WRITE
    await authorize(request, principal, action, resource)
    assert patient is not None  # noqa: S101 - authorize() refused a missing patient
    if request.method == "GET":
        await record(request, principal, "patient.read", resource)
        current = accounts.view_of(patient)
        values = {
            "family_name": current.family_name,
            "given_name": current.given_name,
            "family_name_kana": current.family_name_kana,
            "given_name_kana": current.given_name_kana,
            "birth_date": current.birth_date.isoformat(),
            "sex": current.sex.value,
            "postal_code": current.postal_code or "",
            "email": current.email or "",
        }
        return page(
            request, "patient/profile.html", _profile_context(values, {}, family=False, edit=True)
        )
    profile, values, errors = await _profile_submission(request, PatientProfile)
    if profile is None:
        return page(
            request,
            "patient/profile.html",
            _profile_context(values, errors, family=False, edit=True),
            422,
        )
    await accounts.update_patient(patient, profile.model_dump())
    await record(request, principal, "patient.update", resource)
    return redirect("/account")


async def sessions(request: Request) -> Response:
    return await common.sessions_page(
        request, "patient", "patient/sessions.html", "/account/sessions"
    )


routes = [
    Route("/signin", signin_form, methods=["GET"]),
    Route("/signin", signin_send, methods=["POST"]),
    Route("/signin/code", signin_code, methods=["POST"]),
    Route("/signout", signout, methods=["POST"]),
    Route("/account", account_home, methods=["GET"]),
    Route("/account/profile", profile_form, methods=["GET", "POST"]),
    Route("/account/family/new", family_add, methods=["GET", "POST"]),
    Route("/account/patients/{patient_id}", patient_edit, methods=["GET", "POST"]),
    Route("/account/sessions", sessions, methods=["GET", "POST"]),
]
