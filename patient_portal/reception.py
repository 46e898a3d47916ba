"""The reception list, live: a server-sent event stream per clinic, and telling it of changes.

Consult rooms (patient_portal/consults.py), status changes, bookings, cancellations and
reschedules publish ``{"appointment": id}`` on the clinic's reception channel; an open list
(``/staff/schedule``, reception.js) hears it through :func:`reception_stream` and fetches its rows
again. Nothing about the patient travels on the channel or the stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from datetime import timedelta
from typing import Final

import anyio
from starlette.responses import StreamingResponse
from starlette.types import Send

from booking.models import Appointment
from patient_portal import consults
from patient_portal.pubsub import Message, PubSub

logger = logging.getLogger(__name__)

# A comment this often keeps proxies from closing a quiet stream, and checks the caller is still
# signed in. After STREAM_SECONDS the stream ends and the browser reconnects by itself, so that
# no stream holds a server's restart for long. Tests shorten both.
HEARTBEAT_SECONDS = 15.0
STREAM_SECONDS = 300.0
RETRY_MILLISECONDS: Final = 3000
# The page stops listening this long before an idle staff session would end: refreshing on
# every change must not keep a shared PC signed in for nobody (any key or click resumes it).
LIVE_PAUSE_MARGIN: Final = timedelta(minutes=5)


def _event(name: str, data: dict[str, str]) -> str:
    return f"event: {name}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


async def _next_message(messages: AsyncIterator[Message]) -> Message | None:
    return await anext(messages, None)


async def reception_stream(
    pubsub: PubSub,
    channel: str,
    still_allowed: Callable[[], Awaitable[bool]],
    *,
    heartbeat: float,
    lifetime: float,
) -> AsyncGenerator[str, None]:
    """The text of a reception list's event stream: ``ready`` once subscribed to ``channel``,
    then ``change`` with only the appointment id for each of its messages, a comment every
    ``heartbeat`` seconds, and ``bye`` after ``lifetime`` seconds. It ends early when
    ``still_allowed()`` (asked at each heartbeat) is false or the subscription fails. The
    caller must close it (``aclose``) if it stops iterating early: that unsubscribes."""
    loop = asyncio.get_running_loop()
    closes_at = loop.time() + lifetime
    check_at = loop.time() + heartbeat
    subscription = pubsub.subscribe(channel)
    try:
        messages = await subscription.__aenter__()
    except Exception as error:  # the broker's own errors: the browser retries
        logger.warning("reception: cannot subscribe (%s)", type(error).__name__)
        return
    waiting: asyncio.Task[Message | None] | None = None
    try:
        yield f"retry: {RETRY_MILLISECONDS}\n" + _event("ready", {})
        while True:
            if loop.time() >= closes_at:
                yield _event("bye", {})
                return
            if loop.time() >= check_at:
                if not await still_allowed():
                    return
                yield ": still here\n\n"
                check_at = loop.time() + heartbeat
            if waiting is None:
                waiting = asyncio.create_task(_next_message(messages), name="reception-next")
            done, _ = await asyncio.wait({waiting}, timeout=min(check_at, closes_at) - loop.time())
            if waiting in done:
                finished, waiting = waiting, None
                try:
                    message = finished.result()
                except Exception as error:  # the broker went away: the browser reconnects
                    logger.warning("reception: the subscription failed (%s)", type(error).__name__)
                    return
                if message is None:
                    return
                appointment = message.get("appointment")
                changed = {"appointment": appointment[:64]} if isinstance(appointment, str) else {}
                yield _event("change", changed)
    finally:
        with anyio.CancelScope(shield=True):
            if waiting is not None:
                waiting.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await waiting
            await subscription.__aexit__(None, None, None)


class EventStream(StreamingResponse):
    """A ``text/event-stream`` response that always closes its generator when the response
    ends — the client went away, the server cancelled it, or the stream finished."""

    media_type = "text/event-stream"

    def __init__(self, events: AsyncGenerator[str, None]) -> None:
        super().__init__(events, headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})
        self.events = events

    async def stream_response(self, send: Send) -> None:
        try:
            await super().stream_response(send)
        finally:
            with anyio.CancelScope(shield=True):
                await self.events.aclose()


async def tell(pubsub: PubSub, *appointments: Appointment) -> None:
    """Let the clinic's open reception lists know these appointments changed. Best effort: the
    change is stored already, and a list that misses it shows it at the next change or reload."""
    for appointment in appointments:
        clinic_id = str(appointment.clinic_id)  # type: ignore[attr-defined]
        try:
            await pubsub.publish(
                consults.reception_channel(clinic_id), {"appointment": str(appointment.id)}
            )
        except Exception as error:  # the broker's own errors must not fail a stored change
            logger.warning(
                "reception: not told of appointment %s (%s)", appointment.id, type(error).__name__
            )
