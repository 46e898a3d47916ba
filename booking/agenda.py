"""A practitioner's agenda (予定表): opening hours and appointments of consecutive days.

The staff calendar's day and week views read this. :func:`agenda_days` is the pure core: hours,
date exceptions and appointments in, one :class:`AgendaDay` per calendar day out, with opening
hours worked out by the same rules as free slots (:mod:`booking.availability`): public holidays
closed unless the clinic opens them, extra hours open a day, whole-day closures win, and closed
ranges (a doctor's afternoon off) are cut out. :func:`practitioner_agenda` is its adapter: three
queries (weekly hours, the range's exceptions, the range's appointments), none per day.
:func:`free_times` adds what patients could still book, from :func:`booking.availability.free_slots`
with booking's own rules.

Times: opening hours are wall-clock times in the clinic's zone; appointments are aware datetimes
in that zone, placed on the local calendar day their start falls on. Days start at local
midnight, so a week across a daylight-saving change is 167 or 169 hours long and still holds
exactly its own appointments.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Final
from zoneinfo import ZoneInfo

from tortoise.expressions import Q

from booking import service
from booking.availability import _openings, free_slots, japanese_holiday
from booking.domain import DateException, SlotRules, WeeklyRange
from booking.models import (
    Appointment,
    AppointmentStatus,
    Clinic,
    HoursException,
    Menu,
    Practitioner,
    VisitMode,
    WeeklyHours,
)

DAY_MINUTES: Final = 24 * 60
HIDDEN_BY_DEFAULT: Final = frozenset({AppointmentStatus.CANCELLED, AppointmentStatus.EXPIRED})
_ONE_DAY: Final = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class Opening:
    """An open range of one day, in minutes after local midnight (``end`` may be 1440)."""

    start: int
    end: int


@dataclass(frozen=True, slots=True)
class AgendaEntry:
    """One appointment as the calendar shows it. ``start``/``end`` are aware, in the clinic's
    zone; ``patient_id`` is None for a hold (the patient is still completing the steps)."""

    id: str
    start: datetime
    end: datetime
    status: AppointmentStatus
    patient_id: str | None
    menu_id: str
    menu_title_ja: str
    menu_title_en: str
    mode: VisitMode
    overbooked: bool
    has_questionnaire: bool = False  # the menu asks for one (its answers open for clinicians)

    @property
    def start_minute(self) -> int:
        """Wall-clock minutes after local midnight of the start."""
        return self.start.hour * 60 + self.start.minute

    @property
    def end_minute(self) -> int:
        """Wall-clock minutes of the end, on the start's day (1440 if it ends after midnight)."""
        if self.end.date() != self.start.date():
            return DAY_MINUTES
        return self.end.hour * 60 + self.end.minute


@dataclass(frozen=True, slots=True)
class AgendaDay:
    """One calendar day of the agenda. ``holiday``: a Japanese public holiday (closed unless the
    clinic opens holidays or the day has extra hours); ``closed_all_day``: a whole-day closure;
    ``notes``: what the day's exceptions say (年末年始, 学会 …)."""

    day: date
    openings: tuple[Opening, ...]
    holiday: bool
    closed_all_day: bool
    notes: tuple[str, ...]
    entries: tuple[AgendaEntry, ...]

    @property
    def is_open(self) -> bool:
        return bool(self.openings)


@dataclass(frozen=True, slots=True)
class FreeTime:
    """A time a patient could book right now: the menu, the start (aware, in the clinic's zone)
    and the seats still free."""

    menu_id: str
    menu_title_ja: str
    menu_title_en: str
    start: datetime
    free_seats: int

    @property
    def start_minute(self) -> int:
        return self.start.hour * 60 + self.start.minute


