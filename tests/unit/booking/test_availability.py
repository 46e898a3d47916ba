"""Free slots: table-driven cases, daylight-saving days, and Hypothesis properties.

The properties run against a slow, independent reference: bounds found by scanning the day's
minutes, seats counted by brute force, closures checked one by one.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from itertools import pairwise
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from booking.availability import free_slots, japanese_holiday
from booking.domain import Busy, DateException, Slot, SlotRules, WeeklyRange
from booking.errors import BookingError, BookingRuleError

TOKYO = ZoneInfo("Asia/Tokyo")
NEW_YORK = ZoneInfo("America/New_York")
MINUTE = timedelta(minutes=1)
MONDAY = date(2025, 4, 7)  # an ordinary Monday in Tokyo
SHOWA_DAY = date(2025, 4, 29)  # 昭和の日, a Tuesday


def minutes(n: int) -> timedelta:
    return timedelta(minutes=n)


def at(day: date, hh: int, mm: int = 0, zone: ZoneInfo = TOKYO) -> datetime:
    return datetime.combine(day, time(hh, mm), tzinfo=zone)


def every_day(*ranges: tuple[time, time]) -> list[WeeklyRange]:
    return [WeeklyRange(weekday, start, end) for weekday in range(7) for start, end in ranges]


MORNING_AND_EVENING = every_day((time(9), time(12, 30)), (time(15), time(18, 30)))
HALF_HOUR = SlotRules(duration=minutes(30))
EVENING = ("15:00", "15:30", "16:00", "16:30", "17:00", "17:30", "18:00")


def labels(slots: Sequence[Slot]) -> list[str]:
    return [f"{s.start:%m-%d %H:%M}" for s in slots]


def one_day(
    day: date,
    *,
    hours: Sequence[WeeklyRange] = MORNING_AND_EVENING,
    exceptions: Sequence[DateException] = (),
    busy: Sequence[Busy] = (),
    rules: SlotRules = HALF_HOUR,
    now: datetime | None = None,
    zone: ZoneInfo = TOKYO,
) -> list[Slot]:
    return free_slots(
        hours=hours,
        exceptions=exceptions,
        busy=busy,
        rules=rules,
        zone=zone,
        now=now if now is not None else at(MONDAY, 7, zone=zone),
        start_day=day,
        days=1,
    )


def day_labels(day: date, *hhmm: str) -> list[str]:
    return [f"{day:%m-%d} {x}" for x in hhmm]


# --- table-driven cases ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("case", "kwargs", "expected"),
    [
        (
            "two ranges a day",
            {},
            day_labels(
                MONDAY,
                *("09:00", "09:30", "10:00", "10:30", "11:00", "11:30", "12:00"),
                *EVENING,
            ),
        ),
        (
            "lunch break with hour slots: 11:30 is off the grid, 12:30 does not fit",
            {"rules": SlotRules(duration=minutes(60))},
            day_labels(MONDAY, "09:00", "10:00", "11:00", "15:00", "16:00", "17:00"),
        ),
        (
            "step smaller than the duration",
            {
                "hours": every_day((time(9), time(10, 30))),
                "rules": SlotRules(duration=minutes(60), step=minutes(15)),
            },
            day_labels(MONDAY, "09:00", "09:15", "09:30"),
        ),
        (
            "whole day closed",
            {"exceptions": [DateException(MONDAY, closed=True)]},
            [],
        ),
        (
            "a doctor's leave for the afternoon",
            {"exceptions": [DateException(MONDAY, closed=True, start=time(13), end=time(19))]},
            day_labels(MONDAY, "09:00", "09:30", "10:00", "10:30", "11:00", "11:30", "12:00"),
        ),
        (
            "a leave off the grid keeps the grid: later slots stay on the half hour",
            {
                "hours": every_day((time(9), time(12))),
                "exceptions": [DateException(MONDAY, closed=True, start=time(9), end=time(10, 40))],
            },
            day_labels(MONDAY, "11:00", "11:30"),
        ),
        (
            "extra hours touching the morning range extend it",
            {
                "hours": every_day((time(9), time(10))),
                "exceptions": [DateException(MONDAY, closed=False, start=time(10), end=time(11))],
            },
            day_labels(MONDAY, "09:00", "09:30", "10:00", "10:30"),
        ),
        (
            "closed wins over extra hours the same day",
            {
                "exceptions": [
                    DateException(MONDAY, closed=False, start=time(19), end=time(20)),
                    DateException(MONDAY, closed=True),
                ]
            },
            [],
        ),
        (
            "minimum notice",
            {
                "now": at(MONDAY, 10, 10),
                "rules": SlotRules(duration=minutes(30), min_notice=minutes(60)),
            },
            day_labels(MONDAY, "11:30", "12:00", *EVENING),
        ),
        (
            "buffers keep their distance on both sides of a booking",
            {
                "hours": every_day((time(9), time(12))),
                "busy": [Busy(at(MONDAY, 10), at(MONDAY, 10, 30))],
                "rules": SlotRules(
                    duration=minutes(30), buffer_before=minutes(10), buffer_after=minutes(10)
                ),
            },
            # 09:00 has no room for its preparation; 09:30 and 10:30 touch the booking's buffers;
            # 11:30 has no room for its clean-up before noon.
            day_labels(MONDAY, "11:00"),
        ),
    ],
    ids=lambda value: value if isinstance(value, str) else "",
)
def test_one_day(case: str, kwargs: dict[str, Any], expected: list[str]) -> None:
    assert labels(one_day(MONDAY, **kwargs)) == expected


def test_extra_hours_on_a_day_without_regular_hours() -> None:
    sunday = MONDAY + timedelta(days=6)
    extra = DateException(sunday, closed=False, start=time(10), end=time(11))
    hours = [WeeklyRange(0, time(9), time(12))]
    assert labels(one_day(sunday, hours=hours, exceptions=[extra])) == day_labels(
        sunday, "10:00", "10:30"
    )


def test_public_holidays_are_closed_unless_opened() -> None:
    hours = every_day((time(9), time(10)))
    now = at(SHOWA_DAY, 7)
    assert one_day(SHOWA_DAY, hours=hours, now=now) == []
    opened = SlotRules(duration=minutes(30), open_on_holidays=True)
    assert labels(one_day(SHOWA_DAY, hours=hours, rules=opened, now=now)) == day_labels(
        SHOWA_DAY, "09:00", "09:30"
    )
    extra = DateException(SHOWA_DAY, closed=False, start=time(13), end=time(14))
    assert labels(one_day(SHOWA_DAY, hours=hours, exceptions=[extra], now=now)) == day_labels(
        SHOWA_DAY, "13:00", "13:30"
    ), "extra hours on a holiday open that day, but only those hours"


@pytest.mark.parametrize(
    ("day", "holiday"),
    [
        (date(2025, 1, 1), True),  # 元日
        (date(2025, 1, 13), True),  # 成人の日, second Monday of January
        (date(2025, 1, 14), False),
        (date(2025, 5, 6), True),  # 振替休日 for 5/4 (a Sunday)
        (date(2025, 9, 23), True),  # 秋分の日
        (date(2025, 12, 29), False),  # year-end closure is the clinic's choice, not a holiday
    ],
)
def test_japanese_holiday(day: date, holiday: bool) -> None:
    assert japanese_holiday(day) is holiday


@pytest.mark.parametrize(
    ("busy", "free"),
    [
        ([], [3, 3]),
        ([Busy(at(MONDAY, 9), at(MONDAY, 9, 30))] * 2, [1, 3]),
        ([Busy(at(MONDAY, 9), at(MONDAY, 9, 30), seats=2)], [1, 3]),
        ([Busy(at(MONDAY, 9), at(MONDAY, 9, 30))] * 3, [3]),
        ([Busy(at(MONDAY, 9, 20), at(MONDAY, 9, 40))], [2, 2]),
        ([Busy(at(MONDAY, 8), at(MONDAY, 12), seats=3)], []),
    ],
)
def test_capacity(busy: list[Busy], free: list[int]) -> None:
    rules = SlotRules(duration=minutes(30), capacity=3)
    slots = one_day(MONDAY, hours=every_day((time(9), time(10))), busy=busy, rules=rules)
    assert [s.free_seats for s in slots] == free


def test_busy_in_another_zone_counts_by_instant() -> None:
    taken = Busy(at(MONDAY, 9).astimezone(UTC), at(MONDAY, 9, 30).astimezone(NEW_YORK))
    slots = one_day(MONDAY, hours=every_day((time(9), time(10))), busy=[taken])
    assert labels(slots) == day_labels(MONDAY, "09:30")


def test_horizon_and_window() -> None:
    hours = every_day((time(9), time(9, 30)))
    rules = SlotRules(duration=minutes(30), max_days_ahead=2)
    now = at(MONDAY, 8)

    def run(start_day: date | None = None, days: int | None = None) -> list[str]:
        slots = free_slots(
            hours=hours, exceptions=[], busy=[], rules=rules, zone=TOKYO, now=now,
            start_day=start_day, days=days, holidays=lambda _: False,
        )  # fmt: skip
        return [f"{s.start:%m-%d}" for s in slots]

    assert run() == ["04-07", "04-08", "04-09"]
    assert run(days=2) == ["04-07", "04-08"]
    assert run(start_day=MONDAY + timedelta(days=1), days=10) == ["04-08", "04-09"]
    assert run(start_day=MONDAY - timedelta(days=3), days=4) == ["04-07"], "no days before today"
    assert run(days=0) == []
    today_only = SlotRules(duration=minutes(30), max_days_ahead=0)
    assert one_day(MONDAY, hours=hours, rules=today_only, now=now) != []


# --- daylight-saving days ---------------------------------------------------------------------

NY_SPRING = date(2025, 3, 9)  # 02:00 EST → 03:00 EDT
NY_FALL = date(2025, 11, 2)  # 02:00 EDT → 01:00 EST


def test_spring_forward_gap_gives_no_slot() -> None:
    slots = one_day(
        NY_SPRING,
        hours=every_day((time(1), time(4))),
        zone=NEW_YORK,
        now=at(NY_SPRING, 0, zone=NEW_YORK),
    )
    assert [f"{s.start:%H:%M %Z}-{s.end:%H:%M %Z}" for s in slots] == [
        "01:00 EST-01:30 EST",
        "01:30 EST-03:00 EDT",
        "03:00 EDT-03:30 EDT",
        "03:30 EDT-04:00 EDT",
    ]


def test_bounds_in_the_gap_mean_the_transition() -> None:
    now = at(NY_SPRING, 0, zone=NEW_YORK)
    sunday = NY_SPRING.weekday()
    closes_in_gap = [WeeklyRange(sunday, time(1), time(2, 30))]
    slots = one_day(NY_SPRING, hours=closes_in_gap, zone=NEW_YORK, now=now)
    assert [f"{s.start:%H:%M}-{s.end:%H:%M}" for s in slots] == ["01:00-01:30", "01:30-03:00"]
    opens_in_gap = [WeeklyRange(sunday, time(2, 30), time(4))]
    slots = one_day(NY_SPRING, hours=opens_in_gap, zone=NEW_YORK, now=now)
    assert [f"{s.start:%H:%M}" for s in slots] == ["03:00", "03:30"]
    leave_in_gap = DateException(NY_SPRING, closed=True, start=time(2, 10), end=time(2, 50))
    slots = one_day(
        NY_SPRING,
        hours=every_day((time(1), time(4))),
        exceptions=[leave_in_gap],
        rules=SlotRules(duration=minutes(60), step=minutes(30)),
        zone=NEW_YORK,
        now=now,
    )
    assert [f"{s.start:%H:%M}-{s.end:%H:%M}" for s in slots] == [
        "01:00-03:00",
        "01:30-03:30",
        "03:00-04:00",
    ], "a leave that lies wholly in the gap closes nothing"


def test_across_the_gap_starts_stay_a_step_apart() -> None:
    rules = SlotRules(duration=minutes(90))
    slots = one_day(
        NY_SPRING,
        hours=every_day((time(1, 30), time(5))),
        rules=rules,
        zone=NEW_YORK,
        now=at(NY_SPRING, 0, zone=NEW_YORK),
    )
    # 01:30 EST lasts until 04:00 EDT; the 03:00 grid time would overlap it and is skipped.
    assert [f"{s.start:%H:%M %Z}" for s in slots] == ["01:30 EST"]


def test_fall_back_gives_each_wall_time_once_at_its_first_occurrence() -> None:
    slots = one_day(
        NY_FALL,
        hours=every_day((time(0), time(3))),
        zone=NEW_YORK,
        now=at(NY_FALL, 0, zone=NEW_YORK),
    )
    assert [f"{s.start:%H:%M %Z}" for s in slots] == [
        "00:00 EDT",
        "00:30 EDT",
        "01:00 EDT",
        "01:30 EDT",
        "02:00 EST",
        "02:30 EST",
    ]
    assert all(s.start.fold == 0 for s in slots)


def test_nine_oclock_is_nine_oclock_on_both_sides_of_a_transition() -> None:
    slots = free_slots(
        hours=every_day((time(9), time(9, 30))),
        exceptions=[],
        busy=[],
        rules=SlotRules(duration=minutes(30), max_days_ahead=3),
        zone=NEW_YORK,
        now=at(NY_SPRING - timedelta(days=1), 0, zone=NEW_YORK),
        holidays=lambda _: False,
    )
    assert [f"{s.start:%d %H:%M}" for s in slots] == [
        "08 09:00",
        "09 09:00",
        "10 09:00",
        "11 09:00",
    ]
    assert {s.start.utcoffset() for s in slots} == {timedelta(hours=-5), timedelta(hours=-4)}


# --- validation -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "build",
    [
        lambda: WeeklyRange(7, time(9), time(10)),
        lambda: WeeklyRange(0, time(10), time(9)),
        lambda: WeeklyRange(0, time(9, tzinfo=UTC), time(10, tzinfo=UTC)),
        lambda: DateException(MONDAY, closed=False),
        lambda: DateException(MONDAY, closed=True, start=time(9)),
        lambda: DateException(MONDAY, closed=True, start=time(9), end=time(9)),
        lambda: SlotRules(duration=timedelta(0)),
        lambda: SlotRules(duration=minutes(30), capacity=0),
        lambda: SlotRules(duration=minutes(30), min_notice=minutes(-1)),
        lambda: SlotRules(duration=minutes(30), max_days_ahead=-1),
        lambda: SlotRules(duration=minutes(30), buffer_after=minutes(-1)),
        lambda: SlotRules(duration=minutes(30), step=timedelta(0)),
        lambda: Busy(at(MONDAY, 9), at(MONDAY, 9)),
        lambda: Busy(at(MONDAY, 9), at(MONDAY, 10), seats=0),
        lambda: Busy(datetime(2025, 4, 7, 9), datetime(2025, 4, 7, 10)),  # noqa: DTZ001
        lambda: Slot(at(MONDAY, 9), at(MONDAY, 9, 30), free_seats=0),
        # 01:30 EDT then 01:15 EST: earlier on the wall clock, later in fact — and the reverse.
        lambda: Slot(
            datetime(2025, 11, 2, 1, 15, tzinfo=NEW_YORK, fold=1),
            datetime(2025, 11, 2, 1, 30, tzinfo=NEW_YORK),
            free_seats=1,
        ),
        lambda: one_day(MONDAY, now=datetime(2025, 4, 7, 7)),  # noqa: DTZ001
        lambda: free_slots(
            hours=[],
            exceptions=[],
            busy=[],
            rules=HALF_HOUR,
            zone=TOKYO,
            now=at(MONDAY, 7),
            days=-1,
        ),
    ],
)
def test_rule_errors(build: Callable[[], object]) -> None:
    with pytest.raises(BookingRuleError) as caught:
        build()
    assert isinstance(caught.value, BookingError)
    assert isinstance(caught.value, ValueError)


def test_a_slot_across_fall_back_is_in_order_by_instant() -> None:
    slot = Slot(
        datetime(2025, 11, 2, 1, 30, tzinfo=NEW_YORK),
        datetime(2025, 11, 2, 1, 15, tzinfo=NEW_YORK, fold=1),
        free_seats=1,
    )
    assert slot.end.astimezone(UTC) - slot.start.astimezone(UTC) == minutes(45)


# --- Hypothesis: an independent reference and the properties ----------------------------------

DST_ZONES = ["America/New_York", "Europe/London", "Australia/Sydney", "Asia/Tokyo"]
TRANSITION_DAYS = [
    date(2025, 3, 9), date(2025, 11, 2),  # New York
    date(2025, 3, 30), date(2025, 10, 26),  # London
    date(2025, 4, 6), date(2025, 10, 5),  # Sydney
]  # fmt: skip


@dataclass(frozen=True)
class Scenario:
    hours: list[WeeklyRange]
    exceptions: list[DateException]
    busy: list[Busy]
    rules: SlotRules
    zone: ZoneInfo
    now: datetime
    holiday_days: frozenset[date]

    def holidays(self, day: date) -> bool:
        return day in self.holiday_days

    def run(self, start_day: date | None = None, days: int | None = None) -> list[Slot]:
        return free_slots(
            hours=self.hours, exceptions=self.exceptions, busy=self.busy, rules=self.rules,
            zone=self.zone, now=self.now, start_day=start_day, days=days, holidays=self.holidays,
        )  # fmt: skip

    @property
    def today(self) -> date:
        return self.now.astimezone(self.zone).date()

    @property
    def days(self) -> list[date]:
        return [self.today + timedelta(days=n) for n in range(self.rules.max_days_ahead + 1)]


@st.composite
def wall_ranges(draw: st.DrawFn) -> tuple[time, time]:
    """A range on the quarter hour, from 00:00 to 23:45 at the latest."""
    start = draw(st.integers(0, 94))
    end = draw(st.integers(start + 1, 95))
    return time(start // 4, start % 4 * 15), time(end // 4, end % 4 * 15)


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    zone = ZoneInfo(draw(st.sampled_from(DST_ZONES)))
    anchor = draw(st.sampled_from(TRANSITION_DAYS))
    first = anchor - timedelta(days=draw(st.integers(0, 3)))
    now = datetime.combine(first, time(), tzinfo=zone) + minutes(draw(st.integers(0, 24 * 60 - 1)))
    window = [first + timedelta(days=n) for n in range(8)]
    hours = [
        WeeklyRange(weekday, *draw(wall_ranges()))
        for weekday in range(7)
        for _ in range(draw(st.integers(0, 2)))
    ]
    exceptions = []
    for _ in range(draw(st.integers(0, 4))):
        day = draw(st.sampled_from(window))
        kind = draw(st.sampled_from(["closed", "leave", "extra"]))
        if kind == "closed":
            exceptions.append(DateException(day, closed=True))
        else:
            exceptions.append(DateException(day, kind == "leave", *draw(wall_ranges())))
    busy = []
    for _ in range(draw(st.integers(0, 12))):
        start = datetime.combine(first, time(), tzinfo=UTC) + minutes(
            5 * draw(st.integers(0, 2000))
        )
        length = minutes(5 * draw(st.integers(1, 36)))
        busy.append(Busy(start, start + length, seats=draw(st.integers(1, 3))))
    five = st.integers(0, 24).map(lambda n: minutes(5 * n))
    rules = SlotRules(
        duration=minutes(5 * draw(st.integers(1, 24))),
        capacity=draw(st.integers(1, 3)),
        min_notice=minutes(30 * draw(st.integers(0, 10))),
        max_days_ahead=draw(st.integers(0, 5)),
        buffer_before=draw(five),
        buffer_after=draw(five),
        step=draw(st.none() | st.integers(1, 24).map(lambda n: minutes(5 * n))),
        open_on_holidays=draw(st.booleans()),
    )
    holiday_days = frozenset(draw(st.lists(st.sampled_from(window), max_size=2)))
    return Scenario(hours, exceptions, busy, rules, zone, now, holiday_days)


@lru_cache(maxsize=256)
def wall_clock_minutes(day: date, zone: ZoneInfo) -> tuple[tuple[datetime, datetime], ...]:
    """Every minute from the day's first instant for 26 hours: (UTC instant, naive wall clock)."""
    first = datetime.combine(day, time(), tzinfo=zone).astimezone(UTC) - timedelta(hours=1)
    instants = (first + MINUTE * n for n in range(26 * 60))
    return tuple((i, i.astimezone(zone).replace(tzinfo=None)) for i in instants)


