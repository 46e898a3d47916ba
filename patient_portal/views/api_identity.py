"""``/api/v1`` endpoints for signing in and for patient records (bearer tokens)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from patient_portal.accounts import service as accounts
from patient_portal.accounts.models import Patient, Relationship, Sex
from patient_portal.api.v1 import api
from patient_portal.auth.middleware import auth_of
from patient_portal.auth.models import PrincipalKind
from patient_portal.auth.phone import PhoneError, mask
from patient_portal.auth.policy import Action, Resource
from patient_portal.auth.service import AuthError
from patient_portal.auth.tokens import TokenPair
from patient_portal.auth.verifier import VerifierError
from patient_portal.problems import (
    BAD_REQUEST,
    RATE_LIMITED,
    UNAUTHORIZED,
    UNAVAILABLE,
    VALIDATION,
    FieldError,
    Problem,
)
from patient_portal.views.common import (
    auth_problem,
    authorize,
    client_of,
    identity,
    record,
    require,
)
from patient_portal.views.forms import FamilyMember, PatientProfile

Code = Annotated[str, Field(min_length=4, max_length=12)]


class SmsStart(BaseModel):
    model_config = ConfigDict(extra="forbid")
    phone: Annotated[str, Field(min_length=1, max_length=40)]


class SmsStarted(BaseModel):
    phone: str = Field(description="The number the code went to, masked")


class SmsVerify(BaseModel):
    model_config = ConfigDict(extra="forbid")
    phone: Annotated[str, Field(min_length=1, max_length=40)]
    code: Code


class PasswordSignIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    phone: Annotated[str, Field(min_length=1, max_length=40)]
    password: Annotated[str, Field(min_length=1, max_length=200)]


class StaffSignIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    login_id: Annotated[str, Field(min_length=1, max_length=120)]
    password: Annotated[str, Field(min_length=1, max_length=200)]
    code: Annotated[str, Field(min_length=4, max_length=40)]


class RefreshRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    refresh_token: Annotated[str, Field(min_length=1, max_length=200)]


class Tokens(BaseModel):
    access_token: str
    refresh_token: str
    token_type: str = "Bearer"  # noqa: S105 - the scheme name, not a secret
    expires_in: int
    needs_profile: bool = False


class PatientOut(BaseModel):
    id: str
    relationship: Relationship
    family_name: str
    given_name: str
    family_name_kana: str
    given_name_kana: str
    birth_date: date
    sex: Sex
    postal_code: str | None
    email: str | None


class Me(BaseModel):
    account_id: str
    patients: list[PatientOut]


class ClinicPatient(BaseModel):
    patient_number: str
    patient: PatientOut


class ClinicPatients(BaseModel):
    patients: list[ClinicPatient]


def _tokens(pair: TokenPair, needs_profile: bool = False) -> Tokens:
    return Tokens(
        access_token=pair.access_token,
        refresh_token=pair.refresh_token,
        expires_in=pair.expires_in,
        needs_profile=needs_profile,
    )


def _out(view: accounts.PatientView) -> PatientOut:
    return PatientOut(
        id=view.id,
        relationship=view.relationship,
        family_name=view.family_name,
        given_name=view.given_name,
        family_name_kana=view.family_name_kana,
        given_name_kana=view.given_name_kana,
        birth_date=view.birth_date,
        sex=view.sex,
        postal_code=view.postal_code,
        email=view.email,
    )


@contextmanager
def _as_problems(request: Request) -> Iterator[None]:
    """Sign-in failures as problem details: one translation for every sign-in endpoint."""
    try:
        yield
    except PhoneError as error:
        raise _phone_problem(error) from None
    except AuthError as error:
        raise auth_problem(request, error) from None
    except VerifierError as error:
        raise _verifier_problem(error) from None


def _verifier_problem(error: VerifierError) -> Problem:
    kind = {429: RATE_LIMITED, 503: UNAVAILABLE}.get(error.status, BAD_REQUEST)
    return Problem(kind, error.text)


def _phone_problem(error: PhoneError) -> Problem:
    return Problem(VALIDATION, error.text, errors=(FieldError("body.phone", "phone", error.text),))


@api.endpoint(
    "POST",
    "/auth/sms/start",
    summary="Send a sign-in code by SMS",
    body=SmsStart,
    response=SmsStarted,
    status_code=202,
    tags=("auth",),
    problems=(429, 503),
)
async def start_sms(request: Request, body: SmsStart) -> SmsStarted:
    """Answers the same whether or not the number has an account."""
    with _as_problems(request):
        phone = await identity(request).send_code(
            body.phone, client_of(request), locale=request.state.locale
        )
    return SmsStarted(phone=mask(phone))


@api.endpoint(
    "POST",
    "/auth/sms/verify",
    summary="Sign in (or sign up) with the SMS code",
    body=SmsVerify,
    response=Tokens,
    tags=("auth",),
    problems=(401, 429),
)
async def verify_sms(request: Request, body: SmsVerify) -> Tokens:
    with _as_problems(request):
        signed_in = await identity(request).verify_code(
            body.phone, body.code, client_of(request), want_tokens=True
        )
    assert signed_in.tokens is not None  # noqa: S101 - want_tokens gives tokens
    return _tokens(signed_in.tokens, signed_in.needs_profile)


@api.endpoint(
    "POST",
    "/auth/password/signin",
    summary="Sign in with the mobile number and the account's password",
    body=PasswordSignIn,
    response=Tokens,
    tags=("auth",),
    problems=(401, 429),
)
async def password_signin(request: Request, body: PasswordSignIn) -> Tokens:
    """Only for accounts that set a password; the SMS code always works."""
    with _as_problems(request):
        signed_in = await identity(request).patient_password_sign_in(
            body.phone, body.password, client_of(request), want_tokens=True
        )
    assert signed_in.tokens is not None  # noqa: S101 - want_tokens gives tokens
    return _tokens(signed_in.tokens, signed_in.needs_profile)


@api.endpoint(
    "POST",
    "/auth/staff/signin",
    summary="Staff sign-in: password and authenticator code",
    body=StaffSignIn,
    response=Tokens,
    tags=("auth",),
    problems=(401, 429),
)
async def staff_signin(request: Request, body: StaffSignIn) -> Tokens:
    with _as_problems(request):
        pair = await identity(request).staff_api_sign_in(
            body.login_id, body.password, body.code, client_of(request)
        )
    return _tokens(pair)


@api.endpoint(
    "POST",
    "/auth/token/refresh",
    summary="Trade a refresh token for new tokens",
    body=RefreshRequest,
    response=Tokens,
    tags=("auth",),
    problems=(401,),
)
async def refresh(request: Request, body: RefreshRequest) -> Tokens:
    """A refresh token works once; using it again revokes every token of that sign-in."""
    result = await identity(request).tokens.refresh(body.refresh_token)
    if result is None:
        raise Problem(UNAUTHORIZED)
    return _tokens(result[1])


@api.endpoint(
    "POST",
    "/auth/signout",
    summary="Revoke this sign-in's tokens",
    status_code=204,
    tags=("auth",),
    problems=(401,),
)
async def signout(request: Request) -> Response:
    principal = auth_of(request).principal
    if principal is None:
        raise Problem(UNAUTHORIZED, headers={"WWW-Authenticate": "Bearer"})
    kind = PrincipalKind(principal.kind)
    await identity(request).tokens.revoke_all(kind, principal.id)
    await record(request, principal, "auth.sign_out")
    return Response(status_code=204)


@api.endpoint(
    "GET",
    "/me",
    summary="The signed-in patient and their family",
    response=Me,
    tags=("patients",),
    problems=(401,),
)
async def me(request: Request) -> Me:
    principal = require(request, "patient")
    patients = await accounts.patients_of_account(principal.id)
    await record(
        request,
        principal,
        "patient.read",
        Resource("account", principal.id),
        detail={"records": len(patients)},
    )
    return Me(account_id=principal.id, patients=[_out(p) for p in patients])


@api.endpoint(
    "POST",
    "/me/patients",
    summary="Add the holder's own record or a family member",
    body=FamilyMember,
    response=PatientOut,
    status_code=201,
    tags=("patients",),
    problems=(401, 403),
)
async def add_patient(request: Request, body: FamilyMember) -> Response:
    """The first record of an account is the holder's own (relationship "self")."""
    principal = require(request, "patient")
    await authorize(request, principal, Action.FAMILY_ADD, Resource("account", principal.id))
    data = body.model_dump()
    relationship = data.pop("relationship")
    if not principal.patient_ids:
        relationship = Relationship.SELF
    elif relationship is Relationship.SELF:
        raise Problem(BAD_REQUEST)
    created = await accounts.add_patient(principal.id, relationship, data)
    await record(request, principal, "patient.create", Resource("patient", patient_id=created.id))
    return JSONResponse(_out(created).model_dump(mode="json"), status_code=201)


