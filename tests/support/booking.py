"""Seeding menus, practitioners, hours and appointments for tests, through the real models."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from booking.models import (
    Appointment,
    AppointmentStatus,
    Clinic,
    Menu,
    Practitioner,
    VisitKind,
    VisitMode,
    WeeklyHours,
)
from patient_portal.accounts.models import Patient


async def make_menu(
    clinic: Clinic,
    *,
    capacity: int = 1,
    minutes: int = 15,
    min_notice_minutes: int = 0,
    cancel_deadline_minutes: int = 120,
    every_day: tuple[int, int] = (9 * 60, 17 * 60),
    visit_kind: VisitKind = VisitKind.EITHER,
    mode: VisitMode = VisitMode.IN_PERSON,
    online_rules: list[str] | None = None,
    pre_consultation: bool = False,
) -> tuple[Menu, Practitioner]:
    """A menu with one practitioner who works every day between ``every_day`` minutes."""
    doctor = await Practitioner.create(
        clinic=clinic, display_name="見本 医師", display_name_kana="ミホン イシ"
    )
    for weekday in range(7):
        await WeeklyHours.create(
            practitioner=doctor,
            weekday=weekday,
            start_minute=every_day[0],
            end_minute=every_day[1],
        )
    menu = await Menu.create(
        clinic=clinic,
        title_ja="内科",
        title_en="Internal medicine",
        mode=mode,
        visit_kind=visit_kind,
        online_rules=online_rules or [],
        pre_consultation=pre_consultation,
        duration_minutes=minutes,
        capacity=capacity,
        min_notice_minutes=min_notice_minutes,
        cancel_deadline_minutes=cancel_deadline_minutes,
        max_days_ahead=30,
    )
    await menu.practitioners.add(doctor)
    return menu, doctor


async def make_appointment(clinic: Clinic, patient: Patient) -> Appointment:
    """A booked appointment tomorrow (no seat claims: for access tests, not for capacity)."""
    menu, doctor = await make_menu(clinic)
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=1)
    return await Appointment.create(
        clinic=clinic,
        menu=menu,
        practitioner=doctor,
        account_id=patient.account_id,  # type: ignore[attr-defined]
        patient_id=patient.id,
        starts_at=start,
        ends_at=start + timedelta(minutes=15),
        status=AppointmentStatus.BOOKED,
        created_at=start,
        updated_at=start,
    )


async def book(
    clinic: Clinic,
    menu: Menu,
    practitioner: Practitioner,
    patient: Patient,
    start: datetime,
    *,
    now: datetime | None = None,
) -> Appointment:
    """A booked appointment at ``start`` (no seat claims: for rooms, access and views)."""
    created = now or start
    return await Appointment.create(
        clinic=clinic,
        menu=menu,
        practitioner=practitioner,
        account_id=patient.account_id,  # type: ignore[attr-defined]
        patient_id=patient.id,
        starts_at=start,
        ends_at=start + timedelta(minutes=menu.duration_minutes),
        status=AppointmentStatus.BOOKED,
        created_at=created,
        updated_at=created,
    )