def first_instant_reading(day: date, wall: time, zone: ZoneInfo) -> datetime:
    """The first instant of ``day`` at which the clock on the wall reads ``wall`` or later."""
    target = datetime.combine(day, wall)
    return next(
        i
        for i, reading in wall_clock_minutes(day, zone)
        if reading.date() == day and reading >= target
    )


def day_hours(s: Scenario, day: date) -> tuple[list[tuple[time, time]], list[tuple[time, time]]]:
    """Merged opening ranges and the closed ranges of ``day``, on the wall clock."""
    todays = [e for e in s.exceptions if e.day == day]
    if any(e.closed and e.start is None for e in todays):
        return [], []
    ranges = [(e.start, e.end) for e in todays if not e.closed and e.start and e.end]
    if s.rules.open_on_holidays or not s.holidays(day):
        ranges += [(h.start, h.end) for h in s.hours if h.weekday == day.weekday()]
    merged: list[tuple[time, time]] = []
    for start, end in sorted(ranges):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    closed = [(e.start, e.end) for e in todays if e.closed and e.start and e.end]
    return merged, closed


def grid(day: date, ranges: list[tuple[time, time]], step: timedelta) -> set[datetime]:
    times: set[datetime] = set()
    for start, end in ranges:
        wall = datetime.combine(day, start)
        while wall < datetime.combine(day, end):
            times.add(wall)
            wall += step
    return times


