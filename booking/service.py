"""Booking use cases: search free slots, hold one, confirm, cancel, and the clinic's day.

Correct by construction: a slot is only held if the pure availability function offers it at
that moment, and the seat claims of a hold are rows whose (practitioner, cell, seat) is unique
in the database — two concurrent requests for the last seat cannot both succeed, whatever the
number of processes. Patients are known here by ids only (the portal owns them).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Final
from zoneinfo import ZoneInfo

from tortoise.exceptions import IntegrityError
from tortoise.expressions import Q
from tortoise.transactions import in_transaction

from booking import eligibility
from booking.availability import free_slots
from booking.domain import Busy, DateException, Slot, SlotRules, WeeklyRange
from booking.errors import (
    AppointmentNotFound,
    CancelTooLate,
    HoldExpired,
    SlotTaken,
    SlotUnavailable,
)
from booking.models import (
    Appointment,
    AppointmentStatus,
    Clinic,
    HoursException,
    Menu,
    Practitioner,
    SeatClaim,
    WeeklyHours,
)

CELL: Final = timedelta(minutes=5)
HOLD_FOR: Final = timedelta(minutes=10)
# A patient still answering the questionnaire keeps the seat, up to this long after holding it.
HOLD_AT_MOST: Final = timedelta(minutes=60)
MAX_OVERBOOK: Final = 3  # extra patients staff may squeeze into one slot
ACTIVE: Final = (
    AppointmentStatus.HELD,
    AppointmentStatus.BOOKED,
    AppointmentStatus.CHECKED_IN,
    AppointmentStatus.IN_CONSULT,
)
UPCOMING: Final = (AppointmentStatus.HELD, AppointmentStatus.BOOKED)


@dataclass(frozen=True, slots=True)
class PractitionerSlots:
    practitioner_id: str
    practitioner_name: str
    slots: list[Slot]


def rules_of(menu: Menu, *, open_on_holidays: bool = False) -> SlotRules:
    return SlotRules(
        open_on_holidays=open_on_holidays,
        duration=timedelta(minutes=menu.duration_minutes),
        capacity=menu.capacity,
        min_notice=timedelta(minutes=menu.min_notice_minutes),
        max_days_ahead=menu.max_days_ahead,
        buffer_before=timedelta(minutes=menu.buffer_before_minutes),
        buffer_after=timedelta(minutes=menu.buffer_after_minutes),
    )


def parse_id(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


SLUG_MAX: Final = 64


async def clinic_by_slug(slug: str) -> Clinic | None:
    """The clinic of a public page address; any other string (too long, odd) is just unknown."""
    if not slug or len(slug) > SLUG_MAX:
        return None
    return await Clinic.get_or_none(slug=slug)


async def clinic_menus(clinic: Clinic) -> list[Menu]:
    """Every menu of the clinic, staff-only ones included (for booking at the desk)."""
    return await Menu.filter(clinic=clinic).order_by("sort_order")


async def full_slots(
    clinic: Clinic, menu: Menu, *, now: datetime, day: date
) -> list[tuple[str, Slot]]:
    """(practitioner id, slot) of the day's times that exist but have no free seat: what staff
    may over-book."""
    zone = ZoneInfo(clinic.time_zone)
    rules = rules_of(menu, open_on_holidays=clinic.open_on_holidays)
    full = []
    for practitioner in await menu.practitioners.filter(is_active=True):
        hours, exceptions = await _hours(practitioner, menu), await _exceptions(practitioner)
        busy = await _busy(practitioner, now, _window_end(zone, day, 1))
        free = {
            slot.start
            for slot in free_slots(
                hours=hours,
                exceptions=exceptions,
                busy=busy,
                rules=rules,
                zone=zone,
                now=now,
                start_day=day,
                days=1,
            )
        }
        full += [
            (str(practitioner.id), slot)
            for slot in free_slots(
                hours=hours,
                exceptions=exceptions,
                busy=[],
                rules=rules,
                zone=zone,
                now=now,
                start_day=day,
                days=1,
            )
            if slot.start not in free
        ]
    return full


async def patient_menus(clinic: Clinic) -> list[Menu]:
    return await Menu.filter(clinic=clinic, visible_to_patients=True).order_by("sort_order")


async def menu_of_clinic(clinic: Clinic, menu_id: str) -> Menu | None:
    key = parse_id(menu_id)
    return await Menu.get_or_none(id=key, clinic=clinic) if key else None


async def _hours(practitioner: Practitioner, menu: Menu) -> list[WeeklyRange]:
    """The menu's own hours for this practitioner if it has some, else their general hours."""
    rows = await WeeklyHours.filter(practitioner=practitioner, menu=menu)
    if not rows:
        rows = await WeeklyHours.filter(practitioner=practitioner, menu_id=None)
    return [WeeklyRange(r.weekday, _time(r.start_minute), _time(r.end_minute)) for r in rows]


