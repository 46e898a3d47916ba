"""``/api/v1/staff/…``: the clinic's set-up for its administrator, for integrations.

The same rules as the pages under ``/staff/clinic`` (views/clinic_setup.py): the bodies are
booking.setup's input schemas, a refused change answers 422 with a message per field (Japanese
and English) and writes nothing, and every change is recorded in the audit log.
"""

from __future__ import annotations

from datetime import date
from zoneinfo import ZoneInfo

from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import Response

from booking import setup
from booking.models import Clinic, HoursException, Menu, Practitioner, WeeklyHours
from patient_portal.api.v1 import api
from patient_portal.auth.policy import Action, Principal, Resource
from patient_portal.problems import VALIDATION, FieldError, Problem, Text
from patient_portal.views.booking import clock
from patient_portal.views.clinic_setup import (
    clinic_admin,
    clinic_staff_ids,
    not_found,
    setup_resource,
)
from patient_portal.views.common import authorize, record, require


class ProfileOut(BaseModel):
    slug: str
    name: str
    name_kana: str
    postal_code: str
    address: str
    phone: str
    departments: list[str]
    time_zone: str
    open_on_holidays: bool
    reminder_offsets_minutes: list[int]


class HoursOut(BaseModel):
    id: str
    weekday: int
    start: str
    end: str
    menu_id: str | None


class PractitionerOut(BaseModel):
    id: str
    display_name: str
    display_name_kana: str
    staff_id: str | None
    is_active: bool
    menu_ids: list[str]
    hours: list[HoursOut]


class MenuOut(BaseModel):
    id: str
    title_ja: str
    title_en: str
    description_ja: str
    description_en: str
    mode: str
    visit_kind: str
    duration_minutes: int
    capacity: int
    fee_yen: int
    booking_fee_yen: int
    questionnaire_id: str | None
    min_notice_minutes: int
    max_days_ahead: int
    buffer_before_minutes: int
    buffer_after_minutes: int
    cancel_deadline_minutes: int
    visible_to_patients: bool
    pre_consultation: bool
    online_rules: list[str]
    sort_order: int
    practitioner_ids: list[str]


class ExceptionOut(BaseModel):
    id: str
    day: date
    practitioner_id: str | None
    closed: bool
    start: str | None
    end: str | None


class HolidayOut(BaseModel):
    day: date
    name: str
    opened: bool


class ClinicSetupOut(BaseModel):
    profile: ProfileOut
    practitioners: list[PractitionerOut]
    menus: list[MenuOut]
    exceptions: list[ExceptionOut]
    holidays: list[HolidayOut]


def _clock(minute: int | None) -> str | None:
    return None if minute is None else setup.clock_text(minute)


def _hours(row: WeeklyHours) -> HoursOut:
    menu_id = row.menu_id  # type: ignore[attr-defined]
    return HoursOut(
        id=str(row.id),
        weekday=row.weekday,
        start=setup.clock_text(row.start_minute),
        end=setup.clock_text(row.end_minute),
        menu_id=str(menu_id) if menu_id else None,
    )


async def _practitioner(practitioner: Practitioner) -> PractitionerOut:
    return PractitionerOut(
        id=str(practitioner.id),
        display_name=practitioner.display_name,
        display_name_kana=practitioner.display_name_kana,
        staff_id=str(practitioner.staff_id) if practitioner.staff_id else None,
        is_active=practitioner.is_active,
        menu_ids=[str(m.id) for m in practitioner.menus],  # type: ignore[attr-defined]
        hours=[_hours(r) for r in await setup.hours_of_practitioner(practitioner)],
    )


def _menu(menu: Menu) -> MenuOut:
    values = setup.menu_values(menu)
    values.update(mode=menu.mode.value, visit_kind=menu.visit_kind.value)
    return MenuOut(
        id=str(menu.id),
        practitioner_ids=[str(p.id) for p in menu.practitioners],
        **values,
    )


def _exception(row: HoursException) -> ExceptionOut:
    practitioner_id = row.practitioner_id  # type: ignore[attr-defined]
    return ExceptionOut(
        id=str(row.id),
        day=row.day,
        practitioner_id=str(practitioner_id) if practitioner_id else None,
        closed=row.closed,
        start=_clock(row.start_minute),
        end=_clock(row.end_minute),
    )