def span(s: Scenario, start: datetime, end: datetime) -> tuple[datetime, datetime]:
    return start.astimezone(UTC) - s.rules.buffer_before, end.astimezone(UTC) + s.rules.buffer_after


def overlaps(a: tuple[datetime, datetime], b: tuple[datetime, datetime]) -> bool:
    return max(a[0], b[0]) < min(a[1], b[1])


def most_seats_taken(s: Scenario, occupied: tuple[datetime, datetime]) -> int:
    """By brute force: seats of buffered busy periods at the start and at every later change."""
    busy = [(span(s, b.start, b.end), b.seats) for b in s.busy]
    moments = [occupied[0]] + [b[0] for b, _ in busy if occupied[0] < b[0] < occupied[1]]
    return max(sum(seats for (b0, b1), seats in busy if b0 <= m < b1) for m in moments)


def reference(s: Scenario) -> list[tuple[datetime, datetime, int]]:
    """Every slot the rules allow, as (UTC start, UTC end, free seats)."""
    step, found = s.rules.grid_step, []
    earliest = s.now + s.rules.min_notice
    for day in s.days:
        openings, closures = day_hours(s, day)
        closed = [
            (first_instant_reading(day, a, s.zone), first_instant_reading(day, b, s.zone))
            for a, b in closures
        ]
        for open_start, open_end in openings:
            bounds = (
                first_instant_reading(day, open_start, s.zone),
                first_instant_reading(day, open_end, s.zone),
            )
            previous = None
            for wall in sorted(grid(day, [(open_start, open_end)], step)):
                start = wall.replace(tzinfo=s.zone).astimezone(UTC)
                if start.astimezone(s.zone).replace(tzinfo=None) != wall:
                    continue  # does not exist
                if previous is not None and start < previous + step:
                    continue
                previous = start
                end = start + s.rules.duration
                occupied = span(s, start, end)
                if start < earliest or occupied[0] < bounds[0] or occupied[1] > bounds[1]:
                    continue
                if any(overlaps(occupied, c) for c in closed):
                    continue
                free = s.rules.capacity - most_seats_taken(s, occupied)
                if free > 0:
                    found.append((start, end, free))
    return found


