"""``/api/v1`` booking endpoints: menus and free slots (public), holds and appointments."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from booking import service as booking
from booking import waitlist
from booking.errors import BookingRefused, SlotTaken
from booking.models import Appointment, AppointmentStatus, Clinic
from patient_portal import questionnaire_gate
from patient_portal.api.v1 import api
from patient_portal.appointment_messages import (
    CHANGED,
    CONFIRMED,
    schedule_messages,
)
from patient_portal.auth.policy import Action, Resource
from patient_portal.problems import CONFLICT, NOT_FOUND, VALIDATION, Problem, Text, for_status
from patient_portal.views.booking import (
    after_cancel,
    appointment_resource,
    clock,
    hold_time,
    tell_reception,
)
from patient_portal.views.common import authorize, record, require
from patient_portal.waitlist_jobs import watch_hold


class MenuOut(BaseModel):
    id: str
    title_ja: str
    title_en: str
    mode: str
    visit_kind: str
    duration_minutes: int
    capacity: int
    fee_yen: int
    booking_fee_yen: int
    online_rules: list[str]


class Menus(BaseModel):
    clinic: str
    time_zone: str
    menus: list[MenuOut]


class SlotOut(BaseModel):
    practitioner_id: str
    practitioner_name: str
    start: datetime
    end: datetime
    free_seats: int


class Slots(BaseModel):
    time_zone: str
    slots: list[SlotOut]


class SlotQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    start_day: date | None = Field(default=None, alias="from")
    days: Annotated[int, Field(ge=1, le=31)] = 7


class HoldIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    clinic: Annotated[str, Field(min_length=1, max_length=64)]
    menu_id: Annotated[str, Field(min_length=1, max_length=40)]
    practitioner_id: Annotated[str, Field(min_length=1, max_length=40)]
    start: AwareDatetime


class RescheduleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    practitioner_id: Annotated[str, Field(min_length=1, max_length=40)]
    start: AwareDatetime


class ConfirmIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    patient_id: Annotated[str, Field(min_length=1, max_length=40)]


class AppointmentOut(BaseModel):
    id: str
    clinic: str
    menu_id: str
    practitioner_id: str
    patient_id: str | None
    start: datetime
    end: datetime
    status: AppointmentStatus
    hold_expires_at: datetime | None


class AppointmentsOut(BaseModel):
    appointments: list[AppointmentOut]


def _out(appointment: Appointment, clinic_slug: str) -> AppointmentOut:
    return AppointmentOut(
        id=str(appointment.id),
        clinic=clinic_slug,
        menu_id=str(appointment.menu_id),  # type: ignore[attr-defined]
        practitioner_id=str(appointment.practitioner_id),  # type: ignore[attr-defined]
        patient_id=str(appointment.patient_id) if appointment.patient_id else None,
        start=appointment.starts_at,
        end=appointment.ends_at,
        status=appointment.status,
        hold_expires_at=appointment.hold_expires_at,
    )


def _problem(error: BookingRefused) -> Problem:
    """A refusal as problem details; a taken slot lists the free times nearby."""
    extensions: dict[str, Any] = {}
    if isinstance(error, SlotTaken):
        extensions["alternatives"] = [
            {"start": slot.start.isoformat(), "end": slot.end.isoformat()}
            for slot in error.alternatives
            if hasattr(slot, "start") and hasattr(slot, "end")
        ]
    return Problem(
        for_status(error.status), Text(error.message_ja, error.message_en), extensions=extensions
    )


async def _clinic(slug: str) -> Clinic:
    clinic = await booking.clinic_by_slug(slug)
    if clinic is None:
        raise Problem(NOT_FOUND)
    return clinic


@api.endpoint(
    "GET",
    "/clinics/{slug}/menus",
    summary="A clinic's bookable menus",
    response=Menus,
    tags=("booking",),
    problems=(404,),
)
async def get_menus(request: Request) -> Menus:
    clinic = await _clinic(str(request.path_params["slug"]))
    menus = await booking.patient_menus(clinic)
    return Menus(
        clinic=clinic.slug,
        time_zone=clinic.time_zone,
        menus=[
            MenuOut(
                id=str(m.id),
                title_ja=m.title_ja,
                title_en=m.title_en,
                mode=m.mode.value,
                visit_kind=m.visit_kind.value,
                duration_minutes=m.duration_minutes,
                capacity=m.capacity,
                fee_yen=m.fee_yen,
                booking_fee_yen=m.booking_fee_yen,
                online_rules=list(m.online_rules),
            )
            for m in menus
        ],
    )


@api.endpoint(
    "GET",
    "/clinics/{slug}/menus/{menu_id}/slots",
    summary="Free times of a menu",
    query=SlotQuery,
    response=Slots,
    tags=("booking",),
    problems=(404,),
)
async def get_slots(request: Request, query: BaseModel) -> Slots:
    """Times are ISO 8601 with the clinic's offset; ``from`` is a day in the clinic's zone."""
    assert isinstance(query, SlotQuery)  # noqa: S101 - declared above
    clinic = await _clinic(str(request.path_params["slug"]))
    menu = await booking.menu_of_clinic(clinic, str(request.path_params["menu_id"]))
    if menu is None or not menu.visible_to_patients:
        raise Problem(NOT_FOUND)
    found = await booking.search(
        clinic, menu, now=clock(request), start_day=query.start_day, days=query.days
    )
    zone = ZoneInfo(clinic.time_zone)
    slots = [
        SlotOut(
            practitioner_id=offer.practitioner_id,
            practitioner_name=offer.practitioner_name,
            start=slot.start.astimezone(zone),
            end=slot.end.astimezone(zone),
            free_seats=slot.free_seats,
        )
        for offer in found
        for slot in offer.slots
    ]
    return Slots(time_zone=clinic.time_zone, slots=sorted(slots, key=lambda s: s.start))


@api.endpoint(
    "POST",
    "/holds",
    summary="Keep a free time while the patient completes booking",
    body=HoldIn,
    response=AppointmentOut,
    status_code=201,
    tags=("booking",),
    problems=(401, 404, 409, 422),
)
async def post_hold(request: Request, body: HoldIn) -> Response:
    """409 when the time was just taken (``alternatives`` in the problem lists free times)."""
    principal = require(request, "patient")
    clinic = await _clinic(body.clinic)
    menu = await booking.menu_of_clinic(clinic, body.menu_id)
    if menu is None or not menu.visible_to_patients:
        raise Problem(NOT_FOUND)
    try:
        appointment = await booking.hold(
            clinic,
            menu,
            practitioner_id=body.practitioner_id,
            start=body.start,
            account_id=principal.id,
            now=clock(request),
            hold_for=hold_time(request),
        )
    except BookingRefused as error:
        raise _problem(error) from None
    await record(request, principal, "appointment.hold", appointment_resource(appointment))
    await watch_hold(request.app.state.jobs, appointment)
    return JSONResponse(_out(appointment, clinic.slug).model_dump(mode="json"), status_code=201)


async def _own(request: Request, action: Action) -> tuple[Appointment, Any]:
    principal = require(request, "patient")
    appointment_id = str(request.path_params["appointment_id"])
    try:
        appointment: Appointment | None = await booking.account_appointment(
            appointment_id, principal.id
        )
    except BookingRefused:
        appointment = None
    resource = (
        appointment_resource(appointment)
        if appointment
        else Resource("appointment", appointment_id)
    )
    await authorize(request, principal, action, resource)
    assert appointment is not None  # noqa: S101 - authorize() refused a missing one
    return appointment, principal


@api.endpoint(
    "POST",
    "/appointments/{appointment_id}/confirm",
    summary="Book the held time for the account holder or a family member",
    body=ConfirmIn,
    response=AppointmentOut,
    tags=("booking",),
    problems=(401, 404, 409),
)
async def post_confirm(request: Request, body: ConfirmIn) -> AppointmentOut:
    appointment, principal = await _own(request, Action.APPOINTMENT_BOOK)
    if body.patient_id not in principal.patient_ids:
        raise Problem(
            VALIDATION,
            Text("この方はこのアカウントの患者ではありません", "Not a patient of this account"),
        )
    if appointment.status is AppointmentStatus.HELD:
        answered = await questionnaire_gate.answered(appointment, body.patient_id)
        if answered is None:
            raise Problem(
                CONFLICT,
                Text(
                    "先に問診票にお答えください",
                    "Please answer the questionnaire before booking",
                ),
                extensions={
                    "questionnaire": f"/api/v1/appointments/{appointment.id}/questionnaire"
                },
            )
        menu = await appointment.menu
        if not isinstance(answered, bool) and questionnaire_gate.online_blocked(menu, answered):
            raise Problem(
                CONFLICT,
                Text(
                    "問診の回答から、この診療はオンラインでは受けられません",
                    "From the answers, this visit cannot take place online",
                ),
            )
    try:
        booked = await booking.confirm(
            str(appointment.id),
            account_id=principal.id,
            patient_id=body.patient_id,
            now=clock(request),
        )
    except BookingRefused as error:
        raise _problem(error) from None
    await record(request, principal, "appointment.book", appointment_resource(booked))
    await waitlist.mark_booked(str(booked.id), now=clock(request))
    await schedule_messages(request.app.state.jobs, booked, CONFIRMED, now=clock(request))
    await tell_reception(request, booked)
    return _out(booked, (await booked.clinic).slug)


@api.endpoint(
    "POST",
    "/appointments/{appointment_id}/cancel",
    summary="Cancel an appointment",
    response=AppointmentOut,
    tags=("booking",),
    problems=(401, 404, 409),
)
async def post_cancel(request: Request) -> AppointmentOut:
    appointment, principal = await _own(request, Action.APPOINTMENT_CANCEL)
    try:
        cancelled = await booking.cancel(appointment, now=clock(request))
    except BookingRefused as error:
        raise _problem(error) from None
    await record(request, principal, "appointment.cancel", appointment_resource(cancelled))
    await after_cancel(request, cancelled)
    await tell_reception(request, cancelled)
    return _out(cancelled, (await cancelled.clinic).slug)


@api.endpoint(
    "POST",
    "/appointments/{appointment_id}/reschedule",
    summary="Move a booking to another free time of the same menu",
    body=RescheduleIn,
    response=AppointmentOut,
    tags=("booking",),
    problems=(401, 404, 409, 422),
)
async def post_reschedule(request: Request, body: RescheduleIn) -> AppointmentOut:
    """The answer is the new appointment; the old one is cancelled in the same transaction."""
    appointment, principal = await _own(request, Action.APPOINTMENT_CANCEL)
    try:
        moved = await booking.reschedule(
            appointment,
            practitioner_id=body.practitioner_id,
            start=body.start,
            now=clock(request),
        )
    except BookingRefused as error:
        raise _problem(error) from None
    await record(request, principal, "appointment.reschedule", appointment_resource(moved))
    await schedule_messages(request.app.state.jobs, moved, CHANGED, now=clock(request))
    await tell_reception(request, appointment, moved)
    return _out(moved, (await moved.clinic).slug)


@api.endpoint(
    "GET",
    "/appointments",
    summary="The account's appointments, newest first",
    response=AppointmentsOut,
    tags=("booking",),
    problems=(401,),
)
async def get_appointments(request: Request) -> AppointmentsOut:
    principal = require(request, "patient")
    rows = await booking.appointments_of_account(principal.id)
    await record(request, principal, "appointment.list", Resource("account", principal.id))
    return AppointmentsOut(appointments=[_out(a, a.clinic.slug) for a in rows])


class WaitlistIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    clinic: Annotated[str, Field(min_length=1, max_length=64)]
    menu_id: Annotated[str, Field(min_length=1, max_length=40)]
    patient_id: Annotated[str, Field(min_length=1, max_length=40)]
    first_day: date
    last_day: date


class WaitlistOut(BaseModel):
    id: str
    clinic: str
    menu_id: str
    patient_id: str
    first_day: date
    last_day: date
    status: str
    offer_appointment_id: str | None


class WaitlistList(BaseModel):
    entries: list[WaitlistOut]


def _entry(entry: Any, clinic_slug: str) -> WaitlistOut:
    return WaitlistOut(
        id=str(entry.id),
        clinic=clinic_slug,
        menu_id=str(entry.menu_id),
        patient_id=str(entry.patient_id),
        first_day=entry.first_day,
        last_day=entry.last_day,
        status=entry.status.value,
        offer_appointment_id=str(entry.offer_appointment_id)
        if entry.offer_appointment_id
        else None,
    )


@api.endpoint(
    "POST",
    "/waitlist",
    summary="Wait for a seat of a menu on some days; a freed seat is offered by SMS",
    body=WaitlistIn,
    response=WaitlistOut,
    status_code=201,
    tags=("booking",),
    problems=(401, 404, 422),
)
async def post_waitlist(request: Request, body: WaitlistIn) -> Response:
    """First come, first served; an offer is held for 30 minutes for the patient to confirm."""
    principal = require(request, "patient")
    clinic = await _clinic(body.clinic)
    menu = await booking.menu_of_clinic(clinic, body.menu_id)
    if menu is None or not menu.visible_to_patients:
        raise Problem(NOT_FOUND)
    if body.patient_id not in principal.patient_ids:
        raise Problem(
            VALIDATION,
            Text("この方はこのアカウントの患者ではありません", "Not a patient of this account"),
        )
    try:
        entry = await waitlist.join(
            clinic,
            menu,
            account_id=principal.id,
            patient_id=body.patient_id,
            first_day=body.first_day,
            last_day=body.last_day,
            now=clock(request),
        )
    except BookingRefused as error:
        raise _problem(error) from None
    await record(request, principal, "waitlist.join", Resource("account", principal.id))
    return JSONResponse(_entry(entry, clinic.slug).model_dump(mode="json"), status_code=201)


@api.endpoint(
    "GET",
    "/waitlist",
    summary="The account's waitlist entries still waiting or offered",
    response=WaitlistList,
    tags=("booking",),
    problems=(401,),
)
async def get_waitlist(request: Request) -> WaitlistList:
    principal = require(request, "patient")
    entries = await waitlist.entries_of_account(principal.id)
    return WaitlistList(entries=[_entry(e, e.clinic.slug) for e in entries])