def agenda_days(
    first_day: date,
    days: int,
    *,
    hours: Sequence[WeeklyRange],
    exceptions: Sequence[DateException],
    entries: Sequence[AgendaEntry],
    zone: ZoneInfo,
    open_on_holidays: bool,
    notes: dict[date, list[str]] | None = None,
    holidays: Callable[[date], bool] = japanese_holiday,
) -> list[AgendaDay]:
    """``days`` consecutive days from ``first_day``, each with its openings and the entries that
    start on it (local date in ``zone``), sorted by start. Entries outside the days are ignored.
    """
    weekly: dict[int, list[tuple[time, time]]] = defaultdict(list)
    for weekly_range in hours:
        weekly[weekly_range.weekday].append((weekly_range.start, weekly_range.end))
    by_day: dict[date, list[DateException]] = defaultdict(list)
    for exception in exceptions:
        by_day[exception.day].append(exception)
    rules = SlotRules(duration=timedelta(minutes=5), open_on_holidays=open_on_holidays)
    placed: dict[date, list[AgendaEntry]] = defaultdict(list)
    for entry in entries:
        placed[entry.start.astimezone(zone).date()].append(entry)

    result = []
    for offset in range(days):
        day = first_day + offset * _ONE_DAY
        todays = by_day.get(day, [])
        ranges = [
            (_minute(s), _minute(e)) for s, e in _openings(day, weekly, todays, rules, holidays)
        ]
        closures = [
            (_minute(e.start), _minute(e.end))
            for e in todays
            if e.closed and e.start is not None and e.end is not None
        ]
        result.append(
            AgendaDay(
                day=day,
                openings=tuple(Opening(s, e) for s, e in _cut(ranges, closures)),
                holiday=holidays(day),
                closed_all_day=any(e.is_whole_day_closed for e in todays),
                notes=tuple((notes or {}).get(day, [])),
                entries=tuple(
                    sorted(
                        (
                            replace(
                                entry,
                                start=entry.start.astimezone(zone),
                                end=entry.end.astimezone(zone),
                            )
                            for entry in placed.get(day, [])
                        ),
                        key=lambda e: (e.start.astimezone(UTC), e.id),
                    )
                ),
            )
        )
    return result


def _minute(value: time) -> int:
    """A wall-clock time as minutes after midnight; ``time.max`` (24:00) is 1440."""
    if value == time.max:
        return DAY_MINUTES
    return value.hour * 60 + value.minute


