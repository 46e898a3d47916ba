"""Consented recording (録画): a server-side WebRTC peer that writes one browser's media to a file.

Once everyone in a consult has agreed (:mod:`video.room` decides that), each browser in the call
opens a second, send-only peer connection to the server and offers its camera and microphone;
:class:`RecorderSession` answers and writes the received audio and video, re-encoded as VP8 and
Opus, into one WebM stream. The stream goes to a :class:`RecordingSink` — anything with ``write``
and ``close`` — so the caller decides where the bytes land and how they are sealed; the portal
passes an encrypting writer, and no plaintext is ever written to disk here.

WebM is written without seeking (no cue index; players treat it like a live recording), which is
what lets the sink be a one-way, encrypting stream.

Decoding happens in aiortc on the event loop (it does so for any received track); encoding and
muxing run on one worker thread per session, in arrival order, so a consult's signaling is never
held up by the encoder. If the encoder falls behind by ``max_queued_frames``, video frames are
dropped (and counted) rather than letting memory grow; audio is never dropped.

Timing: each track's first frame is placed at its arrival time since the session began, later
frames by their own timestamps from there, so audio and video stay in step even when one starts
late. The container is started when the first video frame arrives (its size fixes the picture's
size; later frames are scaled to it), or after ``audio_only_after`` seconds of audio alone.

A session ends when the caller stops it (consent withdrawn, consult ended), when no media has
arrived for ``idle_seconds`` (the browser went away), when the connection fails, or after
``max_seconds``. :meth:`RecorderSession.finished` tells the caller it ended by itself.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import time
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Protocol

import av
from aiortc import MediaStreamTrack, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError
from av import AudioFrame, VideoFrame

from video.precall import CLOSE_TIMEOUT, InvalidOffer, parse_offer, rtc_configuration
from video.turn import IceServer

logger = logging.getLogger(__name__)

__all__ = [
    "InvalidOffer",  # the pre-call check's: an offer no server peer takes
    "RecorderBusy",
    "RecorderService",
    "RecorderSession",
    "RecorderSettings",
    "RecordingError",
    "RecordingSink",
    "RecordingSummary",
]

MILLISECONDS = Fraction(1, 1000)
OPUS_RATE = 48_000


class RecordingError(Exception):
    """Base of every error this module raises."""


class RecorderBusy(RecordingError):
    """All recorder slots of this process are taken."""


class RecordingSink(Protocol):
    """Where the WebM bytes go, in order. ``close`` is called once, after the last ``write``."""

    def write(self, data: bytes) -> int: ...

    def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class RecorderSettings:
    """Built once at the composition root. ``ice_servers`` empty: host candidates only."""

    ice_servers: tuple[IceServer, ...] = ()
    max_sessions: int = 8  # per process: two per consult being recorded
    max_seconds: float = 3 * 3600.0
    idle_seconds: float = 20.0
    connect_timeout: float = 15.0
    answer_timeout: float = 10.0  # gathering (STUN/TURN allocations) + answering
    video_bitrate: int = 600_000
    max_width: int = 1280
    max_height: int = 720
    max_queued_frames: int = 90
    audio_only_after: float = 3.0

    def __post_init__(self) -> None:
        if self.max_sessions < 1 or self.max_seconds <= 0 or self.idle_seconds <= 0:
            raise ValueError("max_sessions, max_seconds and idle_seconds must be positive")


@dataclass(frozen=True, slots=True)
class RecordingSummary:
    """What one session wrote. ``reason``: stopped, idle, disconnected, limit, failed."""

    reason: str
    seconds: float
    video_frames: int
    audio_frames: int
    dropped_frames: int
    bytes_written: int
    width: int | None
    height: int | None


def _even(value: int) -> int:
    return max(2, value - value % 2)


def _fit(width: int, height: int, max_width: int, max_height: int) -> tuple[int, int]:
    """The picture's size, scaled down (keeping its shape) to fit, even in both directions."""
    long_side, short_side = max(max_width, max_height), min(max_width, max_height)
    bound_w, bound_h = (long_side, short_side) if width >= height else (short_side, long_side)
    scale = min(1.0, bound_w / width, bound_h / height)
    return _even(round(width * scale)), _even(round(height * scale))


class _CountingSink:
    """Counts what reaches the caller's sink; PyAV sees a one-way stream (no ``seek``)."""

    def __init__(self, sink: RecordingSink) -> None:
        self._sink = sink
        self.written = 0

    def write(self, data: bytes) -> int:
        self._sink.write(bytes(data))
        self.written += len(data)
        return len(data)