def as_utc(slots: Sequence[Slot]) -> list[tuple[datetime, datetime, int]]:
    return [(s.start.astimezone(UTC), s.end.astimezone(UTC), s.free_seats) for s in slots]


PROPERTY_SETTINGS = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


@PROPERTY_SETTINGS
@given(scenarios())
def test_matches_the_reference(s: Scenario) -> None:
    assert as_utc(s.run()) == reference(s)


@PROPERTY_SETTINGS
@given(scenarios())
def test_slots_lie_inside_open_hours_and_never_touch_a_closure(s: Scenario) -> None:
    for slot in s.run():
        day = slot.start.date()
        openings, closures = day_hours(s, day)
        occupied = span(s, slot.start, slot.end)
        assert any(
            first_instant_reading(day, a, s.zone) <= occupied[0]
            and occupied[1] <= first_instant_reading(day, b, s.zone)
            for a, b in openings
        )
        for a, b in closures:
            closed = (first_instant_reading(day, a, s.zone), first_instant_reading(day, b, s.zone))
            assert not overlaps(occupied, closed)


@PROPERTY_SETTINGS
@given(scenarios())
def test_free_seats_are_capacity_minus_the_busiest_moment(s: Scenario) -> None:
    for slot in s.run():
        taken = most_seats_taken(s, span(s, slot.start, slot.end))
        assert slot.free_seats == s.rules.capacity - taken
        assert 0 < slot.free_seats <= s.rules.capacity


