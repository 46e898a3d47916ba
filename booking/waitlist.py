"""The waitlist: when a seat frees, the first patient waiting for that day is offered it.

An offer is an ordinary hold (the seat claims make it exclusive: nobody else can take that seat
while it stands) kept longer than a browsing hold. Entries are served strictly in the order
they joined; an entry is claimed with a conditional update before its hold is made, so two
freed seats never go to one entry and one seat never goes to two. An offer not taken in time
lapses and the seat goes to the next person waiting.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Final
from zoneinfo import ZoneInfo

from booking import service
from booking.errors import BookingRefused, SlotUnavailable
from booking.models import (
    Appointment,
    AppointmentStatus,
    Clinic,
    Menu,
    SeatClaim,
    WaitlistEntry,
    WaitlistStatus,
)

OFFER_FOR: Final = timedelta(minutes=30)
MAX_DAYS: Final = 14
ACTIVE_ENTRY: Final = (WaitlistStatus.WAITING, WaitlistStatus.OFFERED)


class WaitlistRefused(BookingRefused):
    status = 422
    message_ja = "キャンセル待ちは今日以降の14日以内の日で登録してください"
    message_en = "Join the waitlist for days from today, up to 14 days at a time."


async def join(
    clinic: Clinic,
    menu: Menu,
    *,
    account_id: str,
    patient_id: str,
    first_day: date,
    last_day: date,
    now: datetime,
) -> WaitlistEntry:
    """Wait for a seat of ``menu`` on a day between ``first_day`` and ``last_day``."""
    today = now.astimezone(ZoneInfo(clinic.time_zone)).date()
    if first_day < today or last_day < first_day or (last_day - first_day).days >= MAX_DAYS:
        raise WaitlistRefused()
    existing = await WaitlistEntry.get_or_none(
        menu=menu, patient_id=patient_id, status__in=ACTIVE_ENTRY
    )
    if existing is not None:
        return existing
    return await WaitlistEntry.create(
        clinic=clinic,
        menu=menu,
        account_id=account_id,
        patient_id=patient_id,
        first_day=first_day,
        last_day=last_day,
        created_at=now,
        updated_at=now,
    )


async def entries_of_account(account_id: str) -> list[WaitlistEntry]:
    return (
        await WaitlistEntry.filter(account_id=account_id, status__in=ACTIVE_ENTRY)
        .order_by("first_day")
        .prefetch_related("menu", "clinic")
    )


async def withdraw(entry_id: str, *, account_id: str, now: datetime) -> bool:
    """Stop waiting; False when the account has no such waiting entry."""
    key = service.parse_id(entry_id)
    if key is None:
        return False
    changed = await WaitlistEntry.filter(
        id=key, account_id=account_id, status=WaitlistStatus.WAITING
    ).update(status=WaitlistStatus.WITHDRAWN, updated_at=now)
    return bool(changed)


async def offer(
    menu: Menu, *, practitioner_id: str, start: datetime, now: datetime
) -> WaitlistEntry | None:
    """Offer a freed seat to the first entry waiting for its day; None when nobody waits or
    the seat was taken meanwhile."""
    clinic = await menu.clinic
    day = start.astimezone(ZoneInfo(clinic.time_zone)).date()
    for entry in await WaitlistEntry.filter(
        menu=menu, status=WaitlistStatus.WAITING, first_day__lte=day, last_day__gte=day
    ).order_by("created_at", "id"):
        claimed = await WaitlistEntry.filter(id=entry.id, status=WaitlistStatus.WAITING).update(
            status=WaitlistStatus.OFFERED, updated_at=now
        )
        if not claimed:
            continue  # another offer took this entry first: the next one in line
        try:
            held = await service.hold(
                clinic,
                menu,
                practitioner_id=practitioner_id,
                start=start,
                account_id=str(entry.account_id),
                now=now,
                hold_for=OFFER_FOR,
            )
        except (BookingRefused, SlotUnavailable):
            await WaitlistEntry.filter(id=entry.id).update(
                status=WaitlistStatus.WAITING, updated_at=now
            )
            return None  # the seat is gone (booked directly): the entry keeps its place
        await WaitlistEntry.filter(id=entry.id).update(offer_appointment_id=held.id, updated_at=now)
        await entry.refresh_from_db()
        return entry
    return None


async def expire_offer(entry_id: str, *, now: datetime) -> Appointment | None:
    """If the offer of ``entry_id`` was not taken, let it lapse and free its seat; returns the
    lapsed hold (so the caller can offer the seat to the next person) or None."""
    entry = await WaitlistEntry.get_or_none(id=entry_id, status=WaitlistStatus.OFFERED)
    if entry is None or entry.offer_appointment_id is None:
        return None
    appointment = await Appointment.get_or_none(id=entry.offer_appointment_id)
    if appointment is None:
        return None
    if appointment.status is AppointmentStatus.BOOKED:
        await WaitlistEntry.filter(id=entry.id).update(status=WaitlistStatus.BOOKED, updated_at=now)
        return None
    if appointment.status is AppointmentStatus.HELD and (
        appointment.hold_expires_at is None or appointment.hold_expires_at > now
    ):
        return None  # still within its time
    await SeatClaim.filter(appointment_id=appointment.id).delete()
    if appointment.status is AppointmentStatus.HELD:
        await Appointment.filter(id=appointment.id, status=AppointmentStatus.HELD).update(
            status=AppointmentStatus.EXPIRED, updated_at=now
        )
    await WaitlistEntry.filter(id=entry.id).update(status=WaitlistStatus.LAPSED, updated_at=now)
    return appointment


async def lapse_hold(appointment_id: str, *, now: datetime) -> Appointment | None:
    """A patient's plain hold whose time has passed: free its seat; return it when its seat
    may go to someone waiting (None while it is still live, once it is booked or cancelled, and
    for waitlist offers, whose lapse :func:`expire_offer` handles)."""
    key = service.parse_id(appointment_id)
    appointment = await Appointment.get_or_none(id=key) if key else None
    if appointment is None or await WaitlistEntry.exists(offer_appointment_id=appointment.id):
        return None
    if appointment.status is AppointmentStatus.HELD:
        if appointment.hold_expires_at is not None and appointment.hold_expires_at > now:
            return None  # still within its time
        await SeatClaim.filter(appointment_id=appointment.id).delete()
        await Appointment.filter(id=appointment.id, status=AppointmentStatus.HELD).update(
            status=AppointmentStatus.EXPIRED, updated_at=now
        )
        await appointment.refresh_from_db()
    # EXPIRED here may also mean another booking attempt let it lapse first (lazily).
    return appointment if appointment.status is AppointmentStatus.EXPIRED else None


async def mark_booked(appointment_id: str, *, now: datetime) -> None:
    """A confirmed offer: its entry is served."""
    key = service.parse_id(appointment_id)
    if key is not None:
        await WaitlistEntry.filter(offer_appointment_id=key, status=WaitlistStatus.OFFERED).update(
            status=WaitlistStatus.BOOKED, updated_at=now
        )