@dataclass
class _Muxer:
    """Encoder and WebM muxer; every method runs on the session's one worker thread."""

    sink: _CountingSink
    settings: RecorderSettings
    expects_video: bool
    container: Any = None
    video: Any = None
    audio: Any = None
    pending: list[tuple[str, Any, float]] = field(default_factory=list)
    last_video_ms: int = -1
    next_audio_pts: int = 0
    video_frames: int = 0
    audio_frames: int = 0
    size: tuple[int, int] | None = None

    def write(self, kind: str, frame: Any, at: float) -> None:
        if self.container is None:
            self.pending.append((kind, frame, at))
            if kind == "video" or not self.expects_video or at >= self.settings.audio_only_after:
                self._start(frame if kind == "video" else None)
            return
        self._encode(kind, frame, at)

    def _start(self, first_video: VideoFrame | None) -> None:
        self.container = av.open(self.sink, mode="w", format="webm")
        if first_video is not None:
            s = self.settings
            self.size = _fit(first_video.width, first_video.height, s.max_width, s.max_height)
            video = self.container.add_stream("libvpx", rate=30)
            video.width, video.height = self.size
            video.pix_fmt = "yuv420p"
            video.bit_rate = s.video_bitrate
            video.codec_context.time_base = MILLISECONDS
            video.codec_context.options = {"deadline": "realtime", "cpu-used": "8", "threads": "1"}
            self.video = video
        self.audio = self.container.add_stream("libopus", rate=OPUS_RATE)
        self.audio.codec_context.time_base = Fraction(1, OPUS_RATE)
        pending, self.pending = self.pending, []
        for kind, frame, at in pending:
            self._encode(kind, frame, at)

    def _encode(self, kind: str, frame: Any, at: float) -> None:
        if kind == "video":
            if self.video is None or self.size is None:
                return  # an audio-only recording: the camera came too late
            width, height = self.size
            picture = frame.reformat(width=width, height=height, format="yuv420p")
            pts = max(round(at * 1000), self.last_video_ms + 1)
            picture.pts, picture.time_base = pts, MILLISECONDS
            self.last_video_ms = pts
            packets = self.video.encode(picture)
            self.video_frames += 1
        else:
            # Audio plays back-to-back: a frame that would overlap the last starts where it ended;
            # a gap (lost packets, a pause) is kept as a gap.
            pts = max(round(at * OPUS_RATE), self.next_audio_pts)
            frame.pts, frame.time_base = pts, Fraction(1, OPUS_RATE)
            self.next_audio_pts = pts + frame.samples
            packets = self.audio.encode(frame)
            self.audio_frames += 1
        for packet in packets:
            self.container.mux(packet)

    def close(self) -> None:
        if self.container is None and self.pending:
            first = next((f for k, f, _ in self.pending if k == "video"), None)
            self._start(first)
        if self.container is None:
            return
        for stream in (self.video, self.audio):
            if stream is not None:
                for packet in stream.encode(None):
                    self.container.mux(packet)
        self.container.close()


class RecorderService:
    """The recorder peers of one process, bounded by ``settings.max_sessions``."""

    def __init__(self, settings: RecorderSettings) -> None:
        self.settings = settings
        self._sessions: set[RecorderSession] = set()

    @property
    def active(self) -> int:
        return len(self._sessions)

    def open(self, sink: RecordingSink) -> RecorderSession:
        """A new session writing to ``sink``; :class:`RecorderBusy` when all slots are taken
        (the sink is then left to the caller, untouched)."""
        if len(self._sessions) >= self.settings.max_sessions:
            raise RecorderBusy(f"{self.settings.max_sessions} recordings already running")
        session = RecorderSession(self.settings, sink, self._sessions.discard)
        self._sessions.add(session)
        return session

    async def close_all(self) -> None:
        for session in list(self._sessions):
            await session.stop("stopped")


