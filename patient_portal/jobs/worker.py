"""Composition of the job subsystem from settings: which queue, which runner.

``run_worker`` is ``tsunagu worker``. ``running_jobs`` is for the app lifespan: it yields the
queue request handlers enqueue on and, with the embedded (in-process) runner, runs jobs in the
app process until the block ends.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager, suppress

from patient_portal.db import database
from patient_portal.jobs.arq_queue import ArqJobQueue, build_worker
from patient_portal.jobs.housekeeping import schedule_housekeeping
from patient_portal.jobs.inprocess import DatabaseJobQueue, InProcessRunner
from patient_portal.jobs.queue import JobQueue
from patient_portal.jobs.spec import Clock, JobRegistry, utc_now
from patient_portal.settings import JobRunner, Settings

logger = logging.getLogger(__name__)


def _redis_url(settings: Settings) -> str:
    if settings.redis_url is None:  # load_settings refuses this; a hand-built Settings may not
        raise ValueError("the redis job runner needs settings.redis_url")
    return settings.redis_url.reveal()


def build_job_queue(
    settings: Settings,
    registry: JobRegistry,
    *,
    notify: InProcessRunner | None = None,
    clock: Clock = utc_now,
) -> DatabaseJobQueue | ArqJobQueue:
    """The queue ``settings`` ask for; ``await queue.close()`` when done.

    ``notify``: the in-process runner of this process, woken on each enqueue.
    """
    if settings.job_runner is JobRunner.REDIS:
        return ArqJobQueue(_redis_url(settings), registry, clock=clock)
    return DatabaseJobQueue(registry, clock=clock, notify=notify.wake if notify else None)


@asynccontextmanager
async def running_jobs(
    settings: Settings, registry: JobRegistry, *, clock: Clock = utc_now
) -> AsyncIterator[JobQueue]:
    """For the app lifespan, inside ``database(settings)``: yields the queue; with the in-process
    runner also runs due jobs in the background, and on exit waits for the job running then.
    ``clock`` is the app's (tests move it to bring scheduled jobs due)."""
    runner = (
        InProcessRunner(registry, clock=clock)
        if settings.job_runner is JobRunner.INPROCESS
        else None
    )
    queue = build_job_queue(settings, registry, notify=runner, clock=clock)
    if runner is not None:
        runner.start()
    try:
        yield queue
    finally:
        if runner is not None:
            await runner.stop()
        await queue.close()


async def run_worker(
    settings: Settings,
    registry: JobRegistry,
    *,
    handle_signals: bool = True,
    on_queue: Callable[[JobQueue], None] | None = None,
) -> None:
    """Run jobs until SIGTERM or SIGINT (with ``handle_signals``) or until cancelled.

    Opens the database itself: failures of Redis jobs are recorded there. With the redis runner
    this is an arq worker; jobs running at shutdown are cancelled and arq runs them again. With
    the in-process runner the job running at shutdown is allowed to finish. ``on_queue`` receives
    the worker's own queue, open while it runs (for jobs that enqueue follow-up jobs).
    """
    async with database(settings):
        queue = build_job_queue(settings, registry)
        try:
            await schedule_housekeeping(queue, registry, utc_now())
            if on_queue is not None:
                on_queue(queue)
            stop = asyncio.Event()
            with _set_on_signals(stop, enabled=handle_signals):
                if settings.job_runner is JobRunner.REDIS:
                    await _run_arq(_redis_url(settings), registry, stop)
                else:
                    await _run_inprocess(registry, stop)
        finally:
            await queue.close()


async def _run_inprocess(registry: JobRegistry, stop: asyncio.Event) -> None:
    runner = InProcessRunner(registry)
    runner.start()
    logger.info("in-process job runner started (%d job kinds)", len(registry))
    try:
        await stop.wait()
    finally:
        await runner.stop()
        logger.info("in-process job runner stopped")


async def _run_arq(redis_url: str, registry: JobRegistry, stop: asyncio.Event) -> None:
    worker = build_worker(registry, redis_url)
    running = asyncio.create_task(worker.async_run())
    stopping = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait({running, stopping}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopping.cancel()
        await worker.close()
        with suppress(asyncio.CancelledError):
            await running
    # Re-raises why the worker ended by itself (e.g. Redis unreachable at start).


@contextmanager
def _set_on_signals(event: asyncio.Event, *, enabled: bool) -> Iterator[None]:
    loop = asyncio.get_running_loop()
    installed: list[signal.Signals] = []
    if enabled:
        for signum in (signal.SIGTERM, signal.SIGINT):
            try:
                loop.add_signal_handler(signum, event.set)
            except (NotImplementedError, RuntimeError, ValueError):  # Windows, or not main thread
                continue
            installed.append(signum)
    try:
        yield
    finally:
        for signum in installed:
            loop.remove_signal_handler(signum)