async def _patient_for(request: Request, action: Action) -> tuple[Patient, Resource]:
    auth = auth_of(request)
    if auth.principal is None:
        raise Problem(UNAUTHORIZED, headers={"WWW-Authenticate": "Bearer"})
    patient_id = str(request.path_params["patient_id"])
    patient = await accounts.find_patient(patient_id)
    clinics = await accounts.clinics_of(patient_id) if patient else frozenset()
    resource = Resource("patient", patient_id=patient_id, clinic_ids=clinics)
    await authorize(request, auth.principal, action, resource)
    assert patient is not None  # noqa: S101 - authorize() refused a missing patient
    return patient, resource


@api.endpoint(
    "GET",
    "/patients/{patient_id}",
    summary="One patient record",
    response=PatientOut,
    tags=("patients",),
    problems=(401, 404),
)
async def get_patient(request: Request) -> PatientOut:
    """For the patient (own or family record) or staff of a clinic the patient is registered at."""
    patient, resource = await _patient_for(request, Action.PATIENT_READ)
    await record(request, auth_of(request).principal, "patient.read", resource)
    return _out(accounts.view_of(patient))


@api.endpoint(
    "PUT",
    "/patients/{patient_id}",
    summary="Change a patient record",
    body=PatientProfile,
    response=PatientOut,
    tags=("patients",),
    problems=(401, 404),
)
async def put_patient(request: Request, body: PatientProfile) -> PatientOut:
    patient, resource = await _patient_for(request, Action.PATIENT_WRITE)
    view = await accounts.update_patient(patient, body.model_dump())
    await record(request, auth_of(request).principal, "patient.update", resource)
    return _out(view)


@api.endpoint(
    "GET",
    "/clinics/{clinic_id}/patients",
    summary="Patients registered at a clinic",
    response=ClinicPatients,
    tags=("clinic",),
    problems=(401, 403, 404),
)
async def clinic_patients(request: Request) -> ClinicPatients:
    principal = require(request, "staff")
    clinic_id = str(request.path_params["clinic_id"])
    resource = Resource("clinic", clinic_id, clinic_ids=frozenset({clinic_id}))
    await authorize(request, principal, Action.PATIENT_LIST, resource)
    rows = await accounts.clinic_patients(clinic_id)
    await record(request, principal, "patient.list", resource, detail={"records": len(rows)})
    return ClinicPatients(
        patients=[ClinicPatient(patient_number=n, patient=_out(v)) for n, v in rows]
    )
