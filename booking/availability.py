"""Free slots: opening hours + exceptions + holidays + busy periods + rules + ``now`` → slots.

A pure function: no clock, no database. The caller passes ``now`` and everything it knows about
one practitioner and menu, and gets the slots a patient may book.

The grid
--------
A day's opening ranges are its weekly ranges (none on a public holiday unless the rules open
holidays) plus its extra hours, merged where they overlap or touch; a whole-day closure empties
the day. Slot starts lie on a grid of ``step`` from the start of each merged range. Closed ranges
(a doctor's leave) and busy periods remove slots but never move the grid.

How time is handled
-------------------
Hours are wall-clock times in the clinic's zone: a 9:00 slot is 9:00 local on every day,
whatever the UTC offset. Everything else (fitting inside the hours, buffers, overlaps, notice)
is compared as real instants in UTC. Around daylight-saving transitions:

- a grid time that does not exist (the spring-forward gap) gives no slot;
- a grid time that happens twice (fall-back) gives one slot, at its first occurrence (``fold=0``);
- an opening or closing bound that falls in a gap means the moment of the transition itself;
  an ambiguous bound means its first occurrence;
- the grid never packs slot starts closer than ``step`` in real time: across a gap, a grid time
  that would start less than ``step`` after the previous one is skipped.

Buffers
-------
Every appointment, offered or existing, occupies ``[start - buffer_before, end + buffer_after)``
with the menu's buffers. A slot is offered only if its occupancy lies inside one open range of its
day, and its free seats are ``capacity`` minus the most seats that existing occupancies take at
any instant of it. Buffers are applied to both sides so that the rule is symmetric: whichever
of two neighbouring appointments is booked first, the other keeps its distance.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import defaultdict
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import jpholiday

from booking.domain import Busy, DateException, Slot, SlotRules, WeeklyRange
from booking.errors import BookingRuleError

_ONE_DAY = timedelta(days=1)
_ONE_SECOND = timedelta(seconds=1)

Interval = tuple[datetime, datetime]  # [start, end) as naive UTC datetimes


@lru_cache(maxsize=4096)
def japanese_holiday(day: date) -> bool:
    """Whether ``day`` is a Japanese public holiday (祝日, including 振替休日 and 国民の休日).

    Answers come from ``jpholiday`` and are cached for the life of the process.
    """
    return bool(jpholiday.is_holiday(day))


def free_slots(
    *,
    hours: Sequence[WeeklyRange],
    exceptions: Sequence[DateException],
    busy: Sequence[Busy],
    rules: SlotRules,
    zone: ZoneInfo,
    now: datetime,
    start_day: date | None = None,
    days: int | None = None,
    holidays: Callable[[date], bool] = japanese_holiday,
) -> list[Slot]:
    """The bookable slots of one practitioner and menu, sorted by start.

    Days run from ``start_day`` (default: today in ``zone``) for ``days`` calendar days (default:
    up to the horizon), and never before today nor after today + ``rules.max_days_ahead``. A
    slot starts no earlier than ``now + rules.min_notice``. Slots with no free seat are left
    out. ``busy`` holds every appointment and live hold of the practitioner, in any order.
    Returned datetimes are aware, in ``zone``.
    """
    if now.utcoffset() is None:
        raise BookingRuleError("now must be an aware datetime")
    if days is not None and days < 0:
        raise BookingRuleError("days must not be negative")

    today = now.astimezone(zone).date()
    first = start_day if start_day is not None else today
    last = today + timedelta(days=rules.max_days_ahead)
    if days is not None:
        last = min(last, first + timedelta(days=days - 1))
    first = max(first, today)

    weekly: dict[int, list[tuple[time, time]]] = defaultdict(list)
    for weekly_range in hours:
        weekly[weekly_range.weekday].append((weekly_range.start, weekly_range.end))
    by_day: dict[date, list[DateException]] = defaultdict(list)
    for exception in exceptions:
        by_day[exception.day].append(exception)

    usage = _SeatUsage(busy, rules.buffer_before, rules.buffer_after)
    earliest = now.astimezone(UTC).replace(tzinfo=None) + rules.min_notice
    slots: list[Slot] = []
    day = first
    while day <= last:
        openings = _openings(day, weekly, by_day.get(day, ()), rules, holidays)
        if openings:
            closures = [
                (e.start, e.end)
                for e in by_day.get(day, ())
                if e.closed and e.start is not None and e.end is not None
            ]
            slots.extend(_day_slots(day, openings, closures, rules, zone, earliest, usage))
        day += _ONE_DAY
    return slots


def _openings(
    day: date,
    weekly: dict[int, list[tuple[time, time]]],
    exceptions: Sequence[DateException],
    rules: SlotRules,
    holidays: Callable[[date], bool],
) -> list[tuple[time, time]]:
    """The day's opening ranges before closures, merged where they overlap or touch."""
    if any(e.is_whole_day_closed for e in exceptions):
        return []
    ranges = [
        (e.start, e.end)
        for e in exceptions
        if not e.closed and e.start is not None and e.end is not None
    ]
    regular = weekly.get(day.weekday(), [])
    if regular and (rules.open_on_holidays or not holidays(day)):
        ranges.extend(regular)
    merged: list[tuple[time, time]] = []
    for start, end in sorted(ranges):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def _day_slots(
    day: date,
    openings: list[tuple[time, time]],
    closures: list[tuple[time, time]],
    rules: SlotRules,
    zone: ZoneInfo,
    earliest: datetime,
    usage: _SeatUsage,
) -> list[Slot]:
    clock = _DayClock(day, zone)
    closed = [(clock.bound(s), clock.bound(e)) for s, e in closures]
    step = rules.grid_step
    found: list[Slot] = []
    for open_start, open_end in openings:
        pieces = _subtract((clock.bound(open_start), clock.bound(open_end)), closed)
        if not pieces:
            continue
        wall = datetime.combine(day, open_start)
        wall_end = datetime.combine(day, open_end)
        previous: datetime | None = None
        piece = 0
        while wall < wall_end:
            start = clock.start(wall)
            wall += step
            if start is None:
                continue  # this wall time does not exist (spring-forward gap)
            if previous is not None and start < previous + step:
                continue  # the grid would pack closer than one step across a gap
            previous = start
            end = start + rules.duration
            occupied_start = start - rules.buffer_before
            occupied_end = end + rules.buffer_after
            while piece < len(pieces) and pieces[piece][1] <= occupied_start:
                piece += 1
            if piece == len(pieces):
                break
            if start < earliest:
                continue
            piece_start, piece_end = pieces[piece]
            if occupied_start < piece_start or occupied_end > piece_end:
                continue
            free = rules.capacity - usage.most_seats(occupied_start, occupied_end)
            if free > 0:
                found.append(Slot(clock.local(start), clock.local(end), free))
    return found


