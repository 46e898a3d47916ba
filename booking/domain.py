"""Value objects of booking: opening hours, date exceptions, slot rules, busy periods and slots.

Everything here is a frozen dataclass that checks itself on construction and raises
:class:`~booking.errors.BookingRuleError` when a value breaks a rule. Wall-clock values (``time``)
are naive and mean local time in the clinic's zone; instants (``datetime``) must be aware.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from booking.errors import BookingRuleError

_ZERO = timedelta(0)


def _check_wall_range(start: time, end: time) -> None:
    if start.tzinfo is not None or end.tzinfo is not None:
        raise BookingRuleError("opening times are wall-clock times and must be naive")
    if not start < end:
        raise BookingRuleError("a time range must end after it starts (no overnight ranges)")


def _check_instants(start: datetime, end: datetime) -> None:
    start_offset, end_offset = start.utcoffset(), end.utcoffset()
    if start_offset is None or end_offset is None:
        raise BookingRuleError("instants must be aware datetimes")
    # Two datetimes sharing a tzinfo compare by wall clock, which is wrong when their offsets
    # differ (across a fall-back transition): compare those in UTC.
    if start.tzinfo is end.tzinfo and start_offset != end_offset:
        in_order = start.astimezone(UTC) < end.astimezone(UTC)
    else:
        in_order = start < end
    if not in_order:
        raise BookingRuleError("a period must end after it starts")


@dataclass(frozen=True, slots=True)
class WeeklyRange:
    """Regular opening hours: every ``weekday`` (0 = Monday … 6 = Sunday) from ``start`` to ``end``.

    A day may have several ranges (9:00–12:30 and 15:00–18:30, closed for lunch). Ranges that
    overlap or touch are treated as one.
    """

    weekday: int
    start: time
    end: time

    def __post_init__(self) -> None:
        if not 0 <= self.weekday <= 6:
            raise BookingRuleError("weekday must be 0 (Monday) to 6 (Sunday)")
        _check_wall_range(self.start, self.end)


@dataclass(frozen=True, slots=True)
class DateException:
    """A change to the hours of one calendar day.

    - ``closed`` without times: the whole day is closed (wins over everything else that day);
    - ``closed`` with times: that range is closed (a doctor's leave for the afternoon);
    - not ``closed``, with times: extra opening hours that day (also opens a public holiday).
    """

    day: date
    closed: bool
    start: time | None = None
    end: time | None = None

    def __post_init__(self) -> None:
        if (self.start is None) != (self.end is None):
            raise BookingRuleError("give both start and end, or neither")
        if self.start is not None and self.end is not None:
            _check_wall_range(self.start, self.end)
        elif not self.closed:
            raise BookingRuleError("extra opening hours need a start and an end")

    @property
    def is_whole_day_closed(self) -> bool:
        return self.closed and self.start is None


@dataclass(frozen=True, slots=True)
class SlotRules:
    """How a menu's slots are laid out and how far ahead they can be booked.

    ``capacity`` is the number of seats per slot (patients seen at once). A slot starts on a grid
    of ``step`` (default: ``duration``) from the start of each opening range. ``buffer_before``
    and ``buffer_after`` are preparation and clean-up time: an appointment occupies
    ``[start - buffer_before, end + buffer_after)``. ``min_notice`` is the least time between
    ``now`` and a slot's start; ``max_days_ahead`` the last bookable calendar day counted from
    today in the clinic's zone (0 = today only). Public holidays are closed unless
    ``open_on_holidays``.
    """

    duration: timedelta
    capacity: int = 1
    min_notice: timedelta = _ZERO
    max_days_ahead: int = 60
    buffer_before: timedelta = _ZERO
    buffer_after: timedelta = _ZERO
    step: timedelta | None = None
    open_on_holidays: bool = False

    def __post_init__(self) -> None:
        if self.duration <= _ZERO:
            raise BookingRuleError("duration must be positive")
        if self.capacity < 1:
            raise BookingRuleError("capacity must be at least 1")
        if self.min_notice < _ZERO:
            raise BookingRuleError("min_notice must not be negative")
        if self.max_days_ahead < 0:
            raise BookingRuleError("max_days_ahead must not be negative")
        if self.buffer_before < _ZERO or self.buffer_after < _ZERO:
            raise BookingRuleError("buffers must not be negative")
        if self.step is not None and self.step <= _ZERO:
            raise BookingRuleError("step must be positive")

    @property
    def grid_step(self) -> timedelta:
        """The spacing of slot starts: ``step`` when set, else ``duration``."""
        return self.duration if self.step is None else self.step


@dataclass(frozen=True, slots=True)
class Busy:
    """Seats taken from ``start`` to ``end``: an existing appointment or a live hold.

    The times are the appointment's own, WITHOUT buffers: :func:`booking.availability.free_slots`
    adds the menu's buffers itself.
    """

    start: datetime
    end: datetime
    seats: int = 1

    def __post_init__(self) -> None:
        _check_instants(self.start, self.end)
        if self.seats < 1:
            raise BookingRuleError("a busy period takes at least one seat")


@dataclass(frozen=True, slots=True)
class Slot:
    """A bookable slot: aware ``start`` and ``end`` in the clinic's zone, and its free seats."""

    start: datetime
    end: datetime
    free_seats: int

    def __post_init__(self) -> None:
        _check_instants(self.start, self.end)
        if self.free_seats < 1:
            raise BookingRuleError("a free slot has at least one free seat")