def _cut(ranges: list[tuple[int, int]], holes: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """``ranges`` minus every hole, as sorted, disjoint, non-empty ranges."""
    pieces = [r for r in ranges if r[0] < r[1]]
    for hole_start, hole_end in holes:
        remaining = []
        for start, end in pieces:
            if hole_end <= start or end <= hole_start:
                remaining.append((start, end))
                continue
            if start < hole_start:
                remaining.append((start, hole_start))
            if hole_end < end:
                remaining.append((hole_end, end))
        pieces = remaining
    return sorted(pieces)


def week_of(day: date) -> date:
    """The Monday of the week (Monday–Sunday) that holds ``day``."""
    return day - timedelta(days=day.weekday())


def day_bounds(first_day: date, days: int, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """[local midnight of ``first_day``, local midnight after the last day) as UTC instants."""
    start = datetime.combine(first_day, time.min, tzinfo=zone)
    end = datetime.combine(first_day + days * _ONE_DAY, time.min, tzinfo=zone)
    return start.astimezone(UTC), end.astimezone(UTC)


def default_practitioner(
    practitioners: Sequence[Practitioner], staff_id: str
) -> Practitioner | None:
    """Whose calendar opens first: the signed-in staff member's own, when they are a
    practitioner; else the first active practitioner (in the order given)."""
    for practitioner in practitioners:
        if practitioner.staff_id is not None and str(practitioner.staff_id) == staff_id:
            return practitioner
    return next((p for p in practitioners if p.is_active), None)


async def clinic_of(clinic_id: str) -> Clinic | None:
    key = _parse_id(clinic_id)
    return await Clinic.get_or_none(id=key) if key else None


async def clinic_practitioners(clinic_id: str) -> list[Practitioner]:
    """Every practitioner of the clinic, active ones first, each group by reading (kana)."""
    key = _parse_id(clinic_id)
    if key is None:
        return []
    rows = await Practitioner.filter(clinic_id=key).order_by("display_name_kana", "id")
    return sorted(rows, key=lambda p: not p.is_active)


async def find_practitioner(practitioner_id: str) -> Practitioner | None:
    """A practitioner of any clinic by id (the caller checks the clinic); junk is unknown."""
    key = _parse_id(practitioner_id)
    return await Practitioner.get_or_none(id=key) if key else None


def _parse_id(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


async def practitioner_agenda(
    clinic: Clinic,
    practitioner: Practitioner,
    first_day: date,
    days: int,
    *,
    now: datetime,
    include_cancelled: bool = False,
) -> list[AgendaDay]:
    """The practitioner's agenda for ``days`` days from ``first_day`` in the clinic's zone.

    Opening hours are the practitioner's general weekly hours together with any menu's own
    hours, with the clinic's and the practitioner's date exceptions. A hold whose time is up is
    shown as expired. Cancelled and expired appointments are left out unless
    ``include_cancelled``.
    """
    zone = ZoneInfo(clinic.time_zone)
    start, end = day_bounds(first_day, days, zone)
    hour_rows = await WeeklyHours.filter(practitioner_id=practitioner.id).values(
        "weekday", "start_minute", "end_minute"
    )
    hours = sorted(
        {
            WeeklyRange(row["weekday"], _time(row["start_minute"]), _time(row["end_minute"]))
            for row in hour_rows
        },
        key=lambda r: (r.weekday, r.start, r.end),
    )
    exception_rows = await HoursException.filter(
        Q(practitioner_id=practitioner.id) | Q(practitioner_id=None),
        clinic_id=clinic.id,
        day__gte=first_day,
        day__lt=first_day + days * _ONE_DAY,
    ).order_by("day", "id")
    exceptions = [
        DateException(
            row.day,
            row.closed,
            _time(row.start_minute) if row.start_minute is not None else None,
            _time(row.end_minute) if row.end_minute is not None else None,
        )
        for row in exception_rows
    ]
    notes: dict[date, list[str]] = defaultdict(list)
    for row in exception_rows:
        if row.note:
            notes[row.day].append(row.note)
    query = Appointment.filter(
        practitioner_id=practitioner.id, starts_at__gte=start, starts_at__lt=end
    )
    if not include_cancelled:
        query = query.exclude(status__in=list(HIDDEN_BY_DEFAULT))
    rows = await query.order_by("starts_at", "id").select_related("menu")
    entries = [_entry(row, now) for row in rows]
    if not include_cancelled:
        entries = [e for e in entries if e.status not in HIDDEN_BY_DEFAULT]
    return agenda_days(
        first_day,
        days,
        hours=hours,
        exceptions=exceptions,
        entries=entries,
        zone=zone,
        open_on_holidays=clinic.open_on_holidays,
        notes=notes,
    )


async def free_times(
    clinic: Clinic, practitioner: Practitioner, first_day: date, days: int, *, now: datetime
) -> list[FreeTime]:
    """The practitioner's free times in the days, for every menu they offer, exactly as patients
    are offered them at ``now`` (notice, horizon, buffers, capacity and live holds applied; none
    in the past). Sorted by start, then menu."""
    if not practitioner.is_active:
        return []
    zone = ZoneInfo(clinic.time_zone)
    menus = await Menu.filter(practitioners__id=practitioner.id).order_by("sort_order", "id")
    if not menus:
        return []
    exceptions = await service._exceptions(practitioner)
    busy = await service._busy(practitioner, now, day_bounds(first_day, days + 1, zone)[1])
    found: list[tuple[datetime, int, FreeTime]] = []
    for order, menu in enumerate(menus):
        for slot in free_slots(
            hours=await service._hours(practitioner, menu),
            exceptions=exceptions,
            busy=busy,
            rules=service.rules_of(menu),
            zone=zone,
            now=now,
            start_day=first_day,
            days=days,
        ):
            free = FreeTime(str(menu.id), menu.title_ja, menu.title_en, slot.start, slot.free_seats)
            found.append((slot.start.astimezone(UTC), order, free))
    return [free for _, _, free in sorted(found, key=lambda item: item[:2])]


def _entry(row: Appointment, now: datetime) -> AgendaEntry:
    status = row.status
    lapsed = row.hold_expires_at is None or row.hold_expires_at <= now
    if status is AppointmentStatus.HELD and lapsed:
        status = AppointmentStatus.EXPIRED
    menu = row.menu
    return AgendaEntry(
        id=str(row.id),
        start=row.starts_at,
        end=row.ends_at,
        status=status,
        patient_id=str(row.patient_id) if row.patient_id else None,
        menu_id=str(menu.id),
        menu_title_ja=menu.title_ja,
        menu_title_en=menu.title_en,
        mode=menu.mode,
        overbooked=row.overbooked,
        has_questionnaire=bool(menu.questionnaire_id),
    )


def _time(minute: int) -> time:
    """Minutes after midnight as a wall-clock time (24:00 is the last instant of the day)."""
    if minute >= DAY_MINUTES:
        return time.max
    return time(minute // 60, minute % 60)
