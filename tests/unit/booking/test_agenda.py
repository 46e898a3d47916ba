"""The agenda's pure core: opening hours per day, entries placed on their local day, weeks and
day bounds across daylight-saving changes."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from booking.agenda import AgendaEntry, Opening, agenda_days, day_bounds, week_of
from booking.domain import DateException, WeeklyRange
from booking.models import AppointmentStatus, VisitMode

TOKYO = ZoneInfo("Asia/Tokyo")
NEW_YORK = ZoneInfo("America/New_York")
MONDAY = date(2025, 4, 7)
SHOWA_DAY = date(2025, 4, 29)  # 昭和の日, a Tuesday
WEEKDAYS = [
    WeeklyRange(d, start, end)
    for d in range(5)
    for start, end in ((time(9), time(12, 30)), (time(15), time(18)))
]


def entry(key: str, start: datetime, minutes: int = 15) -> AgendaEntry:
    return AgendaEntry(
        id=key,
        start=start,
        end=start + timedelta(minutes=minutes),
        status=AppointmentStatus.BOOKED,
        patient_id=f"patient-{key}",
        menu_id="menu",
        menu_title_ja="内科",
        menu_title_en="Internal medicine",
        mode=VisitMode.IN_PERSON,
        overbooked=False,
    )


def openings(day: date, **kwargs: object) -> list[tuple[int, int]]:
    arguments: dict[str, object] = {
        "hours": WEEKDAYS,
        "exceptions": [],
        "entries": [],
        "zone": TOKYO,
        "open_on_holidays": False,
        **kwargs,
    }
    (only,) = agenda_days(day, 1, **arguments)  # type: ignore[arg-type]
    return [(o.start, o.end) for o in only.openings]


@pytest.mark.parametrize(
    ("day", "exceptions", "expected"),
    [
        (MONDAY, [], [(540, 750), (900, 1080)]),
        (MONDAY + timedelta(days=5), [], []),  # Saturday: no hours
        (MONDAY, [DateException(MONDAY, True)], []),  # closed all day
        (  # an afternoon off cuts the range
            MONDAY,
            [DateException(MONDAY, True, time(15), time(16))],
            [(540, 750), (960, 1080)],
        ),
        (  # extra hours merge with the morning where they touch
            MONDAY,
            [DateException(MONDAY, False, time(12, 30), time(13, 30))],
            [(540, 810), (900, 1080)],
        ),
        (SHOWA_DAY, [], []),  # a public holiday is closed
        (  # extra hours open a holiday, but only those hours
            SHOWA_DAY,
            [DateException(SHOWA_DAY, False, time(10), time(12))],
            [(600, 720)],
        ),
        (  # a whole-day closure wins over extra hours
            MONDAY,
            [DateException(MONDAY, False, time(19), time(20)), DateException(MONDAY, True)],
            [],
        ),
        (  # open until midnight: 24:00 is minute 1440
            MONDAY,
            [DateException(MONDAY, False, time(20), time.max)],
            [(540, 750), (900, 1080), (1200, 1440)],
        ),
    ],
)
def test_openings_of_a_day(
    day: date, exceptions: list[DateException], expected: list[tuple[int, int]]
) -> None:
    assert openings(day, exceptions=exceptions) == expected


def test_a_clinic_that_opens_on_holidays_keeps_its_weekly_hours() -> None:
    assert openings(SHOWA_DAY, open_on_holidays=True) == [(540, 750), (900, 1080)]
    (holiday,) = agenda_days(
        SHOWA_DAY, 1, hours=WEEKDAYS, exceptions=[], entries=[], zone=TOKYO, open_on_holidays=False
    )
    assert holiday.holiday
    assert not holiday.is_open
    assert not holiday.closed_all_day


def test_entries_land_on_their_local_day_in_order() -> None:
    late_sunday = datetime(2025, 4, 13, 14, 30, tzinfo=UTC)  # 23:30 in Tokyo
    early_monday = datetime(2025, 4, 13, 15, 10, tzinfo=UTC)  # 00:10 next Monday in Tokyo
    days = agenda_days(
        MONDAY,
        7,
        hours=WEEKDAYS,
        exceptions=[],
        entries=[
            entry("b", datetime(2025, 4, 7, 1, 0, tzinfo=UTC)),  # Monday 10:00
            entry("a", datetime(2025, 4, 7, 0, 30, tzinfo=UTC)),  # Monday 09:30
            entry("sun", late_sunday),
            entry("next", early_monday),
        ],
        zone=TOKYO,
        open_on_holidays=False,
    )
    assert [d.day for d in days] == [MONDAY + timedelta(days=n) for n in range(7)]
    assert [e.id for e in days[0].entries] == ["a", "b"]
    assert [(e.id, e.start_minute, e.end_minute) for e in days[6].entries] == [
        ("sun", 23 * 60 + 30, 23 * 60 + 45)
    ]
    assert days[0].entries[0].start.tzinfo is TOKYO
    assert all(e.id != "next" for d in days for e in d.entries)


def test_an_entry_past_midnight_ends_at_the_end_of_its_day() -> None:
    (day,) = agenda_days(
        MONDAY,
        1,
        hours=[],
        exceptions=[],
        entries=[entry("late", datetime(2025, 4, 7, 14, 50, tzinfo=UTC), minutes=30)],
        zone=TOKYO,
        open_on_holidays=False,
    )
    assert (day.entries[0].start_minute, day.entries[0].end_minute) == (23 * 60 + 50, 1440)


def test_fall_back_puts_both_half_past_ones_on_the_same_day_and_row() -> None:
    sunday = date(2025, 11, 2)
    first = datetime(2025, 11, 2, 5, 30, tzinfo=UTC)  # 01:30 EDT
    second = datetime(2025, 11, 2, 6, 30, tzinfo=UTC)  # 01:30 EST
    (day,) = agenda_days(
        sunday,
        1,
        hours=[WeeklyRange(6, time(0), time.max)],
        exceptions=[],
        entries=[entry("second", second), entry("first", first)],
        zone=NEW_YORK,
        open_on_holidays=False,
    )
    assert [(e.id, e.start_minute) for e in day.entries] == [("first", 90), ("second", 90)]
    assert day.openings == (Opening(0, 1440),)


@pytest.mark.parametrize(
    ("first_day", "days", "hours"),
    [
        (date(2025, 3, 3), 7, 167),  # spring forward on Sunday 9 March
        (date(2025, 10, 27), 7, 169),  # fall back on Sunday 2 November
        (date(2025, 3, 9), 1, 23),
        (date(2025, 6, 2), 7, 168),
    ],
)
def test_day_bounds_follow_local_midnights(first_day: date, days: int, hours: int) -> None:
    start, end = day_bounds(first_day, days, NEW_YORK)
    assert start.tzinfo is UTC
    assert start.astimezone(NEW_YORK).time() == time(0)
    assert end.astimezone(NEW_YORK).date() == first_day + timedelta(days=days)
    assert end - start == timedelta(hours=hours)


@given(st.dates(min_value=date(1901, 1, 1), max_value=date(2999, 12, 31)))
def test_the_week_of_a_day_is_the_monday_to_sunday_holding_it(day: date) -> None:
    monday = week_of(day)
    assert monday.weekday() == 0
    assert monday <= day <= monday + timedelta(days=6)