async def _exceptions(practitioner: Practitioner) -> list[DateException]:
    """The clinic's own exceptions (holidays it opens, days it closes) and the practitioner's."""
    rows = await HoursException.filter(
        Q(practitioner_id=practitioner.id) | Q(practitioner_id=None),
        clinic_id=practitioner.clinic_id,  # type: ignore[attr-defined]
    )
    return [
        DateException(
            r.day,
            r.closed,
            _time(r.start_minute) if r.start_minute is not None else None,
            _time(r.end_minute) if r.end_minute is not None else None,
        )
        for r in rows
    ]


def _time(minute: int) -> time:
    """Minutes after midnight as a wall-clock time (24:00 is the last instant of the day)."""
    if minute >= 24 * 60:
        return time.max
    return time(minute // 60, minute % 60)


def minute_of(value: time) -> int:
    return value.hour * 60 + value.minute


async def _busy(
    practitioner: Practitioner, now: datetime, until: datetime | None = None
) -> list[Busy]:
    """Live appointments and holds of the practitioner that end after ``now`` and (when given)
    start before ``until`` — only what the search window can collide with."""
    query = Appointment.filter(practitioner=practitioner, status__in=ACTIVE, ends_at__gt=now)
    if until is not None:
        query = query.filter(starts_at__lt=until)
    rows = await query.values("starts_at", "ends_at", "status", "hold_expires_at")
    return [
        Busy(row["starts_at"], row["ends_at"])
        for row in rows
        if row["status"] != AppointmentStatus.HELD
        or (row["hold_expires_at"] is not None and row["hold_expires_at"] > now)
    ]


async def search(
    clinic: Clinic, menu: Menu, *, now: datetime, start_day: date | None = None, days: int = 7
) -> list[PractitionerSlots]:
    """Free slots of every practitioner who offers ``menu``, for ``days`` from ``start_day``."""
    zone = ZoneInfo(clinic.time_zone)
    result = []
    for practitioner in await menu.practitioners.filter(is_active=True).order_by(
        "display_name_kana"
    ):
        slots = free_slots(
            hours=await _hours(practitioner, menu),
            exceptions=await _exceptions(practitioner),
            busy=await _busy(practitioner, now, _window_end(zone, start_day or now, days)),
            rules=rules_of(menu, open_on_holidays=clinic.open_on_holidays),
            zone=zone,
            now=now,
            start_day=start_day,
            days=days,
        )
        result.append(PractitionerSlots(str(practitioner.id), practitioner.display_name, slots))
    return result


def _window_end(zone: ZoneInfo, first: date | datetime, days: int) -> datetime:
    """The end of a search window of ``days`` local days, widened by a day for buffers."""
    day = first.astimezone(zone).date() if isinstance(first, datetime) else first
    return datetime.combine(day + timedelta(days=days + 1), time.min, tzinfo=zone)


def _cells(start: datetime, end: datetime, menu: Menu) -> list[datetime]:
    """The five-minute cells an appointment occupies, its buffers included."""
    first = start - timedelta(minutes=menu.buffer_before_minutes)
    last = end + timedelta(minutes=menu.buffer_after_minutes)
    epoch = datetime(2000, 1, 1, tzinfo=UTC)
    cell = epoch + ((first - epoch) // CELL) * CELL
    cells = []
    while cell < last:
        cells.append(cell)
        cell += CELL
    return cells


async def _claim_a_seat(
    appointment: Appointment,
    practitioner: Practitioner,
    cells: list[datetime],
    seats: range,
    *,
    expires_at: datetime | None,
) -> bool:
    """Claim the first of ``seats`` free in every cell, each try in its own savepoint (inside
    the caller's transaction); False when all are taken. The unique constraint decides."""
    for seat in seats:
        try:
            async with in_transaction() as savepoint:
                await SeatClaim.bulk_create(
                    [
                        SeatClaim(
                            practitioner=practitioner,
                            cell_start=cell,
                            seat=seat,
                            appointment=appointment,
                            expires_at=expires_at,
                        )
                        for cell in cells
                    ],
                    using_db=savepoint,
                )
        except IntegrityError:
            continue
        return True
    return False


async def _release_expired(practitioner: Practitioner, now: datetime) -> None:
    expired = Appointment.filter(
        practitioner=practitioner,
        status=AppointmentStatus.HELD,
        hold_expires_at__lte=now,
    )
    ids = await expired.values_list("id", flat=True)
    if ids:
        await SeatClaim.filter(appointment_id__in=list(ids)).delete()
        await Appointment.filter(id__in=list(ids), status=AppointmentStatus.HELD).update(
            status=AppointmentStatus.EXPIRED, updated_at=now
        )


async def hold(
    clinic: Clinic,
    menu: Menu,
    *,
    practitioner_id: str,
    start: datetime,
    account_id: str,
    now: datetime,
    hold_for: timedelta = HOLD_FOR,
) -> Appointment:
    """Keep a seat for ``hold_for`` while the patient completes the steps.

    Raises SlotUnavailable when ``start`` is not a slot the rules offer (past, outside hours,
    not this menu's practitioner …) and SlotTaken, with alternatives, when the last seat went
    to someone else first."""
    key = parse_id(practitioner_id)
    practitioner = await menu.practitioners.filter(id=key, is_active=True).first() if key else None
    if practitioner is None or start.tzinfo is None:
        raise SlotUnavailable()
    start = start.astimezone(UTC)
    await _release_expired(practitioner, now)
    zone = ZoneInfo(clinic.time_zone)
    hours, exceptions = await _hours(practitioner, menu), await _exceptions(practitioner)

    def offered(busy: list[Busy]) -> list[Slot]:
        return free_slots(
            hours=hours,
            exceptions=exceptions,
            busy=busy,
            rules=rules_of(menu, open_on_holidays=clinic.open_on_holidays),
            zone=zone,
            now=now,
            start_day=start.astimezone(zone).date(),
            days=1,
        )

    # Not a slot at all (past, too soon, outside hours, not on the grid): the request is wrong.
    if not any(slot.start == start for slot in offered([])):
        raise SlotUnavailable()
    free = offered(await _busy(practitioner, now, _window_end(zone, start, 1)))
    if not any(slot.start == start for slot in free):
        raise SlotTaken(alternatives=free[:5])
    end = start + timedelta(minutes=menu.duration_minutes)
    cells = _cells(start, end, menu)
    async with in_transaction() as conn:
        appointment = await Appointment.create(
            clinic=clinic,
            menu=menu,
            practitioner=practitioner,
            account_id=account_id,
            starts_at=start,
            ends_at=end,
            status=AppointmentStatus.HELD,
            hold_expires_at=now + hold_for,
            created_at=now,
            updated_at=now,
            using_db=conn,
        )
        if await _claim_a_seat(
            appointment, practitioner, cells, range(menu.capacity), expires_at=now + hold_for
        ):
            return appointment
        # Every seat was taken between our look and our claim: nothing stays behind.
        await appointment.delete(using_db=conn)
    raise SlotTaken(alternatives=[s for s in free if s.start != start][:5])


async def confirm(
    appointment_id: str,
    *,
    account_id: str,
    patient_id: str,
    now: datetime,
    check_eligibility: bool = True,
) -> Appointment:
    """Turn the account's live hold into a booking for ``patient_id``.

    A patient must be eligible for the menu (:mod:`booking.eligibility`); staff booking at the
    desk pass ``check_eligibility=False`` (they know patients whose visits predate Tsunagu)."""
    appointment = await _own(appointment_id, account_id)
    if appointment.status is AppointmentStatus.BOOKED:
        return appointment  # a double submit of the confirm form
    if appointment.status is not AppointmentStatus.HELD:
        raise HoldExpired()
    if check_eligibility:
        clinic_id = str(appointment.clinic_id)  # type: ignore[attr-defined]
        history = await visit_history(clinic_id, patient_id)
        not_eligible = eligibility.refusal(terms_of(await appointment.menu), history, now=now)
        if not_eligible is not None:
            raise not_eligible
    async with in_transaction() as conn:
        confirmed = (
            await Appointment.filter(
                id=appointment.id,
                status=AppointmentStatus.HELD,
                hold_expires_at__gt=now,
            )
            .using_db(conn)
            .update(
                status=AppointmentStatus.BOOKED,
                patient_id=patient_id,
                hold_expires_at=None,
                updated_at=now,
            )
        )
        if not confirmed:
            raise HoldExpired()
        await SeatClaim.filter(appointment_id=appointment.id).using_db(conn).update(expires_at=None)
    await appointment.refresh_from_db()
    return appointment


def terms_of(menu: Menu) -> eligibility.MenuTerms:
    return eligibility.MenuTerms(
        mode=menu.mode,
        visit_kind=menu.visit_kind,
        online_rules=tuple(menu.online_rules or ()),
        pre_consultation=menu.pre_consultation,
    )


async def visit_history(clinic_id: str, patient_id: str) -> eligibility.VisitHistory:
    """What the clinic's records say about ``patient_id``: visits done, latest pre-consultation."""
    key = parse_id(patient_id)
    if key is None:
        return eligibility.VisitHistory()
    done = Appointment.filter(clinic_id=clinic_id, patient_id=key, status=AppointmentStatus.DONE)
    pre = await done.filter(menu__pre_consultation=True).order_by("-starts_at").first()
    return eligibility.VisitHistory(
        has_visited=await done.filter(menu__pre_consultation=False).exists(),
        last_pre_consultation=pre.starts_at if pre else None,
    )


async def _own(appointment_id: str, account_id: str) -> Appointment:
    key = parse_id(appointment_id)
    appointment = await Appointment.get_or_none(id=key, account_id=account_id) if key else None
    if appointment is None:
        raise AppointmentNotFound()
    return appointment


async def extend_hold(
    appointment: Appointment, *, now: datetime, hold_for: timedelta = HOLD_FOR
) -> bool:
    """Keep a live hold ``hold_for`` from now (never past HOLD_AT_MOST after it began), for a
    patient who is still working through the steps. False when it is no longer a live hold."""
    if appointment.status is not AppointmentStatus.HELD or appointment.hold_expires_at is None:
        return False
    until = min(now + hold_for, appointment.created_at + HOLD_AT_MOST)
    if until <= appointment.hold_expires_at:
        return appointment.hold_expires_at > now
    async with in_transaction() as conn:
        kept = (
            await Appointment.filter(
                id=appointment.id, status=AppointmentStatus.HELD, hold_expires_at__gt=now
            )
            .using_db(conn)
            .update(hold_expires_at=until, updated_at=now)
        )
        if kept:
            await (
                SeatClaim.filter(appointment_id=appointment.id)
                .using_db(conn)
                .update(expires_at=until)
            )
    await appointment.refresh_from_db()
    return bool(kept)


async def cancel(appointment: Appointment, *, now: datetime, by_staff: bool = False) -> Appointment:
    """Cancel and free the seat. Patients may cancel until the menu's deadline; staff always."""
    if appointment.status not in ACTIVE:
        return appointment
    menu = await appointment.menu
    deadline = appointment.starts_at - timedelta(minutes=menu.cancel_deadline_minutes)
    if not by_staff and appointment.status is not AppointmentStatus.HELD and now > deadline:
        raise CancelTooLate()
    async with in_transaction() as conn:
        await SeatClaim.filter(appointment_id=appointment.id).using_db(conn).delete()
        await (
            Appointment.filter(id=appointment.id)
            .using_db(conn)
            .update(status=AppointmentStatus.CANCELLED, cancelled_at=now, updated_at=now)
        )
    await appointment.refresh_from_db()
    return appointment


async def account_appointment(appointment_id: str, account_id: str) -> Appointment:
    return await _own(appointment_id, account_id)


async def appointments_of_account(account_id: str) -> list[Appointment]:
    return (
        await Appointment.filter(
            account_id=account_id,
            status__in=[
                AppointmentStatus.BOOKED,
                AppointmentStatus.CHECKED_IN,
                AppointmentStatus.IN_CONSULT,
                AppointmentStatus.DONE,
                AppointmentStatus.CANCELLED,
                AppointmentStatus.NO_SHOW,
            ],
        )
        .order_by("-starts_at")
        .prefetch_related("menu", "clinic", "practitioner")
    )


async def clinic_day(clinic_id: str, day: date, zone: ZoneInfo) -> list[Appointment]:
    """The reception list (受付一覧): every appointment of the clinic on ``day``."""
    start = datetime.combine(day, datetime.min.time(), tzinfo=zone).astimezone(UTC)
    end = start + timedelta(days=1)
    return (
        await Appointment.filter(
            clinic_id=clinic_id,
            starts_at__gte=start,
            starts_at__lt=end,
            status__not=AppointmentStatus.EXPIRED,
        )
        .exclude(status=AppointmentStatus.HELD)
        .order_by("starts_at")
        .prefetch_related("menu", "practitioner")
    )


STAFF_TRANSITIONS: Final = {
    AppointmentStatus.BOOKED: {AppointmentStatus.CHECKED_IN, AppointmentStatus.NO_SHOW},
    AppointmentStatus.CHECKED_IN: {AppointmentStatus.IN_CONSULT, AppointmentStatus.DONE},
    AppointmentStatus.IN_CONSULT: {AppointmentStatus.DONE},
}


async def clinic_appointment(clinic_id: str, appointment_id: str) -> Appointment | None:
    key = parse_id(appointment_id)
    return await Appointment.get_or_none(id=key, clinic_id=clinic_id) if key else None


async def set_status(
    appointment: Appointment, status: AppointmentStatus, *, now: datetime
) -> Appointment:
    """Move an appointment along the reception flow; a no-show frees nothing in the past."""
    allowed = STAFF_TRANSITIONS.get(appointment.status, set())
    if status not in allowed:
        raise SlotUnavailable()
    await Appointment.filter(id=appointment.id, status=appointment.status).update(
        status=status, updated_at=now
    )
    await appointment.refresh_from_db()
    return appointment


async def release_expired_holds(now: datetime) -> int:
    """Free every seat whose hold has passed (a job runs this; holds also expire lazily)."""
    ids = await Appointment.filter(
        status=AppointmentStatus.HELD, hold_expires_at__lte=now
    ).values_list("id", flat=True)
    if not ids:
        return 0
    await SeatClaim.filter(appointment_id__in=list(ids)).delete()
    return await Appointment.filter(id__in=list(ids), status=AppointmentStatus.HELD).update(
        status=AppointmentStatus.EXPIRED, updated_at=now
    )


async def clinics() -> list[Clinic]:
    """Every clinic, for the public list on the home page."""
    return await Clinic.all().order_by("name_kana")


async def reschedule(
    appointment: Appointment,
    *,
    practitioner_id: str,
    start: datetime,
    now: datetime,
) -> Appointment:
    """Move a booking to another free time of the same menu: the new time is claimed first, then
    in one transaction the new appointment is booked and the old one cancelled — the patient
    never ends up with both, or with neither. Within the menu's cancellation deadline only."""
    if appointment.status is not AppointmentStatus.BOOKED:
        raise AppointmentNotFound()
    menu = await appointment.menu
    if now > appointment.starts_at - timedelta(minutes=menu.cancel_deadline_minutes):
        raise CancelTooLate()
    clinic = await appointment.clinic
    new = await hold(
        clinic,
        menu,
        practitioner_id=practitioner_id,
        start=start,
        account_id=str(appointment.account_id),
        now=now,
    )
    async with in_transaction() as conn:
        moved = (
            await Appointment.filter(id=appointment.id, status=AppointmentStatus.BOOKED)
            .using_db(conn)
            .update(status=AppointmentStatus.CANCELLED, cancelled_at=now, updated_at=now)
        )
        if not moved:
            await new.delete(using_db=conn)
            raise AppointmentNotFound()
        await SeatClaim.filter(appointment_id=appointment.id).using_db(conn).delete()
        await (
            Appointment.filter(id=new.id)
            .using_db(conn)
            .update(
                status=AppointmentStatus.BOOKED,
                patient_id=appointment.patient_id,
                hold_expires_at=None,
                updated_at=now,
            )
        )
        await SeatClaim.filter(appointment_id=new.id).using_db(conn).update(expires_at=None)
    await new.refresh_from_db()
    return new


async def book_for_patient(
    clinic: Clinic,
    menu: Menu,
    *,
    practitioner_id: str,
    start: datetime,
    account_id: str,
    patient_id: str,
    now: datetime,
    overbook: bool = False,
) -> Appointment:
    """Staff book for a patient (on the phone, at the desk). With ``overbook`` a full slot takes
    one more patient anyway: an explicit decision the caller audits; the extra seat is numbered
    past the menu's capacity so it never hides a normal seat."""
    if not overbook:
        held = await hold(
            clinic,
            menu,
            practitioner_id=practitioner_id,
            start=start,
            account_id=account_id,
            now=now,
        )
        return await confirm(
            str(held.id),
            account_id=account_id,
            patient_id=patient_id,
            now=now,
            check_eligibility=False,
        )
    key = parse_id(practitioner_id)
    practitioner = await menu.practitioners.filter(id=key, is_active=True).first() if key else None
    if practitioner is None or start.tzinfo is None:
        raise SlotUnavailable()
    start = start.astimezone(UTC)
    zone = ZoneInfo(clinic.time_zone)
    grid = free_slots(
        hours=await _hours(practitioner, menu),
        exceptions=await _exceptions(practitioner),
        busy=[],
        rules=rules_of(menu, open_on_holidays=clinic.open_on_holidays),
        zone=zone,
        now=now,
        start_day=start.astimezone(zone).date(),
        days=1,
    )
    if not any(slot.start == start for slot in grid):
        raise SlotUnavailable()
    end = start + timedelta(minutes=menu.duration_minutes)
    cells = _cells(start, end, menu)
    async with in_transaction() as conn:
        appointment = await Appointment.create(
            clinic=clinic,
            menu=menu,
            practitioner=practitioner,
            account_id=account_id,
            patient_id=patient_id,
            starts_at=start,
            ends_at=end,
            status=AppointmentStatus.BOOKED,
            overbooked=True,
            created_at=now,
            updated_at=now,
            using_db=conn,
        )
        extra = range(menu.capacity, menu.capacity + MAX_OVERBOOK)
        if await _claim_a_seat(appointment, practitioner, cells, extra, expires_at=None):
            return appointment
        await appointment.delete(using_db=conn)
    raise SlotTaken(alternatives=[])
