"""Staff calendar: day and week views of one practitioner's appointments.

``GET /staff/calendar?practitioner=<id>&view=day|week&day=YYYY-MM-DD[&cancelled=1]``. Any staff
member of the clinic may read it; another clinic's (or an unknown) practitioner is a plain 404.
The page is a grid of half-hour rows: on a phone a day reads top to bottom and a week is a list
of days; on a desktop a week is seven columns (``calendar.css``; no JavaScript).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Final
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from booking import agenda
from booking.agenda import AgendaDay, AgendaEntry, FreeTime
from booking.models import Practitioner
from booking.service import STAFF_TRANSITIONS
from patient_portal.accounts import service as accounts
from patient_portal.auth.policy import Action, Principal, Resource
from patient_portal.problems import Text
from patient_portal.templating import request_locale
from patient_portal.views.booking import clock
from patient_portal.views.common import authorize, message, page, record, require

ROW_MINUTES: Final = 30
DEFAULT_WINDOW: Final = (9 * 60, 18 * 60)
VIEWS: Final = {"day": 1, "week": 7}
FIRST_DAY: Final = date(1900, 1, 1)
LAST_DAY: Final = date(9000, 12, 31)

BAD_VIEW = Text(
    "表示は day(日)か week(週)で指定してください",
    "The view must be day or week.",
)
BAD_DAY = Text(
    "日付は 2026-04-01 のように 年-月-日 で指定してください",
    "Give the day as year-month-day, for example 2026-04-01.",
)


@dataclass(frozen=True, slots=True)
class EntryView:
    """An appointment as a card: what the template shows, already worded and linked."""

    id: str
    start: str  # "09:15", clinic time
    end: str
    status: str
    patient_name: str | None  # None for a hold (no patient yet) or a record not found
    patient_url: str | None
    menu_title: str
    mode: str  # "online" | "in_person" | "both"
    overbooked: bool
    next_statuses: tuple[str, ...]
    answers_url: str | None = None  # the questionnaire answers, when the menu asks for them


@dataclass(frozen=True, slots=True)
class FreeView:
    """A time still free for a menu: what reception could offer a caller."""

    start: str  # "09:15"
    menu_title: str
    seats: int


@dataclass(frozen=True, slots=True)
class RowView:
    label: str  # "09:00"
    open: bool
    entries: tuple[EntryView, ...]
    free: tuple[FreeView, ...]


@dataclass(frozen=True, slots=True)
class DayView:
    day: date
    weekday: int  # 0 = Monday
    column: int  # 1-based column of the week grid
    is_today: bool
    is_open: bool
    holiday: bool
    closed_all_day: bool
    notes: tuple[str, ...]
    openings: tuple[str, ...]  # "09:00–12:30"
    rows: tuple[RowView, ...]
    count: int
    free: int  # free times of the day, all menus
    url: str  # this day's day view


@dataclass(frozen=True, slots=True)
class PractitionerChoice:
    id: str
    name: str
    active: bool


def _hhmm(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


def window(days: Sequence[AgendaDay]) -> tuple[int, int]:
    """The rows to draw, in whole hours: every opening and appointment of the days fits."""
    starts = [o.start for d in days for o in d.openings]
    starts += [e.start_minute for d in days for e in d.entries]
    ends = [o.end for d in days for o in d.openings]
    ends += [max(e.end_minute, e.start_minute + 1) for d in days for e in d.entries]
    if not starts:
        return DEFAULT_WINDOW
    first = min(starts) // 60 * 60
    last = min(agenda.DAY_MINUTES, -(-max(ends) // 60) * 60)
    return first, max(last, first + 60)


class Calendar:
    """Turns agenda days into view models: rows, labels and links."""

    def __init__(
        self,
        *,
        practitioner_id: str,
        view: str,
        cancelled: bool,
        locale: str,
        today: date,
        patients: dict[str, accounts.PatientView],
    ) -> None:
        self.practitioner_id = practitioner_id
        self.view = view
        self.cancelled = cancelled
        self.locale = locale
        self.today = today
        self.patients = patients

    def url(self, *, view: str | None = None, day: date, cancelled: bool | None = None) -> str:
        query = {"practitioner": self.practitioner_id, "view": view or self.view}
        query["day"] = day.isoformat()
        if self.cancelled if cancelled is None else cancelled:
            query["cancelled"] = "1"
        return f"/staff/calendar?{urlencode(query)}"

    def entry(self, entry: AgendaEntry) -> EntryView:
        patient = self.patients.get(entry.patient_id or "")
        return EntryView(
            id=entry.id,
            start=_hhmm(entry.start_minute),
            end=_hhmm(entry.end_minute) if entry.end_minute < agenda.DAY_MINUTES else "24:00",
            status=entry.status.value,
            patient_name=patient.full_name if patient else None,
            patient_url=f"/staff/patients/{patient.id}" if patient else None,
            menu_title=self.title(entry.menu_title_ja, entry.menu_title_en),
            mode=entry.mode.value,
            overbooked=entry.overbooked,
            next_statuses=tuple(sorted(s.value for s in STAFF_TRANSITIONS.get(entry.status, ()))),
            answers_url=(
                f"/staff/appointments/{entry.id}/questionnaire"
                if entry.has_questionnaire and entry.patient_id
                else None
            ),
        )

    def title(self, title_ja: str, title_en: str) -> str:
        return title_ja if self.locale == "ja" else title_en

    def days(self, days: Sequence[AgendaDay], free: Sequence[FreeTime] = ()) -> list[DayView]:
        first, last = window(days)
        free_by_day: dict[date, dict[int, list[FreeView]]] = {}
        for time_free in free:
            free_by_day.setdefault(time_free.start.date(), {}).setdefault(
                time_free.start_minute // ROW_MINUTES * ROW_MINUTES, []
            ).append(
                FreeView(
                    _hhmm(time_free.start_minute),
                    self.title(time_free.menu_title_ja, time_free.menu_title_en),
                    time_free.free_seats,
                )
            )
        result = []
        for column, day in enumerate(days, start=1):
            by_row: dict[int, list[EntryView]] = {}
            for entry in day.entries:
                row = entry.start_minute // ROW_MINUTES * ROW_MINUTES
                by_row.setdefault(row, []).append(self.entry(entry))
            free_rows = free_by_day.get(day.day, {})
            rows = tuple(
                RowView(
                    label=_hhmm(minute),
                    open=any(
                        o.start < minute + ROW_MINUTES and minute < o.end for o in day.openings
                    ),
                    entries=tuple(by_row.get(minute, [])),
                    free=tuple(free_rows.get(minute, [])),
                )
                for minute in range(first, last, ROW_MINUTES)
            )
            result.append(
                DayView(
                    day=day.day,
                    weekday=day.day.weekday(),
                    column=column,
                    is_today=day.day == self.today,
                    is_open=day.is_open,
                    holiday=day.holiday,
                    closed_all_day=day.closed_all_day,
                    notes=day.notes,
                    openings=tuple(f"{_hhmm(o.start)}–{_hhmm(o.end)}" for o in day.openings),
                    rows=rows,
                    count=len(day.entries),
                    free=sum(len(times) for times in free_rows.values()),
                    url=self.url(view="day", day=day.day),
                )
            )
        return result


@dataclass(frozen=True, slots=True)
class Query:
    """What the address asks for, checked."""

    view: str
    day: date
    practitioner: str
    cancelled: bool

    @property
    def days(self) -> int:
        return VIEWS[self.view]

    @property
    def first_day(self) -> date:
        return agenda.week_of(self.day) if self.view == "week" else self.day

    @property
    def last_day(self) -> date:
        return self.first_day + timedelta(days=self.days - 1)


def parse_query(params: Mapping[str, str], today: date) -> Query | Text:
    """The query of ``params``, or what is wrong with it (to answer 400)."""
    view = params.get("view") or "day"
    if view not in VIEWS:
        return BAD_VIEW
    chosen = params.get("day") or ""
    try:
        day = date.fromisoformat(chosen) if chosen else today
    except ValueError:
        return BAD_DAY
    if not FIRST_DAY <= day <= LAST_DAY:
        return BAD_DAY
    return Query(view, day, params.get("practitioner", ""), params.get("cancelled") == "1")


async def _practitioner(
    request: Request, principal: Principal, wanted: str, choices: list[Practitioner]
) -> Practitioner | None:
    """The practitioner asked for (404 unless of the staff member's clinic), else the default."""
    if not wanted:
        return agenda.default_practitioner(choices, principal.id)
    found = await agenda.find_practitioner(wanted)
    clinic_ids = frozenset({str(found.clinic_id)}) if found else frozenset()  # type: ignore[attr-defined]
    await authorize(
        request,
        principal,
        Action.SCHEDULE_READ,
        Resource("practitioner", wanted[:64], clinic_ids=clinic_ids),
    )
    return found


async def _patients(days: Sequence[AgendaDay]) -> dict[str, accounts.PatientView]:
    """The portal's records of the patients the days list (booking keeps ids only)."""
    found = {}
    for patient_id in sorted({e.patient_id for d in days for e in d.entries if e.patient_id}):
        patient = await accounts.find_patient(patient_id)
        if patient is not None:
            found[patient_id] = accounts.view_of(patient)
    return found


def _choice(practitioner: Practitioner) -> PractitionerChoice:
    return PractitionerChoice(
        str(practitioner.id), practitioner.display_name, practitioner.is_active
    )


async def calendar(request: Request) -> Response:
    """A practitioner's day or week (Monday–Sunday), in the clinic's time zone."""
    principal = require(request, "staff")
    clinic_resource = Resource(
        "clinic", principal.clinic_id, clinic_ids=frozenset({principal.clinic_id})
    )
    await authorize(request, principal, Action.SCHEDULE_READ, clinic_resource)
    clinic = await agenda.clinic_of(principal.clinic_id)
    if clinic is None:
        raise HTTPException(404)
    now = clock(request)
    today = now.astimezone(ZoneInfo(clinic.time_zone)).date()
    query = parse_query(request.query_params, today)
    if isinstance(query, Text):
        error = {"error": message(request, query)}
        return page(request, "calendar/invalid.html", error, status=400)
    choices = await agenda.clinic_practitioners(principal.clinic_id)
    practitioner = await _practitioner(request, principal, query.practitioner, choices)
    context: dict[str, object] = {
        "view": query.view,
        "day": query.day,
        "first_day": query.first_day,
        "last_day": query.last_day,
        "zone": clinic.time_zone,
        "cancelled": query.cancelled,
        "practitioners": [_choice(p) for p in choices],
        "practitioner": None,
        "days": [],
    }
    if practitioner is None:
        return page(request, "calendar/calendar.html", context)
    days = await agenda.practitioner_agenda(
        clinic,
        practitioner,
        query.first_day,
        query.days,
        now=now,
        include_cancelled=query.cancelled,
    )
    free: list[FreeTime] = []
    if query.last_day >= today:
        free = await agenda.free_times(clinic, practitioner, query.first_day, query.days, now=now)
    patients = await _patients(days)
    await record(
        request,
        principal,
        "schedule.read",
        clinic_resource,
        detail={
            "view": f"calendar.{query.view}",
            "practitioner_id": str(practitioner.id),
            "first_day": query.first_day.isoformat(),
            "rows": sum(len(d.entries) for d in days),
        },
    )
    builder = Calendar(
        practitioner_id=str(practitioner.id),
        view=query.view,
        cancelled=query.cancelled,
        locale=request_locale(request),
        today=today,
        patients=patients,
    )
    step = timedelta(days=query.days)
    context.update(
        practitioner=_choice(practitioner),
        days=builder.days(days, free),
        previous_url=builder.url(day=query.day - step),
        next_url=builder.url(day=query.day + step),
        today_url=builder.url(day=today),
        day_url=builder.url(view="day", day=query.day),
        week_url=builder.url(view="week", day=query.day),
        toggle_url=builder.url(day=query.day, cancelled=not query.cancelled),
        schedule_url=f"/staff/schedule?day={query.day.isoformat()}",
    )
    return page(request, "calendar/calendar.html", context)


routes: list[BaseRoute] = [Route("/staff/calendar", calendar, methods=["GET"])]