class _DayClock:
    """Wall-clock times of one day in ``zone`` to instants and back.

    Instants are naive UTC datetimes, which compare and add fastest. A day whose offset is the
    same at both midnights has no transition (no zone moves its clocks twice in a day), and
    takes the fast path: a fixed offset.
    """

    def __init__(self, day: date, zone: ZoneInfo) -> None:
        self._zone = zone
        self._day = day
        midnight = datetime.combine(day, time(), tzinfo=zone).utcoffset()
        next_midnight = datetime.combine(day + _ONE_DAY, time(), tzinfo=zone).utcoffset()
        self._offset = midnight if midnight == next_midnight else None

    def start(self, wall: datetime) -> datetime | None:
        """The instant of naive ``wall`` (first occurrence), or None if it does not exist."""
        if self._offset is not None:
            return wall - self._offset
        local = wall.replace(tzinfo=self._zone)  # fold=0: the first of two equal wall times
        instant = local.astimezone(UTC)
        if instant.astimezone(self._zone).replace(tzinfo=None) != wall:
            return None
        return instant.replace(tzinfo=None)

    def bound(self, wall: time) -> datetime:
        """The instant of an opening or closing time: its first occurrence, or in a gap the
        moment of the transition."""
        naive = datetime.combine(self._day, wall)
        instant = self.start(naive)
        if instant is not None:
            return instant
        # In a gap, fold=1 reads the wall time with the offset after the transition, which
        # lands before it; fold=0 with the offset before, which lands after. Bisect between.
        local = naive.replace(tzinfo=self._zone)
        before = local.replace(fold=1).astimezone(UTC)
        after = local.astimezone(UTC)
        offset_before = before.astimezone(self._zone).utcoffset()
        while after - before > _ONE_SECOND:
            middle = before + (after - before) / 2
            if middle.astimezone(self._zone).utcoffset() == offset_before:
                before = middle
            else:
                after = middle
        return after.replace(microsecond=0, tzinfo=None)  # transitions fall on whole seconds

    def local(self, instant: datetime) -> datetime:
        """Naive UTC ``instant`` (within this day) as an aware datetime in the zone."""
        if self._offset is not None:
            return (instant + self._offset).replace(tzinfo=self._zone)
        return instant.replace(tzinfo=UTC).astimezone(self._zone)


def _subtract(interval: Interval, holes: Sequence[Interval]) -> list[Interval]:
    """``interval`` minus every hole, as sorted, disjoint, non-empty intervals."""
    pieces = [interval] if interval[0] < interval[1] else []
    for hole_start, hole_end in holes:
        if hole_end <= hole_start:
            continue  # a closure that lies wholly in a spring-forward gap closes nothing
        remaining: list[Interval] = []
        for start, end in pieces:
            if hole_end <= start or end <= hole_start:
                remaining.append((start, end))
                continue
            if start < hole_start:
                remaining.append((start, hole_start))
            if hole_end < end:
                remaining.append((hole_end, end))
        pieces = remaining
    return pieces


class _SeatUsage:
    """Seats taken over time by buffered busy periods, as a step function built by one sweep."""

    def __init__(self, busy: Sequence[Busy], before: timedelta, after: timedelta) -> None:
        changes: dict[datetime, int] = defaultdict(int)
        for entry in busy:
            start = entry.start.astimezone(UTC).replace(tzinfo=None)
            end = entry.end.astimezone(UTC).replace(tzinfo=None)
            changes[start - before] += entry.seats
            changes[end + after] -= entry.seats
        self._times: list[datetime] = []
        self._levels: list[int] = []  # seats taken on [times[i], times[i + 1])
        level = 0
        for moment in sorted(changes):
            level += changes[moment]
            self._times.append(moment)
            self._levels.append(level)

    def most_seats(self, start: datetime, end: datetime) -> int:
        """The most seats taken at any instant of ``[start, end)``."""
        index = bisect_right(self._times, start) - 1
        most = self._levels[index] if index >= 0 else 0
        index += 1
        while index < len(self._times) and self._times[index] < end:
            most = max(most, self._levels[index])
            index += 1
        return most
