"""``/api/v1/staff/clinic``: the clinic's set-up as the administrator sees it, for integrations.

Read-only for now: the pages under ``/staff/clinic`` change it (see views/clinic_setup.py).
"""

from __future__ import annotations

from datetime import date
from zoneinfo import ZoneInfo

from pydantic import BaseModel
from starlette.requests import Request

from booking import setup
from booking.models import Clinic, HoursException, Menu, Practitioner, WeeklyHours
from patient_portal.api.v1 import api
from patient_portal.auth.policy import Action, Resource
from patient_portal.views.booking import clock
from patient_portal.views.common import authorize, require


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
