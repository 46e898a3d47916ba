"""A clock tests move by hand: time is injected, never slept on."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


class FakeClock:
    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta | None = None, **parts: float) -> None:
        """Move on by ``delta`` or by keyword parts (``advance(minutes=5)``)."""
        self.now += (delta or timedelta()) + timedelta(**parts)
