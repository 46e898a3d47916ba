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


async def test_daily_maintenance_purges_expired_sign_in_data_and_old_audit_entries(
    db: Settings,
) -> None:
    from datetime import timedelta

    from patient_portal.audit.models import Outcome
    from patient_portal.audit.service import AuditEvent, AuditLog
    from patient_portal.auth.models import OtpChallenge
    from patient_portal.jobs import DatabaseJobQueue, InProcessRunner
    from patient_portal.maintenance import product_registry

    now = utc_now()
    log = AuditLog()
    await log.record(
        AuditEvent("auth.sign_in", Outcome.SUCCESS, "system"), now=now - timedelta(days=3000)
    )
    await log.record(AuditEvent("auth.sign_in", Outcome.SUCCESS, "system"), now=now)
    await OtpChallenge.create(
        phone_index="x" * 64,
        code_hash="y" * 64,
        created_at=now - timedelta(days=3),
        expires_at=now - timedelta(days=3),
    )
    from patient_portal.notify import Composite

    registry = product_registry(db, Composite())
    queue = DatabaseJobQueue(registry)
    from patient_portal.maintenance import schedule_daily

    await schedule_daily(queue, registry, db, now)
    later = now + timedelta(minutes=1)
    assert await InProcessRunner(registry, clock=lambda: later).run_due() == 3
    assert await OtpChallenge.all().count() == 0
    report = await log.verify()
    assert report.ok
    assert report.entries == 1
    assert await JobRecord.filter(status=JobStatus.FAILED).count() == 0