@PROPERTY_SETTINGS
@given(scenarios().filter(lambda s: s.rules.capacity == 1))
def test_buffers_hold(s: Scenario) -> None:
    for slot in s.run():
        occupied = span(s, slot.start, slot.end)
        for entry in s.busy:
            assert not overlaps(occupied, (entry.start, entry.end))
            assert not overlaps(occupied, span(s, entry.start, entry.end)), "both sides' buffers"


@PROPERTY_SETTINGS
@given(scenarios())
def test_stable_across_daylight_saving(s: Scenario) -> None:
    slots = s.run()
    for slot in slots:
        assert slot.start.tzinfo is s.zone
        assert slot.end.tzinfo is s.zone
        assert slot.start.fold == 0
        wall = slot.start.replace(tzinfo=None)
        assert slot.start.astimezone(UTC).astimezone(s.zone).replace(tzinfo=None) == wall
        assert wall in grid(wall.date(), day_hours(s, wall.date())[0], s.rules.grid_step)
        assert slot.end.astimezone(UTC) - slot.start.astimezone(UTC) == s.rules.duration
    if s.rules.grid_step >= s.rules.duration:
        instants = as_utc(slots)
        assert all(a[1] <= b[0] for a, b in pairwise(instants))
    by_day = [slot for day in s.days for slot in s.run(start_day=day, days=1)]
    assert as_utc(by_day) == as_utc(slots)


@PROPERTY_SETTINGS
@given(scenarios(), st.randoms(use_true_random=False))
def test_sorted_deterministic_and_order_free(s: Scenario, rng: random.Random) -> None:
    slots = s.run()
    starts = [slot.start.astimezone(UTC) for slot in slots]
    assert starts == sorted(set(starts))
    earliest = s.now + s.rules.min_notice
    assert all(start >= earliest for start in starts)
    assert all(s.today <= slot.start.date() <= s.days[-1] for slot in slots)
    shuffled = Scenario(
        rng.sample(s.hours, len(s.hours)),
        rng.sample(s.exceptions, len(s.exceptions)),
        rng.sample(s.busy, len(s.busy)),
        s.rules,
        s.zone,
        s.now.astimezone(UTC),
        s.holiday_days,
    )
    assert as_utc(shuffled.run()) == as_utc(slots) == as_utc(s.run())
