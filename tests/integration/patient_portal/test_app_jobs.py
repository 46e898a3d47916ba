"""The portal process itself runs jobs in the embedded default, starting with its housekeeping."""

from __future__ import annotations

import asyncio

from patient_portal.app import create_app
from patient_portal.jobs import utc_now
from patient_portal.jobs.models import JobRecord, JobStatus
from patient_portal.settings import Settings


async def test_starting_the_portal_schedules_and_runs_todays_housekeeping(
    settings: Settings,
) -> None:
    app = create_app(settings)
    key = f"purge_finished_jobs:{utc_now().date()}"
    async with app.router.lifespan_context(app):
        async with asyncio.timeout(10):
            while True:  # polling the database; bounded by the timeout
                record = await JobRecord.get_or_none(key=key)
                if record is not None and record.status is JobStatus.SUCCEEDED:
                    break
                await asyncio.sleep(0.05)
        assert record.attempts == 1
    # A second start the same day adds nothing.
    async with app.router.lifespan_context(app):
        assert await JobRecord.filter(key=key).count() == 1
