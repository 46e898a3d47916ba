"""The one interface the rest of Tsunagu uses to ask for background work."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Protocol


class JobQueue(Protocol):
    """Somewhere to put jobs; a runner elsewhere takes them out.

    ``enqueue`` returns the job's id once the job is stored durably (database row or Redis key),
    so a job enqueued before a crash or restart still runs. ``run_at`` (timezone-aware) defers
    the job; ``None`` means as soon as possible. Enqueueing a ``key`` that is already queued
    returns the first job's id and stores nothing new. Raises :class:`~.spec.UnknownJob`,
    :class:`~.spec.InvalidPayload` or :class:`~.spec.InvalidSchedule` for a bad request.
    """

    async def enqueue(
        self,
        name: str,
        payload: Mapping[str, Any],
        *,
        run_at: datetime | None = None,
        key: str | None = None,
    ) -> str: ...