class RecorderSession:
    """One browser's side of a recording: answer its offer, write what arrives, then stop."""

    def __init__(self, settings: RecorderSettings, sink: RecordingSink, forget: Any) -> None:
        self.settings = settings
        self._sink = sink
        self._counting = _CountingSink(sink)
        self._forget = forget
        self._pc: RTCPeerConnection | None = None
        self._executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="recorder")
        self._muxer: _Muxer | None = None
        self._readers: list[asyncio.Task[None]] = []
        self._queued = 0
        self._dropped = 0
        self._started = time.monotonic()
        self._last_media = self._started
        self._ended = asyncio.Event()
        self._reason = "stopped"
        self._failure: BaseException | None = None
        self._summary: RecordingSummary | None = None
        self._stopping: asyncio.Task[RecordingSummary] | None = None
        self._watchdog: asyncio.Task[None] | None = None

    async def answer(self, offer_sdp: str) -> str:
        """The server's complete answer (every candidate in it) to the browser's offer."""
        if self._pc is not None or self._stopping is not None:
            raise RecordingError("this session has already answered")
        try:
            parse_offer(offer_sdp)
        except InvalidOffer:
            await self.stop("failed")
            raise
        pc = RTCPeerConnection(rtc_configuration(self.settings.ice_servers))
        self._pc = pc
        tracks: list[MediaStreamTrack] = []
        pc.on("track", tracks.append)
        try:
            async with asyncio.timeout(self.settings.answer_timeout):
                await pc.setRemoteDescription(RTCSessionDescription(offer_sdp, "offer"))
                for transceiver in pc.getTransceivers():
                    transceiver.direction = "recvonly"  # nothing is sent back
                await pc.setLocalDescription(await pc.createAnswer())
        except Exception as error:  # aiortc raises ValueError and friends for bad SDP
            await self.stop("failed")
            raise InvalidOffer(f"the offer cannot be answered: {type(error).__name__}") from None
        media = [t for t in tracks if t.kind in ("audio", "video")]
        if not media:
            await self.stop("failed")
            raise InvalidOffer("the offer carries neither audio nor video")
        expects_video = any(t.kind == "video" for t in media)
        self._muxer = _Muxer(self._counting, self.settings, expects_video)
        self._started = self._last_media = time.monotonic()
        self._readers = [asyncio.create_task(self._read(t)) for t in media]
        pc.on("connectionstatechange", self._on_connection_state)
        self._watchdog = asyncio.create_task(self._watch())
        return str(pc.localDescription.sdp)

    def _on_connection_state(self) -> None:
        if self._pc is not None and self._pc.connectionState in ("failed", "closed"):
            self._end("disconnected")

    def _end(self, reason: str) -> None:
        if not self._ended.is_set():
            self._reason = reason
            self._ended.set()

    async def _watch(self) -> None:
        """End the session by itself: no media for a while, a connection that never came up,
        or the length limit."""
        s = self.settings
        while not self._ended.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._ended.wait(), 1.0)
            now = time.monotonic()
            connected = self._pc is not None and self._pc.connectionState == "connected"
            if now - self._started >= s.max_seconds:
                self._end("limit")
            elif now - self._last_media >= (s.idle_seconds if connected else s.connect_timeout):
                self._end("idle")

    async def _read(self, track: MediaStreamTrack) -> None:
        loop = asyncio.get_running_loop()
        origin: tuple[float, float] | None = None  # (arrival since start, first timestamp)
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            now = time.monotonic()
            self._last_media = now
            if not isinstance(frame, AudioFrame | VideoFrame) or frame.time is None:
                continue
            if origin is None:
                origin = (now - self._started, frame.time)
            at = origin[0] + frame.time - origin[1]
            if track.kind == "video" and self._queued >= self.settings.max_queued_frames:
                self._dropped += 1
                continue
            assert self._muxer is not None  # noqa: S101 - readers start after the muxer
            self._queued += 1
            future = loop.run_in_executor(self._executor, self._muxer.write, track.kind, frame, at)
            future.add_done_callback(self._written)

    def _written(self, future: asyncio.Future[None]) -> None:
        self._queued -= 1
        if future.cancelled() or future.exception() is None:
            return
        if self._failure is None:
            self._failure = future.exception()
            logger.error("recording: the encoder failed: %s", type(self._failure).__name__)
        self._end("failed")

    async def finished(self) -> str:
        """Wait until the session ends by itself (or is stopped); the reason."""
        await self._ended.wait()
        return self._reason

    async def stop(self, reason: str = "stopped") -> RecordingSummary:
        """Stop (idempotent): flush the encoders, close the sink, close the peer connection."""
        self._end(reason)
        if self._stopping is None:
            self._stopping = asyncio.create_task(self._stop())
        return await asyncio.shield(self._stopping)

    async def _stop(self) -> RecordingSummary:
        loop = asyncio.get_running_loop()
        for task in [*self._readers, *([self._watchdog] if self._watchdog else [])]:
            task.cancel()
        for task in [*self._readers, *([self._watchdog] if self._watchdog else [])]:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        try:
            if self._muxer is not None:
                await loop.run_in_executor(self._executor, self._muxer.close)
        except Exception as error:  # a full disk, a closed sink: recorded as a failure
            self._failure = self._failure or error
            logger.error("recording: closing the file failed: %s", type(error).__name__)
        finally:
            with contextlib.suppress(Exception):
                await loop.run_in_executor(self._executor, self._sink.close)
            self._executor.shutdown(wait=False)
        if self._pc is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._pc.close(), CLOSE_TIMEOUT)
        self._forget(self)
        muxer = self._muxer
        size = muxer.size if muxer is not None else None
        return RecordingSummary(
            reason="failed" if self._failure is not None else self._reason,
            seconds=round(time.monotonic() - self._started, 3),
            video_frames=muxer.video_frames if muxer else 0,
            audio_frames=muxer.audio_frames if muxer else 0,
            dropped_frames=self._dropped,
            bytes_written=self._counting.written,
            width=size[0] if size else None,
            height=size[1] if size else None,
        )