@api.endpoint(
    "GET",
    "/staff/clinic",
    summary="The clinic's set-up: profile, practitioners and their hours, menus, exceptions",
    response=ClinicSetupOut,
    tags=("clinic setup",),
    problems=(401, 403),
)
async def get_clinic_setup(request: Request) -> ClinicSetupOut:
    """For the clinic's administrator (bearer token or session); other staff get 403.
    ``exceptions`` and ``holidays`` run from today in the clinic's zone."""
    principal = require(request, "staff")
    await authorize(
        request,
        principal,
        Action.CLINIC_MANAGE,
        Resource("clinic", clinic_ids=frozenset({principal.clinic_id})),
    )
    clinic = await Clinic.get(id=principal.clinic_id)
    today = clock(request).astimezone(ZoneInfo(clinic.time_zone)).date()
    rows = await setup.upcoming_exceptions(clinic, today)
    holidays = setup.upcoming_holidays(
        today,
        open_on_holidays=clinic.open_on_holidays,
        extra_days={r.day for r in rows if not r.closed and r.practitioner is None},
        within=setup.HOLIDAYS_SHOWN,
    )
    return ClinicSetupOut(
        profile=ProfileOut(**setup.profile_of(clinic)),
        practitioners=[await _practitioner(p) for p in await setup.practitioners(clinic)],
        menus=[_menu(m) for m in await setup.menus(clinic)],
        exceptions=[_exception(r) for r in rows],
        holidays=[HolidayOut(day=h.day, name=h.name, opened=h.opened) for h in holidays],
    )


# --- changes ----------------------------------------------------------------------------------


def _refused(error: setup.SetupInvalid) -> Problem:
    return Problem(
        VALIDATION,
        Text(error.message_ja, error.message_en),
        errors=tuple(
            FieldError(f"body.{p.field}", p.code, Text(p.message_ja, p.message_en))
            for p in error.problems
        ),
    )


async def _own_practitioner(request: Request) -> tuple[Principal, Clinic, Practitioner]:
    """The administrator, their clinic and the practitioner of the path (404 if not theirs)."""
    principal, clinic = await clinic_admin(request)
    key = str(request.path_params["practitioner_id"])
    practitioner = await setup.practitioner_of(clinic, key)
    if practitioner is None:
        await not_found(request, principal, "practitioner", key)
    return principal, clinic, practitioner


@api.endpoint(
    "PUT",
    "/staff/clinic/profile",
    summary="Change the clinic's profile, public page address and calendar defaults",
    body=setup.ClinicProfile,
    response=ProfileOut,
    tags=("clinic setup",),
    problems=(401, 403, 422),
)
async def put_profile(request: Request, body: setup.ClinicProfile) -> ProfileOut:
    principal, clinic = await clinic_admin(request)
    try:
        changed = await setup.update_clinic(clinic, body)
    except setup.SetupInvalid as error:
        raise _refused(error) from None
    if changed:
        await record(
            request,
            principal,
            "clinic.update",
            setup_resource(clinic, "clinic", clinic.id),
            detail={"fields": changed},
        )
    return ProfileOut(**setup.profile_of(clinic))


async def _practitioner_out(practitioner: Practitioner) -> PractitionerOut:
    await practitioner.fetch_related("menus")
    return await _practitioner(practitioner)


@api.endpoint(
    "POST",
    "/staff/practitioners",
    summary="Add a practitioner (optionally linked to a staff account) and the menus they offer",
    body=setup.PractitionerInput,
    response=PractitionerOut,
    status_code=201,
    tags=("clinic setup",),
    problems=(401, 403, 422),
)
async def post_practitioner(request: Request, body: setup.PractitionerInput) -> PractitionerOut:
    principal, clinic = await clinic_admin(request)
    try:
        created = await setup.create_practitioner(
            clinic, body, staff_ids=await clinic_staff_ids(request, clinic)
        )
    except setup.SetupInvalid as error:
        raise _refused(error) from None
    await record(
        request,
        principal,
        "practitioner.create",
        setup_resource(clinic, "practitioner", created.id),
    )
    return await _practitioner_out(created)


@api.endpoint(
    "PUT",
    "/staff/practitioners/{practitioner_id}",
    summary="Change a practitioner: names, linked staff account, menus offered",
    body=setup.PractitionerInput,
    response=PractitionerOut,
    tags=("clinic setup",),
    problems=(401, 403, 404, 422),
)
async def put_practitioner(request: Request, body: setup.PractitionerInput) -> PractitionerOut:
    principal, clinic, practitioner = await _own_practitioner(request)
    key = str(practitioner.id)
    try:
        await setup.update_practitioner(
            clinic, practitioner, body, staff_ids=await clinic_staff_ids(request, clinic)
        )
    except setup.SetupInvalid as error:
        raise _refused(error) from None
    await record(
        request, principal, "practitioner.update", setup_resource(clinic, "practitioner", key)
    )
    return await _practitioner_out(practitioner)


