"""Consented recordings of online consults, sealed at rest and shown to the clinic only.

The room decides when recording may run (:mod:`video.room`: everyone in the call consented);
this module carries it out in the portal:

- **Start.** When the room says ``recording: on``, each browser in the call posts a send-only
  offer (``POST /api/v1/consults/{id}/recording``); the worker that gets it answers with a
  :class:`video.recording.RecorderSession` writing into a :class:`SealedWriter`, so the WebM
  never reaches the disk unencrypted. One :class:`ConsultRecording` row per participant and
  segment tells where it is and how it ended.
- **Stop.** When the room switches recording off (a stop, a refusal, someone leaving, the end),
  the hub publishes ``{"off": segment}`` on the appointment's recording channel; whichever worker
  holds a recorder of that appointment stops it. A recorder also stops by itself when the
  browser goes away, and after ``recording_max_minutes``.
- **Keep.** Consent decisions are kept as :class:`RecordingConsent` rows (the hub writes them).
  Files live under ``<recordings dir>/<clinic id>/<recording id>.sealed``, each sealed with its
  own data key bound to its record; reading them is for the clinic's clinical staff, audited
  (``patient_portal/views/recordings.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

from booking.models import Appointment
from patient_portal import consults
from patient_portal.crypto.keyring import current_keyring
from patient_portal.crypto.sealed_files import SealedWriter, read_sealed
from patient_portal.pubsub import PubSub
from video import room as rooms
from video.models import ConsultRecording
from video.recording import InvalidOffer, RecorderBusy, RecorderService, RecorderSession

logger = logging.getLogger(__name__)

SUFFIX: Final = ".sealed"


class NotRecording(Exception):
    """The room is not recording (now, or this segment), or the caller is not in the call."""


def context_of(recording_id: str) -> str:
    """What a recording's file is sealed for: another record's file does not open in its place."""
    return f"recording:{recording_id}"


def path_of(root: Path, recording: ConsultRecording) -> Path:
    return root / str(recording.clinic_id) / f"{recording.id}{SUFFIX}"


def may_record(state: rooms.RoomState | None, participant: str, segment: int) -> bool:
    """Whether ``participant`` may send their media to a recorder for ``segment`` now."""
    if state is None or state.recording.mode != "on" or state.recording.segment != segment:
        return False
    me = state.participant(participant)
    return me is not None and me.status in rooms.IN_CONSULT


@dataclass
class Recordings:
    """The recorders of this worker and where their files go."""

    service: RecorderService
    pubsub: PubSub
    root: Path
    clock: Callable[[], datetime]
    tasks: set[asyncio.Task[None]] = field(default_factory=set)

    async def start(
        self, seat: consults.Seat, segment: int, offer_sdp: str
    ) -> tuple[ConsultRecording, str]:
        """Answer the participant's offer and record; :class:`NotRecording`,
        :class:`~video.recording.RecorderBusy` or :class:`~video.recording.InvalidOffer`
        leave nothing behind (no row, no file)."""
        stack = AsyncExitStack()
        # Listen for "off" before looking at the room, so a stop in between is not missed.
        messages = await stack.enter_async_context(
            self.pubsub.subscribe(consults.recording_channel(seat.appointment_id))
        )
        row: ConsultRecording | None = None
        session: RecorderSession | None = None
        try:
            if not may_record(
                await consults.room_state(seat.appointment_id), seat.participant, segment
            ):
                raise NotRecording
            row = await ConsultRecording.create(
                appointment_id=seat.appointment_id,
                clinic_id=seat.clinic_id,
                participant=seat.participant,
                segment=segment,
                started_at=self.clock().astimezone(UTC),
            )
            path = path_of(self.root, row)
            sink = SealedWriter(path, current_keyring(), context_of(str(row.id)))
            try:
                session = self.service.open(sink)
            except RecorderBusy:
                sink.close()
                raise
            answer = await session.answer(offer_sdp)
        except (NotRecording, RecorderBusy, InvalidOffer):
            if session is not None:
                await session.stop("failed")
            if row is not None:
                path_of(self.root, row).unlink(missing_ok=True)
                await row.delete()
            await stack.aclose()
            raise
        except BaseException:
            await stack.aclose()
            raise
        task = asyncio.create_task(self._keep(row, session, stack, messages))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return row, answer

    async def _keep(
        self,
        row: ConsultRecording,
        session: RecorderSession,
        stack: AsyncExitStack,
        messages: AsyncIterator[dict[str, Any]],
    ) -> None:
        """Until the room says off or the recorder ends by itself; then note how it ended."""
        async with stack:
            told = asyncio.create_task(_switched_off(messages, row.segment))
            ended = asyncio.create_task(session.finished())
            try:
                await asyncio.wait({told, ended}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in (told, ended):
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await task
                summary = await session.stop("stopped")
        path = path_of(self.root, row)
        await ConsultRecording.filter(id=row.id).update(
            status="failed" if summary.reason == "failed" else "done",
            end_reason=summary.reason,
            ended_at=self.clock().astimezone(UTC),
            seconds=summary.seconds,
            video_frames=summary.video_frames,
            audio_frames=summary.audio_frames,
            width=summary.width,
            height=summary.height,
            file_bytes=path.stat().st_size if path.exists() else 0,
        )
        logger.info(
            "recording %s ended (%s, %.0f s, %d video frames, %d dropped)",
            row.id,
            summary.reason,
            summary.seconds,
            summary.video_frames,
            summary.dropped_frames,
        )

    async def mark_interrupted(self) -> int:
        """Recordings still marked as running long after any recorder would have stopped (their
        process died): mark them failed, readable up to their last whole chunk. At start-up."""
        limit = timedelta(seconds=self.service.settings.max_seconds) + timedelta(minutes=5)
        before = self.clock().astimezone(UTC) - limit
        return await ConsultRecording.filter(status="recording", started_at__lt=before).update(
            status="failed", end_reason="interrupted"
        )

    async def close(self) -> None:
        """At shutdown: stop every recorder of this worker and let each note how it ended."""
        await self.service.close_all()
        if self.tasks:
            await asyncio.wait(set(self.tasks), timeout=15)


async def _switched_off(messages: AsyncIterator[dict[str, Any]], segment: int) -> None:
    async for message in messages:
        off = message.get("off")
        if isinstance(off, int) and off >= segment:
            return


async def recorded_consults(clinic_id: str, patient_id: str) -> list[tuple[Appointment, int]]:
    """The patient's consults at this clinic that were recorded (newest first), with how many
    recordings each has: where the clinic finds them after the consult."""
    counts: dict[str, int] = {}
    appointments = {
        str(a.id): a for a in await Appointment.filter(clinic_id=clinic_id, patient_id=patient_id)
    }
    for row in await ConsultRecording.filter(
        clinic_id=clinic_id, appointment_id__in=list(appointments)
    ):
        counts[str(row.appointment_id)] = counts.get(str(row.appointment_id), 0) + 1
    found = [(appointments[key], count) for key, count in counts.items()]
    return sorted(found, key=lambda pair: pair[0].starts_at, reverse=True)


def plaintext(root: Path, recording: ConsultRecording) -> Iterator[bytes]:
    """The recording's WebM, chunk by chunk (authenticated). A recording still running, or one
    whose recorder failed, is read up to its last whole chunk.
    :class:`~patient_portal.crypto.sealed_files.SealedFileError` or ``OSError`` if unreadable."""
    return read_sealed(
        path_of(root, recording),
        current_keyring(),
        context_of(str(recording.id)),
        partial=recording.status != "done",
    )
