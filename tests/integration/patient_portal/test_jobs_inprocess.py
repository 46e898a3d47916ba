"""The embedded runner against a real database: claims, retries, failures, leases, restarts."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from patient_portal.db import database
from patient_portal.jobs import (
    DatabaseJobQueue,
    InProcessRunner,
    JobContext,
    JobRegistry,
    JobSpec,
    default_registry,
    run_worker,
    running_jobs,
)
from patient_portal.jobs.housekeeping import PURGE_FINISHED_JOBS
from patient_portal.jobs.models import JobRecord, JobStatus
from patient_portal.settings import Settings

START = datetime(2030, 4, 1, 9, 0, tzinfo=UTC)
PHONE = "090-1234-5678"
SECRET = f"患者 山田花子 {PHONE}"


@dataclass
class Clock:
    """The time, moved by the test."""

    now: datetime = START

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


@dataclass
class Recorder:
    """A handler that remembers its calls and fails its first ``failures`` runs."""

    failures: int = 0
    error: type[Exception] = RuntimeError
    calls: list[tuple[dict[str, Any], JobContext]] = field(default_factory=list)

    async def __call__(self, payload: dict[str, Any], ctx: JobContext) -> None:
        self.calls.append((payload, ctx))
        await asyncio.sleep(0)  # let a racing runner in
        if len(self.calls) <= self.failures:
            raise self.error("flaky")

    @property
    def attempts(self) -> list[int]:
        return [ctx.attempt for _, ctx in self.calls]


def setup(
    handler: Recorder, *, max_attempts: int = 5, timeout: float = 10
) -> tuple[Clock, DatabaseJobQueue, InProcessRunner]:
    registry = JobRegistry()
    registry.register(JobSpec("remind", handler, max_attempts=max_attempts, timeout=timeout))
    clock = Clock()
    return clock, DatabaseJobQueue(registry, clock=clock), InProcessRunner(registry, clock=clock)


async def test_a_job_runs_once_and_is_marked_succeeded(db: Settings) -> None:
    handler = Recorder()
    _, queue, runner = setup(handler)

    job_id = await queue.enqueue("remind", {"booking_id": 7})

    assert await runner.run_due() == 1
    assert await runner.run_due() == 0
    [(payload, ctx)] = handler.calls
    assert payload == {"booking_id": 7}
    assert (ctx.job_id, ctx.attempt, ctx.now) == (job_id, 1, START)
    row = await JobRecord.get(id=job_id)
    assert (row.status, row.attempts, row.finished_at, row.last_error) == (
        JobStatus.SUCCEEDED,
        1,
        START,
        "",
    )
    assert row.lease_until is None


async def test_a_failed_run_is_retried_with_backoff_until_it_succeeds(db: Settings) -> None:
    handler = Recorder(failures=2)
    clock, queue, runner = setup(handler)
    job_id = await queue.enqueue("remind", {"booking_id": 7})

    assert await runner.run_due() == 1
    row = await JobRecord.get(id=job_id)
    assert (row.status, row.attempts, row.last_error) == (
        JobStatus.PENDING,
        1,
        "RuntimeError: flaky",
    )
    assert row.run_at == START + timedelta(seconds=10)

    clock.advance(timedelta(seconds=9))
    assert await runner.run_due() == 0
    clock.advance(timedelta(seconds=1))
    assert await runner.run_due() == 1
    row = await JobRecord.get(id=job_id)
    assert row.run_at == clock.now + timedelta(seconds=20)

    clock.advance(timedelta(seconds=20))
    assert await runner.run_due() == 1
    row = await JobRecord.get(id=job_id)
    assert (row.status, row.attempts) == (JobStatus.SUCCEEDED, 3)
    assert handler.attempts == [1, 2, 3]


async def test_a_job_that_keeps_failing_is_recorded_as_failed_not_dropped(
    db: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="patient_portal")  # the drivers log SQL parameters
    handler = Recorder(failures=99, error=ValueError)
    clock, queue, runner = setup(handler, max_attempts=3)
    job_id = await queue.enqueue("remind", {"note": SECRET})

    for _ in range(10):
        await runner.run_due()
        clock.advance(timedelta(hours=1))

    row = await JobRecord.get(id=job_id)
    assert (row.status, row.attempts, row.last_error) == (JobStatus.FAILED, 3, "ValueError: flaky")
    assert row.payload == {"note": SECRET}
    assert row.finished_at is not None
    assert handler.attempts == [1, 2, 3]
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 3
    assert all(job_id in r.getMessage() and "remind" in r.getMessage() for r in errors)
    assert "failed for good" in errors[-1].getMessage()
    assert "山田" not in caplog.text
    assert PHONE not in caplog.text


async def test_a_run_past_its_timeout_fails_with_a_timeout_error(db: Settings) -> None:
    registry = JobRegistry()

    @registry.job("slow", max_attempts=1, timeout=0.01)
    async def slow(payload: dict[str, Any], ctx: JobContext) -> None:
        await asyncio.sleep(30)

    clock = Clock()
    job_id = await DatabaseJobQueue(registry, clock=clock).enqueue("slow", {})
    assert await InProcessRunner(registry, clock=clock).run_due() == 1
    row = await JobRecord.get(id=job_id)
    assert (row.status, row.last_error) == (JobStatus.FAILED, "TimeoutError: ran longer than 0.01s")


async def test_a_key_makes_enqueueing_idempotent(db: Settings) -> None:
    handler = Recorder()
    _, queue, runner = setup(handler)

    first = await queue.enqueue("remind", {"booking_id": 7}, key="remind:7")
    again = await queue.enqueue("remind", {"booking_id": 7}, key="remind:7")
    other = await queue.enqueue("remind", {"booking_id": 8}, key="remind:8")

    assert first == again != other
    assert await JobRecord.all().count() == 2
    assert await runner.run_due() == 2
    assert await queue.enqueue("remind", {"booking_id": 7}, key="remind:7") == first
    assert await runner.run_due() == 0


async def test_a_scheduled_job_survives_a_restart(settings: Settings) -> None:
    handler = Recorder()
    _, queue, runner = setup(handler)
    tomorrow = datetime(2030, 4, 3, 3, 0, tzinfo=ZoneInfo("Asia/Tokyo"))  # 18:00 UTC

    async with database(settings):
        job_id = await queue.enqueue("remind", {"booking_id": 7}, run_at=tomorrow)
        assert await runner.run_due() == 0
    del runner, queue  # the process ends

    clock, _, fresh_runner = setup(handler)
    clock.advance(tomorrow - START)
    async with database(settings):
        assert await fresh_runner.run_due() == 1
        row = await JobRecord.get(id=job_id)
    assert row.status is JobStatus.SUCCEEDED
    assert [ctx.now for _, ctx in handler.calls] == [tomorrow]


async def crash_mid_job(runner: InProcessRunner, started: asyncio.Event) -> None:
    """Run ``runner`` until its handler has started, then kill it like a dying process."""
    task = asyncio.create_task(runner.run_due())
    async with asyncio.timeout(5):
        await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_a_job_whose_lease_expired_is_taken_back(db: Settings) -> None:
    started = asyncio.Event()
    calls: list[int] = []

    async def hangs_the_first_time(payload: dict[str, Any], ctx: JobContext) -> None:
        calls.append(ctx.attempt)
        if ctx.attempt == 1:
            started.set()
            await asyncio.Event().wait()

    registry = JobRegistry()
    registry.register(JobSpec("remind", hangs_the_first_time, timeout=60))
    clock = Clock()
    job_id = await DatabaseJobQueue(registry, clock=clock).enqueue("remind", {})
    await crash_mid_job(InProcessRunner(registry, clock=clock), started)
    row = await JobRecord.get(id=job_id)
    assert row.status is JobStatus.RUNNING
    assert row.lease_until == START + timedelta(seconds=60 + 60)

    other = InProcessRunner(registry, clock=clock)
    clock.advance(timedelta(seconds=119))
    assert await other.run_due() == 0  # the lease still holds
    clock.advance(timedelta(seconds=2))
    assert await other.run_due() == 1

    row = await JobRecord.get(id=job_id)
    assert (row.status, row.attempts) == (JobStatus.SUCCEEDED, 2)
    assert calls == [1, 2]


async def test_a_job_that_crashed_on_its_last_attempt_is_recorded_as_failed(db: Settings) -> None:
    started = asyncio.Event()

    async def hangs(payload: dict[str, Any], ctx: JobContext) -> None:
        started.set()
        await asyncio.Event().wait()

    registry = JobRegistry()
    registry.register(JobSpec("remind", hangs, max_attempts=1, timeout=60))
    clock = Clock()
    job_id = await DatabaseJobQueue(registry, clock=clock).enqueue("remind", {})
    await crash_mid_job(InProcessRunner(registry, clock=clock), started)

    clock.advance(timedelta(hours=1))
    other = InProcessRunner(registry, clock=clock)
    assert await other.recover_expired() == 1
    row = await JobRecord.get(id=job_id)
    assert (row.status, row.attempts) == (JobStatus.FAILED, 1)
    assert row.last_error.startswith("LeaseExpired")


async def test_two_runners_racing_run_each_job_once(db: Settings) -> None:
    handler = Recorder()
    registry = JobRegistry()
    registry.register(JobSpec("remind", handler))
    clock = Clock()
    queue = DatabaseJobQueue(registry, clock=clock)
    first, second = (InProcessRunner(registry, clock=clock) for _ in range(2))

    one = await queue.enqueue("remind", {"n": 0})
    ran = await asyncio.gather(first.run_due(), second.run_due())
    assert sum(ran) == 1
    assert [ctx.job_id for _, ctx in handler.calls] == [one]

    ids = [await queue.enqueue("remind", {"n": n}) for n in range(1, 21)]
    ran_many = await asyncio.gather(first.run_due(), second.run_due(), first.run_due())
    assert sum(ran_many) == 20
    assert Counter(ctx.job_id for _, ctx in handler.calls[1:]) == Counter(ids)
    assert await JobRecord.filter(status=JobStatus.SUCCEEDED).count() == 21


async def test_the_background_loop_is_woken_by_enqueue_and_stop_waits(db: Settings) -> None:
    entered, release = asyncio.Event(), asyncio.Event()
    done: list[str] = []

    async def remind(payload: dict[str, Any], ctx: JobContext) -> None:
        entered.set()
        await release.wait()
        done.append(ctx.job_id)

    registry = JobRegistry()
    registry.register(JobSpec("remind", remind))
    runner = InProcessRunner(registry, poll_interval=3600)  # only a wake-up can start the job
    queue = DatabaseJobQueue(registry, notify=runner.wake)
    runner.start()
    await asyncio.sleep(0)  # the loop's first look finds nothing and waits

    job_id = await queue.enqueue("remind", {})
    async with asyncio.timeout(5):
        await entered.wait()
    stopping = asyncio.create_task(runner.stop())
    await asyncio.sleep(0.01)
    assert not stopping.done()  # the job is still running
    release.set()
    async with asyncio.timeout(5):
        await stopping
    assert done == [job_id]
    assert (await JobRecord.get(id=job_id)).status is JobStatus.SUCCEEDED


async def test_purge_finished_jobs_deletes_only_old_successes(db: Settings) -> None:
    registry = default_registry()
    clock = Clock()
    old, recent = START - timedelta(days=31), START - timedelta(days=29)
    rows = {
        (status, finished): await JobRecord.create(
            name="remind",
            payload={},
            status=status,
            run_at=finished,
            max_attempts=1,
            finished_at=finished,
        )
        for status in (JobStatus.SUCCEEDED, JobStatus.FAILED)
        for finished in (old, recent)
    }
    await DatabaseJobQueue(registry, clock=clock).enqueue(PURGE_FINISHED_JOBS, {})

    assert await InProcessRunner(registry, clock=clock).run_due() == 1

    remaining = set(await JobRecord.filter(name="remind").values_list("id", flat=True))
    assert remaining == {
        rows[JobStatus.SUCCEEDED, recent].id,
        rows[JobStatus.FAILED, old].id,
        rows[JobStatus.FAILED, recent].id,
    }


async def test_run_worker_runs_in_process_jobs_until_cancelled(settings: Settings) -> None:
    ran = asyncio.Event()

    async def remind(payload: dict[str, Any], ctx: JobContext) -> None:
        ran.set()

    registry = JobRegistry()
    registry.register(JobSpec("remind", remind))
    async with database(settings):
        job_id = await DatabaseJobQueue(registry).enqueue("remind", {})

    worker = asyncio.create_task(run_worker(settings, registry, handle_signals=False))
    async with asyncio.timeout(10):
        await ran.wait()
    worker.cancel()
    with pytest.raises(asyncio.CancelledError):
        await worker

    async with database(settings):
        assert (await JobRecord.get(id=job_id)).status is JobStatus.SUCCEEDED


async def test_running_jobs_runs_enqueued_jobs_in_the_app_process(db: Settings) -> None:
    ran = asyncio.Event()

    async def remind(payload: dict[str, Any], ctx: JobContext) -> None:
        ran.set()

    registry = JobRegistry()
    registry.register(JobSpec("remind", remind))
    async with running_jobs(db, registry) as queue:
        assert isinstance(queue, DatabaseJobQueue)
        job_id = await queue.enqueue("remind", {})
        async with asyncio.timeout(5):
            await ran.wait()
    assert (await JobRecord.get(id=job_id)).status is JobStatus.SUCCEEDED
