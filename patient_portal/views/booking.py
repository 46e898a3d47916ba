"""Booking pages: a clinic's menus, free slots, hold → confirm, my appointments, the day list
(受付一覧) and the event stream that keeps it current."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final
from zoneinfo import ZoneInfo

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from booking import eligibility, waitlist
from booking import service as booking
from booking.calendar import appointment_ics
from booking.errors import BookingRefused, SlotUnavailable
from booking.models import Appointment, AppointmentStatus, Clinic
from patient_portal import appointment_links, consults, questionnaire_gate, reception
from patient_portal.accounts import service as accounts
from patient_portal.appointment_messages import (
    CANCELLED,
    CHANGED,
    CONFIRMED,
    schedule_messages,
)
from patient_portal.auth.middleware import auth_of
from patient_portal.auth.models import PrincipalKind
from patient_portal.auth.policy import Action, Principal, Resource
from patient_portal.auth.sessions import LIFETIMES
from patient_portal.problems import Text
from patient_portal.templating import request_locale
from patient_portal.views.common import (
    authorize,
    form_of,
    identity,
    message,
    page,
    record,
    redirect,
    require,
    safe_next,
)
from patient_portal.waitlist_jobs import seat_freed, watch_hold

logger = logging.getLogger(__name__)

DAYS_SHOWN = 7


def clock(request: Request) -> datetime:
    now: datetime = request.app.state.clock()
    return now.astimezone(UTC)


def hold_time(request: Request) -> timedelta:
    """How long a chosen time is kept for the patient (TSUNAGU_HOLD_MINUTES)."""
    return timedelta(minutes=request.app.state.settings.hold_minutes)


def booking_text(error: BookingRefused) -> Text:
    return Text(error.message_ja, error.message_en)


def refusal(
    request: Request, error: BookingRefused, *, back: str, clinic: Clinic | None = None
) -> Response:
    """The page for a refused booking step: what went wrong, free times nearby, a way back."""
    return page(
        request,
        "booking/problem.html",
        {
            "error": message(request, booking_text(error)),
            "back": back,
            "alternatives": getattr(error, "alternatives", []),
            "zone": ZoneInfo(clinic.time_zone) if clinic else None,
        },
        status=error.status,
    )


async def _clinic(slug: str) -> Clinic:
    clinic = await booking.clinic_by_slug(slug)
    if clinic is None:
        raise HTTPException(404)
    return clinic


def _day(value: str | None, today: date) -> date:
    try:
        chosen = date.fromisoformat(value) if value else today
    except ValueError:
        return today
    return chosen if chosen >= today else today


def appointment_resource(appointment: Appointment) -> Resource:
    return Resource(
        "appointment",
        str(appointment.id),
        clinic_ids=frozenset({str(appointment.clinic_id)}),  # type: ignore[attr-defined]
        patient_id=str(appointment.patient_id or ""),
        account_id=str(appointment.account_id),
    )


# What a clinician's look at an appointment is about, for the role check before the lookup.
_CLINICAL_KIND: Final = {
    Action.FORM_RESPONSE_READ: "form_response",
    Action.RECORDING_READ: "recording",
}


async def clinician_appointment(
    request: Request,
    action: Action = Action.FORM_RESPONSE_READ,
    appointment_id: str | None = None,
) -> tuple[Principal, Appointment, Resource]:
    """The signed-in clinician allowed ``action`` and the appointment (the path's, unless given)
    of their clinic. A role that may never (a receptionist) is told 403; another clinic's or no
    appointment, 404."""
    principal = require(request, "staff")
    clinic = frozenset({principal.clinic_id}) if principal.clinic_id else frozenset()
    await authorize(request, principal, action, Resource(_CLINICAL_KIND[action], clinic_ids=clinic))
    if appointment_id is None:
        appointment_id = str(request.path_params["appointment_id"])
    appointment = await booking.clinic_appointment(principal.clinic_id, appointment_id)
    resource = Resource("appointment", appointment_id)
    if appointment is not None:
        resource = appointment_resource(appointment)
    await authorize(request, principal, action, resource)
    assert appointment is not None  # noqa: S101 - authorize() refused a missing one
    return principal, appointment, resource


def menu_title(menu: Any, locale: str) -> str:
    return str(menu.title_ja if locale == "ja" else menu.title_en)


async def clinic_page(request: Request) -> Response:
    clinic = await _clinic(str(request.path_params["slug"]))
    menus = await booking.patient_menus(clinic)
    return page(
        request,
        "booking/clinic.html",
        {"clinic": clinic, "menus": menus, "rules_shown": eligibility.rules_shown},
    )


async def menu_slots(request: Request) -> Response:
    clinic = await _clinic(str(request.path_params["slug"]))
    menu = await booking.menu_of_clinic(clinic, str(request.path_params["menu_id"]))
    if menu is None or not menu.visible_to_patients:
        raise HTTPException(404)
    context = await _calendar(request, clinic, menu)
    context["hold_action"] = f"/clinics/{clinic.slug}/menus/{menu.id}/hold"
    return page(request, "booking/slots.html", context)


async def _calendar(request: Request, clinic: Clinic, menu: Any) -> dict[str, Any]:
    """A week of free times of ``menu``, grouped by day in the clinic's zone."""
    patient = _patient(request)
    zone = ZoneInfo(clinic.time_zone)
    now = clock(request)
    today = now.astimezone(zone).date()
    start_day = _day(request.query_params.get("day"), today)
    found = await booking.search(clinic, menu, now=now, start_day=start_day, days=DAYS_SHOWN)
    days: dict[date, list[tuple[str, str, Any]]] = {}
    for offer in found:
        for slot in offer.slots:
            local = slot.start.astimezone(zone)
            days.setdefault(local.date(), []).append(
                (offer.practitioner_id, offer.practitioner_name, slot)
            )
    calendar = [
        (day, sorted(days.get(day, []), key=lambda item: item[2].start))
        for day in (start_day + timedelta(days=n) for n in range(DAYS_SHOWN))
    ]
    return {
        "clinic": clinic,
        "menu": menu,
        "title": menu_title(menu, request_locale(request)),
        "calendar": calendar,
        "zone": zone,
        "previous": start_day - timedelta(days=DAYS_SHOWN) if start_day > today else None,
        "next": start_day + timedelta(days=DAYS_SHOWN),
        "signed_in": _patient(request) is not None,
        "patients": await accounts.patients_of_account(patient.id) if patient else [],
        "waitlist_action": f"/clinics/{clinic.slug}/menus/{menu.id}/waitlist",
        "rescheduling": False,
    }


async def after_cancel(request: Request, appointment: Appointment) -> None:
    """A cancelled booking: tell the patient, and offer the seat to the waitlist."""
    if appointment.patient_id is None:
        return  # a hold let go: nobody to tell, and the seat frees by itself
    jobs = request.app.state.jobs
    await schedule_messages(jobs, appointment, CANCELLED, now=clock(request))
    await seat_freed(jobs, appointment)


async def join_waitlist(request: Request) -> Response:
    """Wait for a seat of this menu on a day (offered by SMS when one frees)."""
    principal = require(request, "patient")
    clinic = await _clinic(str(request.path_params["slug"]))
    menu = await booking.menu_of_clinic(clinic, str(request.path_params["menu_id"]))
    if menu is None or not menu.visible_to_patients:
        raise HTTPException(404)
    form = await form_of(request)
    patient_id = form.get("patient_id", "")
    if patient_id not in principal.patient_ids:
        await authorize(
            request, principal, Action.APPOINTMENT_BOOK, Resource("patient", patient_id=patient_id)
        )
    day = _day(form.get("day"), clock(request).astimezone(ZoneInfo(clinic.time_zone)).date())
    try:
        await waitlist.join(
            clinic,
            menu,
            account_id=principal.id,
            patient_id=patient_id,
            first_day=day,
            last_day=day,
            now=clock(request),
        )
    except BookingRefused as error:
        return refusal(request, error, back="/appointments")
    await record(request, principal, "waitlist.join", Resource("account", principal.id))
    return redirect("/appointments")


async def withdraw_waitlist(request: Request) -> Response:
    principal = require(request, "patient")
    withdrawn = await waitlist.withdraw(
        str(request.path_params["entry_id"]), account_id=principal.id, now=clock(request)
    )
    if not withdrawn:
        raise HTTPException(404)
    await record(request, principal, "waitlist.withdraw", Resource("account", principal.id))
    return redirect("/appointments")


def _patient(request: Request) -> Principal | None:
    principal = auth_of(request).principal
    return principal if principal is not None and principal.kind == "patient" else None


async def hold_slot(request: Request) -> Response:
    principal = require(request, "patient")
    clinic = await _clinic(str(request.path_params["slug"]))
    menu = await booking.menu_of_clinic(clinic, str(request.path_params["menu_id"]))
    if menu is None or not menu.visible_to_patients:
        raise HTTPException(404)
    form = await form_of(request)
    try:
        try:
            start = datetime.fromisoformat(form.get("start", ""))
        except ValueError:
            raise SlotUnavailable() from None
        appointment = await booking.hold(
            clinic,
            menu,
            practitioner_id=form.get("practitioner_id", ""),
            start=start,
            account_id=principal.id,
            now=clock(request),
            hold_for=hold_time(request),
        )
    except BookingRefused as error:
        return refusal(
            request, error, back=f"/clinics/{clinic.slug}/menus/{menu.id}", clinic=clinic
        )
    await record(request, principal, "appointment.hold", appointment_resource(appointment))
    await watch_hold(request.app.state.jobs, appointment)
    return redirect(f"/appointments/{appointment.id}/confirm")


async def _own_appointment(request: Request, principal: Principal, action: Action) -> Appointment:
    try:
        appointment = await booking.account_appointment(
            str(request.path_params["appointment_id"]), principal.id
        )
    except BookingRefused:
        appointment = None
    if appointment is None:
        await authorize(
            request,
            principal,
            action,
            Resource("appointment", str(request.path_params["appointment_id"])),
        )
        raise HTTPException(404)
    await authorize(request, principal, action, appointment_resource(appointment))
    return appointment


async def confirm(request: Request) -> Response:
    principal = require(request, "patient")
    appointment = await _own_appointment(request, principal, Action.APPOINTMENT_BOOK)
    patients = await accounts.patients_of_account(principal.id)
    clinic = await appointment.clinic
    menu = await appointment.menu
    zone = ZoneInfo(clinic.time_zone)
    context: dict[str, Any] = {
        "appointment": appointment,
        "clinic": clinic,
        "title": menu_title(menu, request_locale(request)),
        "menu": menu,
        "patients": patients,
        "zone": zone,
        "error": None,
        "questionnaire": await questionnaire_gate.questionnaire_needed(appointment) is not None,
        "answered_for": await questionnaire_gate.answered_by(appointment),
    }
    if request.method == "GET":
        if appointment.status is not AppointmentStatus.HELD:
            return redirect("/appointments")
        return page(request, "booking/confirm.html", context)
    form = await form_of(request)
    patient_id = form.get("patient_id", "")
    if patient_id not in principal.patient_ids:
        await authorize(
            request, principal, Action.APPOINTMENT_BOOK, Resource("patient", patient_id=patient_id)
        )
    now = clock(request)
    if appointment.status is AppointmentStatus.HELD:
        answers = await questionnaire_gate.answered(appointment, patient_id)
        if answers is None:  # the menu's questionnaire comes first, for the patient chosen
            await questionnaire_gate.begin(appointment, patient_id, now)
            return redirect(f"/appointments/{appointment.id}/questionnaire")
        if not isinstance(answers, bool) and questionnaire_gate.online_blocked(menu, answers):
            return redirect(f"/appointments/{appointment.id}/questionnaire/done")
    try:
        booked = await booking.confirm(
            str(appointment.id), account_id=principal.id, patient_id=patient_id, now=now
        )
    except BookingRefused as error:
        context["error"] = message(request, booking_text(error))
        return page(request, "booking/confirm.html", context, status=error.status)
    await record(request, principal, "appointment.book", appointment_resource(booked))
    await tell_reception(request, booked)
    await waitlist.mark_booked(str(booked.id), now=clock(request))
    await schedule_messages(request.app.state.jobs, booked, CONFIRMED, now=clock(request))
    return redirect("/appointments")


async def open_link(request: Request) -> Response:
    """A link from a message: the appointment for its own account, else only clinic and time."""
    token = str(request.path_params["token"])
    target = appointment_links.read_token(request.app.state.settings.secret_key.reveal(), token)
    appointment = (
        await Appointment.get_or_none(id=target.appointment_id).prefetch_related("clinic")
        if target
        else None
    )
    if target is None or appointment is None:
        raise HTTPException(404, "This link is not valid.")
    context: dict[str, Any] = {"appointment": None, "expired": False, "next": "/appointments"}
    if target.expired(clock(request)):
        context["expired"] = True
        return page(request, "booking/link.html", context, status=410)
    principal = _patient(request)
    if principal is not None and principal.id == str(appointment.account_id):
        await record(request, principal, "appointment.link_open", appointment_resource(appointment))
        if appointment.status is AppointmentStatus.HELD:
            return redirect(f"/appointments/{appointment.id}/confirm")
        return redirect(f"/appointments#appointment-{appointment.id}")
    clinic = appointment.clinic
    context.update(
        appointment=appointment,
        clinic=clinic,
        zone=ZoneInfo(clinic.time_zone),
        next=f"{appointment_links.PATH_PREFIX}{token}",
    )
    return page(request, "booking/link.html", context)


async def my_appointments(request: Request) -> Response:
    principal = require(request, "patient")
    rows = await booking.appointments_of_account(principal.id)
    waiting = await waitlist.entries_of_account(principal.id)
    patients = {p.id: p for p in await accounts.patients_of_account(principal.id)}
    now = clock(request)
    await record(request, principal, "appointment.list", Resource("account", principal.id))
    return page(
        request,
        "booking/appointments.html",
        {
            "upcoming": [
                a for a in reversed(rows) if a.ends_at > now and a.status in booking.ACTIVE
            ],
            "past": [a for a in rows if not (a.ends_at > now and a.status in booking.ACTIVE)],
            "patients": patients,
            "waiting": waiting,
            "locale": request_locale(request),
            "zone_of": lambda a: ZoneInfo(a.clinic.time_zone),
            "title_of": lambda a: menu_title(a.menu, request_locale(request)),
        },
    )


async def cancel(request: Request) -> Response:
    principal = require(request, "patient")
    appointment = await _own_appointment(request, principal, Action.APPOINTMENT_CANCEL)
    try:
        await booking.cancel(appointment, now=clock(request))
    except BookingRefused as error:
        return refusal(request, error, back="/appointments")
    await record(request, principal, "appointment.cancel", appointment_resource(appointment))
    await tell_reception(request, appointment)
    await after_cancel(request, appointment)
    return redirect("/appointments")


async def _schedule_reader(request: Request) -> tuple[Principal, Resource]:
    """The signed-in staff member allowed to read their own clinic's reception list."""
    principal = require(request, "staff")
    clinic_resource = Resource(
        "clinic", principal.clinic_id, clinic_ids=frozenset({principal.clinic_id})
    )
    await authorize(request, principal, Action.SCHEDULE_READ, clinic_resource)
    return principal, clinic_resource


async def _schedule_day(
    request: Request, principal: Principal, clinic_resource: Resource, view: str
) -> dict[str, Any]:
    """The reception list of the requested day, read (and audited) for the page or its rows."""
    clinic = await Clinic.get(id=principal.clinic_id)
    zone = ZoneInfo(clinic.time_zone)
    today = clock(request).astimezone(zone).date()
    try:
        day = date.fromisoformat(request.query_params.get("day", ""))
    except ValueError:
        day = today
    rows = await booking.clinic_day(principal.clinic_id, day, zone)
    patients = await accounts.find_patients(str(a.patient_id) for a in rows if a.patient_id)
    await record(
        request,
        principal,
        "schedule.read",
        clinic_resource,
        detail={"view": view, "day": day.isoformat(), "rows": len(rows)},
    )
    return {
        "day": day,
        "rows": rows,
        "patients": {k: accounts.view_of(v) for k, v in patients.items()},
        "zone": zone,
        "locale": request_locale(request),
        "transitions": booking.STAFF_TRANSITIONS,
        "waiting": await consults.waiting_patients([str(a.id) for a in rows]),
    }


async def schedule(request: Request) -> Response:
    """The reception list of a day (受付一覧). With JavaScript it keeps itself current
    (reception.js: the event stream below, then its rows again); without, a reload does."""
    principal, clinic_resource = await _schedule_reader(request)
    context = await _schedule_day(request, principal, clinic_resource, "reception")
    day: date = context["day"]
    context.update(
        previous=day - timedelta(days=1),
        next=day + timedelta(days=1),
        pause_after=int(
            (LIFETIMES[PrincipalKind.STAFF].idle - reception.LIVE_PAUSE_MARGIN).total_seconds()
        ),
    )
    return page(request, "booking/schedule.html", context)


async def schedule_rows(request: Request) -> Response:
    """The list's rows alone (its ``<tbody>``), which reception.js fetches after a change."""
    principal, clinic_resource = await _schedule_reader(request)
    context = await _schedule_day(request, principal, clinic_resource, "reception.rows")
    response = page(request, "booking/_schedule_rows.html", context)
    response.headers["Cache-Control"] = "no-store"
    return response


def _still_signed_in(request: Request, principal: Principal) -> Callable[[], Awaitable[bool]]:
    """Whether the stream's caller is still signed in as ``principal`` — asked without touching
    the session, so an open stream does not keep an idle session alive by itself."""
    context = auth_of(request)
    who = identity(request)
    scheme, _, bearer = request.headers.get("authorization", "").partition(" ")

    async def check() -> bool:
        if context.session is None:
            again = await who.resolve(None, bearer.strip() if scheme.lower() == "bearer" else None)
            return again.principal == principal
        live = await who.sessions.active(PrincipalKind.STAFF, principal.id)
        if all(session.id != context.session.id for session in live):
            return False
        return await who.principal(PrincipalKind.STAFF, principal.id) == principal

    return check


async def reception_events(request: Request) -> Response:
    """Tells an open reception list that something of its clinic changed (a consult room, a
    status, a booking or a cancellation): server-sent events, no patient data."""
    principal, _ = await _schedule_reader(request)
    events = reception.reception_stream(
        request.app.state.pubsub,
        consults.reception_channel(principal.clinic_id),
        _still_signed_in(request, principal),
        heartbeat=reception.HEARTBEAT_SECONDS,
        lifetime=reception.STREAM_SECONDS,
    )
    return reception.EventStream(events)


async def tell_reception(request: Request, *appointments: Appointment) -> None:
    """Let the clinic's open reception lists know these appointments changed (best effort)."""
    await reception.tell(request.app.state.pubsub, *appointments)


async def set_status(request: Request) -> Response:
    principal = require(request, "staff")
    appointment = await booking.clinic_appointment(
        principal.clinic_id, str(request.path_params["appointment_id"])
    )
    resource = (
        appointment_resource(appointment)
        if appointment
        else Resource("appointment", str(request.path_params["appointment_id"]))
    )
    await authorize(request, principal, Action.APPOINTMENT_MANAGE, resource)
    assert appointment is not None  # noqa: S101 - authorize() refused a missing one
    form = await form_of(request)
    try:
        status = AppointmentStatus(form.get("status", ""))
        if status is AppointmentStatus.CANCELLED:
            await authorize(request, principal, Action.APPOINTMENT_CANCEL, resource)
            await booking.cancel(appointment, now=clock(request), by_staff=True)
            await after_cancel(request, appointment)
        else:
            await booking.set_status(appointment, status, now=clock(request))
    except (ValueError, BookingRefused):
        raise HTTPException(400) from None
    await record(
        request, principal, "appointment.status", resource, detail={"status": status.value}
    )
    await tell_reception(request, appointment)
    local_day = appointment.starts_at.astimezone(ZoneInfo((await appointment.clinic).time_zone))
    back = f"/staff/schedule?day={local_day.date().isoformat()}"
    after = safe_next(form.get("next"), back)
    return redirect(after if after.startswith("/staff/") else back)


async def reschedule(request: Request) -> Response:
    """Choose another time for a booking (GET: the free times; POST: move it there)."""
    principal = require(request, "patient")
    appointment = await _own_appointment(request, principal, Action.APPOINTMENT_CANCEL)
    clinic = await appointment.clinic
    menu = await appointment.menu
    here = f"/appointments/{appointment.id}/reschedule"
    if request.method == "GET":
        context = await _calendar(request, clinic, menu)
        context.update(hold_action=here, rescheduling=True)
        return page(request, "booking/slots.html", context)
    form = await form_of(request)
    try:
        try:
            start = datetime.fromisoformat(form.get("start", ""))
        except ValueError:
            raise SlotUnavailable() from None
        moved = await booking.reschedule(
            appointment,
            practitioner_id=form.get("practitioner_id", ""),
            start=start,
            now=clock(request),
        )
    except BookingRefused as error:
        return refusal(request, error, back=here, clinic=clinic)
    await record(request, principal, "appointment.reschedule", appointment_resource(moved))
    await tell_reception(request, appointment, moved)
    await schedule_messages(request.app.state.jobs, moved, CHANGED, now=clock(request))
    return redirect("/appointments")


async def calendar_file(request: Request) -> Response:
    """The appointment as an .ics file for the patient's calendar."""
    principal = require(request, "patient")
    appointment = await _own_appointment(request, principal, Action.APPOINTMENT_READ)
    clinic = await appointment.clinic
    menu = await appointment.menu
    body = appointment_ics(
        uid=str(appointment.id),
        start=appointment.starts_at.astimezone(ZoneInfo(clinic.time_zone)),
        end=appointment.ends_at.astimezone(ZoneInfo(clinic.time_zone)),
        summary=f"{clinic.name} — {menu_title(menu, request_locale(request))}",
        location=f"〒{clinic.postal_code} {clinic.address}",
        url=f"{request.app.state.settings.public_url}/appointments",
        stamp=clock(request),
    )
    return Response(
        body,
        media_type="text/calendar; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="appointment.ics"'},
    )


async def staff_book(request: Request) -> Response:
    """Book for a registered patient (on the phone): any menu of the clinic, any free time, or
    — deliberately — a full one (over-booking, recorded in the audit log)."""
    principal = require(request, "staff")
    patient_id = str(request.path_params["patient_id"])
    patient = await accounts.find_patient(patient_id)
    clinics = await accounts.clinics_of(patient_id) if patient else frozenset()
    resource = Resource("patient", patient_id=patient_id, clinic_ids=clinics)
    await authorize(request, principal, Action.APPOINTMENT_MANAGE, resource)
    assert patient is not None  # noqa: S101 - authorize() refused a missing patient
    clinic = await Clinic.get(id=principal.clinic_id)
    menus = await booking.clinic_menus(clinic)
    here = f"/staff/patients/{patient_id}/book"
    if request.method == "POST":
        form = await form_of(request)
        menu = await booking.menu_of_clinic(clinic, form.get("menu_id", ""))
        overbook = form.get("overbook") == "1"
        try:
            if menu is None:
                raise SlotUnavailable()
            try:
                start = datetime.fromisoformat(form.get("start", ""))
            except ValueError:
                raise SlotUnavailable() from None
            booked = await booking.book_for_patient(
                clinic,
                menu,
                practitioner_id=form.get("practitioner_id", ""),
                start=start,
                account_id=str(patient.account_id),  # type: ignore[attr-defined]
                patient_id=patient_id,
                now=clock(request),
                overbook=overbook,
            )
        except BookingRefused as error:
            return refusal(request, error, back=here, clinic=clinic)
        action = "appointment.overbook" if overbook else "appointment.book"
        await record(request, principal, action, appointment_resource(booked))
        await tell_reception(request, booked)
        await schedule_messages(request.app.state.jobs, booked, CONFIRMED, now=clock(request))
        day = booked.starts_at.astimezone(ZoneInfo(clinic.time_zone)).date().isoformat()
        return redirect(f"/staff/schedule?day={day}")
    chosen = await booking.menu_of_clinic(clinic, request.query_params.get("menu", ""))
    menu = chosen or (menus[0] if menus else None)
    context: dict[str, Any] = {
        "patient": accounts.view_of(patient),
        "menus": menus,
        "menu": menu,
        "here": here,
    }
    if menu is not None:
        context.update(await _calendar(request, clinic, menu))
        context["full"] = await booking.full_slots(
            clinic, menu, now=clock(request), day=context["calendar"][0][0]
        )
    return page(request, "booking/staff_book.html", context)


routes = [
    Route("/clinics/{slug}", clinic_page, methods=["GET"]),
    Route("/clinics/{slug}/menus/{menu_id}", menu_slots, methods=["GET"]),
    Route("/clinics/{slug}/menus/{menu_id}/hold", hold_slot, methods=["POST"]),
    Route("/clinics/{slug}/menus/{menu_id}/waitlist", join_waitlist, methods=["POST"]),
    Route("/waitlist/{entry_id}/withdraw", withdraw_waitlist, methods=["POST"]),
    Route("/appointments", my_appointments, methods=["GET"]),
    Route("/a/{token}", open_link, methods=["GET"]),
    Route("/appointments/{appointment_id}/confirm", confirm, methods=["GET", "POST"]),
    Route("/appointments/{appointment_id}/cancel", cancel, methods=["POST"]),
    Route("/appointments/{appointment_id}/calendar.ics", calendar_file, methods=["GET"]),
    Route("/appointments/{appointment_id}/reschedule", reschedule, methods=["GET", "POST"]),
    Route("/staff/schedule", schedule, methods=["GET"]),
    Route("/staff/schedule/rows", schedule_rows, methods=["GET"]),
    Route("/staff/schedule/events", reception_events, methods=["GET"]),
    Route("/staff/appointments/{appointment_id}/status", set_status, methods=["POST"]),
    Route("/staff/patients/{patient_id}/book", staff_book, methods=["GET", "POST"]),
]