class HoursAdded(BaseModel):
    hours: list[HoursOut]


@api.endpoint(
    "POST",
    "/staff/practitioners/{practitioner_id}/hours",
    summary="Add an opening range on some weekdays (for all menus or one)",
    body=setup.HoursInput,
    response=HoursAdded,
    status_code=201,
    tags=("clinic setup",),
    problems=(401, 403, 404, 422),
)
async def post_hours(request: Request, body: setup.HoursInput) -> HoursAdded:
    principal, clinic, practitioner = await _own_practitioner(request)
    try:
        added = await setup.add_hours(clinic, practitioner, body)
    except setup.SetupInvalid as error:
        raise _refused(error) from None
    for row in added:
        await record(request, principal, "hours.create", setup_resource(clinic, "hours", row.id))
    return HoursAdded(hours=[_hours(row) for row in added])


@api.endpoint(
    "DELETE",
    "/staff/practitioners/{practitioner_id}/hours/{hours_id}",
    summary="Remove an opening range",
    status_code=204,
    tags=("clinic setup",),
    problems=(401, 403, 404),
)
async def delete_hours(request: Request) -> Response:
    principal, clinic, practitioner = await _own_practitioner(request)
    row = await setup.hours_row(practitioner, str(request.path_params["hours_id"]))
    if row is None:
        await not_found(request, principal, "hours", str(request.path_params["hours_id"]))
    await setup.delete_hours(row)
    await record(request, principal, "hours.delete", setup_resource(clinic, "hours", row.id))
    return Response(status_code=204)


@api.endpoint(
    "POST",
    "/staff/menus",
    summary="Add a menu (診療メニュー) with its booking rules",
    body=setup.MenuInput,
    response=MenuOut,
    status_code=201,
    tags=("clinic setup",),
    problems=(401, 403, 422),
)
async def post_menu(request: Request, body: setup.MenuInput) -> MenuOut:
    principal, clinic = await clinic_admin(request)
    try:
        created = await setup.create_menu(clinic, body)
    except setup.SetupInvalid as error:
        raise _refused(error) from None
    await record(request, principal, "menu.create", setup_resource(clinic, "menu", created.id))
    await created.fetch_related("practitioners")
    return _menu(created)


@api.endpoint(
    "PUT",
    "/staff/menus/{menu_id}",
    summary="Change a menu (new bookings follow the change; existing ones keep theirs)",
    body=setup.MenuInput,
    response=MenuOut,
    tags=("clinic setup",),
    problems=(401, 403, 404, 422),
)
async def put_menu(request: Request, body: setup.MenuInput) -> MenuOut:
    principal, clinic = await clinic_admin(request)
    key = str(request.path_params["menu_id"])
    menu = await setup.menu_of(clinic, key)
    if menu is None:
        await not_found(request, principal, "menu", key)
    try:
        changed = await setup.update_menu(clinic, menu, body)
    except setup.SetupInvalid as error:
        raise _refused(error) from None
    await record(
        request,
        principal,
        "menu.update",
        setup_resource(clinic, "menu", key),
        detail={"fields": changed},
    )
    await menu.fetch_related("practitioners")
    return _menu(menu)


@api.endpoint(
    "POST",
    "/staff/exceptions",
    summary="Close a day (or part of it) or add hours, for the clinic or one practitioner",
    body=setup.ExceptionInput,
    response=ExceptionOut,
    status_code=201,
    tags=("clinic setup",),
    problems=(401, 403, 422),
)
async def post_exception(request: Request, body: setup.ExceptionInput) -> ExceptionOut:
    principal, clinic = await clinic_admin(request)
    today = clock(request).astimezone(ZoneInfo(clinic.time_zone)).date()
    try:
        added = await setup.add_exception(clinic, body, today=today)
    except setup.SetupInvalid as error:
        raise _refused(error) from None
    await record(
        request, principal, "exception.create", setup_resource(clinic, "exception", added.id)
    )
    return _exception(added)


@api.endpoint(
    "DELETE",
    "/staff/exceptions/{exception_id}",
    summary="Remove a date exception",
    status_code=204,
    tags=("clinic setup",),
    problems=(401, 403, 404),
)
async def delete_exception(request: Request) -> Response:
    principal, clinic = await clinic_admin(request)
    key = str(request.path_params["exception_id"])
    row = await setup.exception_of(clinic, key)
    if row is None:
        await not_found(request, principal, "exception", key)
    await setup.delete_exception(row)
    await record(request, principal, "exception.delete", setup_resource(clinic, "exception", key))
    return Response(status_code=204)
