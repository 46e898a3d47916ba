"""Pre-call check (接続テスト): a server-side WebRTC peer that echoes the caller's media, graded.

The browser (or any WebRTC client) offers, this module answers, receives the camera and microphone
tracks and sends them straight back, so the patient sees their own picture come back through the
clinic's server. Over a short window it measures what the consult will need:

- **round-trip time** from RTCP: the echo's sender reports (SR) come back in the client's receiver
  reports (RR, LSR/DLSR, RFC 3550 §6.4.1), which aiortc turns into ``roundTripTime``. Every
  browser sends these for a stream it receives, so no page script is needed; the first figure
  arrives 0.5-3 s after media starts. The result gives the median of once-a-second samples;
- **loss towards the server** (``uplink_loss``), counted here from the RTP sequence numbers of the
  client's audio and video (retransmissions excluded, so it is the network's loss before repair);
- **loss towards the client** (``downlink_loss``) as the client reports it for the echo;
- **video**: payload bitrate, decoded frames per second and resolution; **audio**: frames and the
  loudest level, so a muted microphone is told apart from a missing one.

`verdict` turns a `PrecallResult` into a `Level` and plain advice in Japanese and English; the
thresholds are in `Thresholds`. Both are pure.

ICE: `configure_ice` is the process-wide policy for every aiortc peer (call it once at start-up,
before any peer gathers candidates). Per session the ICE servers are passed in `PrecallSettings`;
with none, the answer carries host candidates only and no packet goes to any STUN or TURN server.

aiortc does not trickle: `PrecallSession.answer` returns an SDP with every candidate in it. The
server never offers (no glare, standards §8.2).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import ipaddress
import logging
import math
import secrets
import statistics
from array import array
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import aioice.ice
from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCIceServer,
    RTCPeerConnection,
    RTCRtpReceiver,
    RTCRtpTransceiver,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamError
from aiortc.rtcicetransport import RTCIceGatherer
from aiortc.rtp import RtpPacket
from aiortc.sdp import SessionDescription
from aiortc.stats import RTCRemoteInboundRtpStreamStats
from av import AudioFrame, VideoFrame

from video.turn import IceServer

logger = logging.getLogger(__name__)

__all__ = [
    "Advice",
    "IceServer",
    "InvalidOffer",
    "Level",
    "PrecallBusy",
    "PrecallError",
    "PrecallResult",
    "PrecallService",
    "PrecallSession",
    "PrecallSettings",
    "RtpTally",
    "SessionClosed",
    "Thresholds",
    "Verdict",
    "configure_ice",
    "parse_offer",
    "rtc_configuration",
    "verdict",
]

MAX_OFFER_BYTES = 64 * 1024
CLOSE_TIMEOUT = 5.0  # closing sends DTLS close_notify and RTCP BYE; never wait on a gone peer
MAX_MEDIA_SECTIONS = 4  # audio + video (+ a data channel): bounds the work one offer can cause


# --- errors --------------------------------------------------------------------------------------
#
# PrecallError
#  ├── PrecallBusy      the process already runs `max_sessions` checks
#  ├── InvalidOffer     the SDP is not an offer aiortc can answer (too large, malformed, ...)
#  └── SessionClosed    answer() after close(), or a second answer()


class PrecallError(Exception):
    """Base of every error this module raises."""


class PrecallBusy(PrecallError):
    """All pre-call check slots of this process are taken; the caller should retry shortly."""


class InvalidOffer(PrecallError):
    """The offer cannot be answered. The session has been closed."""


class SessionClosed(PrecallError):
    """The session is closed or has already answered."""


def parse_offer(offer_sdp: str) -> SessionDescription:
    """An offer a server peer may take: at most `MAX_OFFER_BYTES`, valid SDP, at most
    `MAX_MEDIA_SECTIONS` media sections, some audio or video; `InvalidOffer` otherwise.
    Bounds the work one request can cause before aiortc sees it."""
    if len(offer_sdp.encode("utf-8", "replace")) > MAX_OFFER_BYTES:
        raise InvalidOffer("the offer is too large")
    try:
        parsed = SessionDescription.parse(offer_sdp)
    except Exception as error:  # aiortc's parser also asserts and raises StopIteration
        raise InvalidOffer("the offer is not valid SDP") from error
    if len(parsed.media) > MAX_MEDIA_SECTIONS:
        raise InvalidOffer(f"the offer has more than {MAX_MEDIA_SECTIONS} media sections")
    if not any(media.kind in ("audio", "video") for media in parsed.media):
        raise InvalidOffer("the offer has no audio or video")
    return parsed


# --- ICE configuration ---------------------------------------------------------------------------

_system_host_addresses = aioice.ice.get_host_addresses


def rtc_configuration(servers: Sequence[IceServer]) -> RTCConfiguration:
    """An aiortc configuration naming exactly ``servers`` (a list, never aiortc's default).
    aiortc uses only the first STUN and the first TURN URL given (see :mod:`video.turn`)."""
    return RTCConfiguration(iceServers=[RTCIceServer(**s.as_rtc_ice_server()) for s in servers])


def configure_ice(*, host_addresses: Sequence[str] | None) -> None:
    """Set the ICE policy of every aiortc peer in this process; call once before any peer gathers.

    - aiortc's built-in public STUN server (``stun.l.google.com``, added whenever a configuration
      has ``iceServers=None``) is switched off for good: a peer contacts only the servers its own
      `RTCConfiguration` names (`rtc_configuration` always names a list).
    - ``host_addresses=None``: host candidates come from aioice's discovery, i.e. every address of
      every interface except loopback (production). A sequence: exactly these local addresses,
      e.g. ``("127.0.0.1",)`` for tests and benchmarks, so no packet leaves loopback.

    aioice finds host addresses through a module-level function and aiortc's default STUN server
    comes from a class method; both are process-wide, which is why this is a process-wide setting
    (patching ``aioice.ice.get_host_addresses`` and ``RTCIceGatherer.getDefaultIceServers``).
    Calling it again replaces the address policy.
    """
    RTCIceGatherer.getDefaultIceServers = classmethod(_no_default_ice_servers)  # type: ignore[assignment,method-assign]
    if host_addresses is None:
        aioice.ice.get_host_addresses = _system_host_addresses
        return
    fixed = tuple(ipaddress.ip_address(a) for a in host_addresses)  # ValueError on a bad address

    def only_configured(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        return [
            str(a) for a in fixed if (a.version == 4 and use_ipv4) or (a.version == 6 and use_ipv6)
        ]

    aioice.ice.get_host_addresses = only_configured


def _no_default_ice_servers(cls: type[RTCIceGatherer]) -> list[RTCIceServer]:
    return []


# --- measurement values --------------------------------------------------------------------------


class RtpTally:
    """Packets, payload bytes and sequence-number span of the RTP streams one receiver gets (pure).

    Loss = expected − received, where expected spans the lowest to the highest extended sequence
    number seen per SSRC (RFC 3550 A.3). Retransmissions (RTX) count towards bytes, not loss: the
    loss is the network's, before repair. Duplicates can make ``received`` exceed ``expected``;
    loss is then 0.
    """

    __slots__ = ("_streams", "bytes", "packets")

    def __init__(self) -> None:
        self._streams: dict[int, list[int]] = {}  # ssrc -> [first, highest extended seq, received]
        self.bytes = 0
        self.packets = 0

    def add(self, ssrc: int, sequence_number: int, payload_bytes: int, *, counts: bool) -> None:
        """One packet; ``counts=False`` for retransmissions (bytes only)."""
        self.bytes += payload_bytes
        self.packets += 1
        if not counts:
            return
        stream = self._streams.get(ssrc)
        if stream is None:
            self._streams[ssrc] = [sequence_number, sequence_number, 1]
            return
        highest = stream[1]
        delta = (sequence_number - highest) & 0xFFFF
        extended = highest + delta if delta < 0x8000 else highest + delta - 0x10000
        stream[0] = min(stream[0], extended)
        stream[1] = max(highest, extended)
        stream[2] += 1

    def expected_and_received(self) -> tuple[int, int]:
        expected = sum(s[1] - s[0] + 1 for s in self._streams.values())
        received = sum(s[2] for s in self._streams.values())
        return expected, received


@dataclass(frozen=True, slots=True)
class PrecallResult:
    """What one pre-call check measured; plain values only.

    ``seconds`` is the measured window (shorter than configured when the caller stopped waiting).
    Fractions are 0-1; ``None`` means not measurable (no packets, no report yet).
    ``video_track``/``audio_track``: the offer carried a camera/microphone track at all.
    ``audio_level_dbfs``: RMS of the loudest 20 ms audio frame, −120 for digital silence.
    """

    connected: bool
    seconds: float = 0.0
    round_trip_ms: float | None = None
    uplink_loss: float | None = None
    downlink_loss: float | None = None
    video_track: bool = False
    video_frames: int = 0
    frame_rate: float = 0.0
    video_bitrate_bps: int = 0
    width: int | None = None
    height: int | None = None
    audio_track: bool = False
    audio_frames: int = 0
    audio_level_dbfs: float | None = None


# --- the verdict (pure) --------------------------------------------------------------------------


class Level(enum.StrEnum):
    GOOD = "good"
    FAIR = "fair"
    TOO_WEAK_FOR_VIDEO = "too_weak_for_video"
    NO_CONNECTION = "no_connection"


_RANK = {Level.GOOD: 0, Level.FAIR: 1, Level.TOO_WEAK_FOR_VIDEO: 2, Level.NO_CONNECTION: 3}


@dataclass(frozen=True, slots=True)
class Advice:
    code: str
    ja: str
    en: str


HEADLINES = {
    Level.GOOD: Advice(
        "connection_good",
        "接続は良好です。",
        "Your connection is good.",
    ),
    Level.FAIR: Advice(
        "connection_fair",
        "接続はやや不安定です。映像が止まったり粗くなったりすることがあります。"
        "Wi-Fiにつなぐか、ルーターの近くに移動すると改善することがあります。",
        "Your connection is fair: the picture may freeze or blur at times. "
        "Wi-Fi or moving closer to the router may help.",
    ),
    Level.TOO_WEAK_FOR_VIDEO: Advice(
        "connection_too_weak",
        "ビデオ通話には接続が弱すぎます。Wi-Fiにつなぐか、ルーターの近くに移動してから、"
        "もう一度テストしてください。",
        "Your connection is too weak for video. Try Wi-Fi or move closer to the router, "
        "then test again.",
    ),
    Level.NO_CONNECTION: Advice(
        "no_connection",
        "クリニックのサーバーに接続できませんでした。インターネット接続を確認するか、"
        "別のネットワーク(Wi-Fiやモバイルデータ)でお試しください。",
        "We could not connect to the clinic's server. Check your internet connection or try "
        "another network (Wi-Fi or mobile data).",
    ),
}
SLOW_RESPONSE = Advice(
    "slow_response",
    "通信の遅れが大きく、会話が少し遅れて聞こえることがあります。",
    "Your connection has a long delay, so the conversation may lag a little.",
)
NO_CAMERA = Advice(
    "no_camera",
    "カメラの映像が届いていません。ブラウザにカメラの使用を許可しているか確認してください。",
    "We did not receive a picture from your camera. Check that your browser may use the camera.",
)
NO_MICROPHONE = Advice(
    "no_microphone",
    "マイクの音が届いていません。ブラウザにマイクの使用を許可しているか確認してください。",
    "We could not hear your microphone. Check that your browser may use the microphone.",
)
MICROPHONE_SILENT = Advice(
    "microphone_silent",
    "マイクの音がとても小さいか、ミュートになっています。ミュートを解除して話してみてください。",
    "Your microphone seems muted or very quiet. Unmute it and try speaking.",
)


@dataclass(frozen=True, slots=True)
class Thresholds:
    """Where the levels change. A figure at a boundary gets the better level.

    Round trip: interactive speech is comfortable up to ~300 ms (ITU-T G.114: 150 ms one way) and
    breaks down past ~1 s. Loss: WebRTC repairs a few per cent with retransmission; past ~8 % video
    freezes. Frame rate: 15 fps is fluid, below 8 fps a face is not usable for a consult.
    Resolution (the shorter side, so portrait phones count alike): a browser short of bandwidth
    scales its camera down before it drops frames, so under 240 lines is at best fair and under
    120 too weak. Audio quieter than −60 dBFS at its loudest is a muted or dead microphone (speech
    is around −30 to −15 dBFS).

    The video bitrate is reported but not graded: it depends on the picture as much as on the
    network (a still, evenly lit scene is sent at ~120 kbit/s over a perfect link, a moving one
    at 1-2 Mbit/s), and a sender that lacks bandwidth shows it in resolution and frame rate.
    """

    fair_round_trip_ms: float = 300.0
    weak_round_trip_ms: float = 1000.0
    fair_loss: float = 0.02
    weak_loss: float = 0.08
    fair_frame_rate: float = 15.0
    weak_frame_rate: float = 8.0
    fair_short_side: int = 240
    weak_short_side: int = 120
    silent_dbfs: float = -60.0


@dataclass(frozen=True, slots=True)
class Verdict:
    """``advice``: the headline for ``level`` first, then what the caller can fix (devices).

    ``reasons``: machine-readable causes of a level below good, for staff
    (``round_trip``, ``loss``, ``frame_rate``, ``resolution``, ``no_media``).
    """

    level: Level
    advice: tuple[Advice, ...]
    reasons: tuple[str, ...] = ()


def verdict(result: PrecallResult, thresholds: Thresholds = Thresholds()) -> Verdict:
    """Grade a pre-call check. Figures that could not be measured (``None``) do not count."""
    t = thresholds
    if not result.connected:
        return Verdict(Level.NO_CONNECTION, (HEADLINES[Level.NO_CONNECTION],), ("no_connection",))
    grades: list[tuple[Level, str]] = []

    def grade(value: float | None, fair: float, weak: float, reason: str, *, low: bool) -> None:
        if value is None:
            return
        if (value < weak) if low else (value > weak):
            grades.append((Level.TOO_WEAK_FOR_VIDEO, reason))
        elif (value < fair) if low else (value > fair):
            grades.append((Level.FAIR, reason))

    grade(result.round_trip_ms, t.fair_round_trip_ms, t.weak_round_trip_ms, "round_trip", low=False)
    losses = [x for x in (result.uplink_loss, result.downlink_loss) if x is not None]
    grade(max(losses, default=None), t.fair_loss, t.weak_loss, "loss", low=False)
    if result.video_track:
        grade(result.frame_rate, t.fair_frame_rate, t.weak_frame_rate, "frame_rate", low=True)
        if result.width is not None and result.height is not None:
            short_side = min(result.width, result.height)
            grade(short_side, t.fair_short_side, t.weak_short_side, "resolution", low=True)
    if (result.video_track or result.audio_track) and not (
        result.video_frames or result.audio_frames
    ):
        grades.append((Level.TOO_WEAK_FOR_VIDEO, "no_media"))

    level = max((g for g, _ in grades), key=_RANK.__getitem__, default=Level.GOOD)
    advice = [HEADLINES[level]]
    if result.round_trip_ms is not None and result.round_trip_ms > t.fair_round_trip_ms:
        advice.append(SLOW_RESPONSE)
    if not result.video_track:
        advice.append(NO_CAMERA)
    if not result.audio_track or result.audio_frames == 0:
        advice.append(NO_MICROPHONE)
    elif result.audio_level_dbfs is not None and result.audio_level_dbfs < t.silent_dbfs:
        advice.append(MICROPHONE_SILENT)
    reasons = tuple(dict.fromkeys(reason for _, reason in grades))
    return Verdict(level, tuple(advice), reasons)


# --- the peer ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PrecallSettings:
    """Built once at the composition root. ``ice_servers`` empty: host candidates only."""

    ice_servers: tuple[IceServer, ...] = ()
    window_seconds: float = 6.0  # measured after the connection is up
    connect_timeout: float = 10.0  # from the answer to ICE + DTLS connected
    answer_timeout: float = 10.0  # gathering (STUN/TURN allocations) + answering
    max_session_seconds: float = 60.0  # then the session closes itself, even if nobody calls close
    max_sessions: int = 4  # per process; ~18-22 % of a core each (bench/video.py, 640x480 30 fps)
    sample_interval: float = 1.0  # how often RTT and downlink loss are read during the window

    def __post_init__(self) -> None:
        if self.max_sessions < 1 or self.window_seconds <= 0 or self.sample_interval <= 0:
            raise ValueError("max_sessions, window_seconds and sample_interval must be positive")


class _FrameTally:
    """Decoded frames of one kind: count, last size, loudest audio level since ``reset_peak``."""

    def __init__(self) -> None:
        self.frames = 0
        self.width: int | None = None
        self.height: int | None = None
        self.peak_dbfs: float | None = None

    def add(self, frame: Any) -> None:
        self.frames += 1
        if isinstance(frame, VideoFrame):
            self.width, self.height = frame.width, frame.height
        elif isinstance(frame, AudioFrame):
            level = _audio_dbfs(frame)
            if level is not None and (self.peak_dbfs is None or level > self.peak_dbfs):
                self.peak_dbfs = level

    def reset_peak(self) -> None:
        self.peak_dbfs = None


def _audio_dbfs(frame: AudioFrame) -> float | None:
    """RMS level of a packed signed 16-bit frame (aiortc's Opus/G.711 decoders), 1 sample in 4."""
    if frame.format.name != "s16":
        return None
    values = frame.samples * len(frame.layout.channels)  # the plane may carry padding
    samples = array("h", bytes(frame.planes[0])[: 2 * values])[::4]
    if not samples:
        return None
    rms = math.sqrt(sum(s * s for s in samples) / len(samples))
    return max(-120.0, 20 * math.log10(rms / 32768)) if rms else -120.0


class _EchoTrack(MediaStreamTrack):
    """Passes the caller's frames back unchanged, counting them on the way."""

    def __init__(self, source: MediaStreamTrack, tally: _FrameTally) -> None:
        super().__init__()
        self.kind = source.kind
        self._source = source
        self._tally = tally

    async def recv(self) -> Any:
        frame = await self._source.recv()
        self._tally.add(frame)
        return frame


class PrecallService:
    """The process's pre-call checks: hands out sessions up to ``max_sessions`` at a time.

    Create one at the composition root (after `configure_ice`); call `close_all` at shutdown.
    """

    def __init__(self, settings: PrecallSettings) -> None:
        self.settings = settings
        self._sessions: set[PrecallSession] = set()

    @property
    def active(self) -> int:
        return len(self._sessions)

    def open(self) -> PrecallSession:
        """A new session holding one slot until it is closed. Raises `PrecallBusy` when full."""
        if len(self._sessions) >= self.settings.max_sessions:
            raise PrecallBusy(
                f"all {self.settings.max_sessions} pre-call check slots are in use; retry shortly"
            )
        session = PrecallSession(self.settings, on_closed=self._sessions.discard)
        self._sessions.add(session)
        return session

    async def close_all(self) -> None:
        for session in list(self._sessions):
            await session.close()


class PrecallSession:
    """One pre-call check: `answer` an offer, await `result`, always `close` (or ``async with``).

    Obtain sessions from `PrecallService.open` so the per-process limit holds. The echo keeps
    running after the result until `close` or ``max_session_seconds``, whichever comes first.
    """

    def __init__(
        self,
        settings: PrecallSettings,
        *,
        on_closed: Callable[[PrecallSession], None] | None = None,
    ) -> None:
        self.settings = settings
        self.id = secrets.token_hex(4)  # for logs; says nothing about the caller
        self._on_closed = on_closed
        self._pc: RTCPeerConnection | None = None
        self._task: asyncio.Task[None] | None = None
        self._drains: list[asyncio.Task[None]] = []
        self._result: asyncio.Future[PrecallResult] = asyncio.get_running_loop().create_future()
        self._closed = False
        self._answered = False
        self._frames = {"audio": _FrameTally(), "video": _FrameTally()}
        self._rtp = {"audio": RtpTally(), "video": RtpTally()}
        self._tracks: set[str] = set()
        self._rtt_samples: list[float] = []
        self._downlink_loss: float | None = None
        self._window_start: tuple[float, dict[str, tuple[int, int, int, int]]] | None = None
        self._connected = asyncio.Event()
        self._deadline = asyncio.get_running_loop().time() + settings.max_session_seconds

    async def __aenter__(self) -> PrecallSession:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    @property
    def closed(self) -> bool:
        return self._closed

    async def answer(self, offer_sdp: str) -> str:
        """The answer SDP (every candidate included) to a client's offer; starts the measurement.

        Raises `InvalidOffer` (the session is then closed) or `SessionClosed`.
        """
        if self._closed or self._answered:
            raise SessionClosed("this pre-call session is closed or has already answered")
        self._answered = True
        try:
            parsed = parse_offer(offer_sdp)
        except InvalidOffer:
            await self.close()
            raise
        retransmission_types = {
            codec.payloadType
            for media in parsed.media
            for codec in media.rtp.codecs
            if codec.payloadType is not None and codec.mimeType.lower().endswith("/rtx")
        }
        self._pc = pc = RTCPeerConnection(rtc_configuration(self.settings.ice_servers))
        pc.on("connectionstatechange", self._on_connection_state)
        try:
            async with asyncio.timeout(self.settings.answer_timeout):
                await pc.setRemoteDescription(RTCSessionDescription(offer_sdp, "offer"))
                echoes = self._attach_echoes(pc, retransmission_types)
                await pc.setLocalDescription(await pc.createAnswer())
        except Exception as error:  # aiortc raises ValueError, InternalError, TimeoutError...
            await self.close()
            raise InvalidOffer("the offer could not be answered") from error
        if self._closed:  # closed (e.g. by close_all) while answering
            raise SessionClosed("the pre-call session was closed while answering")
        for transceiver, echo in echoes:
            if transceiver.currentDirection == "recvonly":  # caller offered sendonly: no echo
                self._drains.append(asyncio.create_task(_drain(echo)))
        self._task = asyncio.create_task(self._run(), name=f"precall-{self.id}")
        logger.info("pre-call %s answered (%s)", self.id, ", ".join(sorted(self._tracks)))
        return pc.localDescription.sdp

    def _attach_echoes(
        self, pc: RTCPeerConnection, retransmission_types: set[int]
    ) -> list[tuple[RTCRtpTransceiver, _EchoTrack]]:
        echoes = []
        for transceiver in pc.getTransceivers():
            kind = transceiver.kind
            if kind not in self._frames or transceiver.receiver.track is None:
                continue
            self._tracks.add(kind)
            _count_rtp(transceiver.receiver, self._rtp[kind], retransmission_types)
            echo = _EchoTrack(transceiver.receiver.track, self._frames[kind])
            transceiver.sender.replaceTrack(echo)
            transceiver.direction = "sendrecv"
            echoes.append((transceiver, echo))
        return echoes

    def _on_connection_state(self) -> None:
        if self._pc is not None and self._pc.connectionState in ("connected", "failed", "closed"):
            self._connected.set()

    async def result(self, timeout: float) -> PrecallResult:  # noqa: ASYNC109 - returns, not raises
        """The measurement, waiting at most ``timeout`` s for the window to finish.

        Never raises for a bad network: no connection by then gives ``connected=False``, a
        connection whose window is not over gives the figures so far (``seconds`` says how long).
        """
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                return await asyncio.shield(self._result)
        return self._snapshot()

    async def close(self) -> None:
        """Stop the echo, close the peer connection (sockets) and free the slot. Idempotent."""
        if self._closed:
            return
        self._closed = True
        if not self._result.done():
            self._result.set_result(self._snapshot())
        tasks = [t for t in (self._task, *self._drains) if t is not None]
        for task in tasks:
            if task is not asyncio.current_task():
                task.cancel()
        for task in tasks:
            if task is not asyncio.current_task():
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if self._pc is not None:
            try:
                async with asyncio.timeout(CLOSE_TIMEOUT):
                    await self._pc.close()
            except TimeoutError:
                logger.warning("pre-call %s: peer connection did not close in time", self.id)
        if self._on_closed is not None:
            self._on_closed(self)
        logger.info("pre-call %s closed", self.id)

    async def _run(self) -> None:
        """Measure, publish the result, keep echoing until the session's lifetime is over."""
        try:
            await self._measure()
        except Exception:  # a bug or an aiortc surprise must not leave the caller waiting
            logger.exception("pre-call %s: measurement failed", self.id)
        if not self._result.done():
            self._result.set_result(self._snapshot())
        await asyncio.sleep(max(0.0, self._deadline - asyncio.get_running_loop().time()))
        await self.close()  # close() does not cancel or await the task it runs in

    async def _measure(self) -> None:
        pc = self._pc
        if pc is None:
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.settings.connect_timeout):
                await self._connected.wait()
        if pc.connectionState != "connected":
            logger.info("pre-call %s did not connect (%s)", self.id, pc.connectionState)
            return
        loop = asyncio.get_running_loop()
        for tally in self._frames.values():
            tally.reset_peak()
        self._window_start = (loop.time(), self._counters())
        end = loop.time() + self.settings.window_seconds
        while (remaining := end - loop.time()) > 0:
            await asyncio.sleep(min(self.settings.sample_interval, remaining))
            await self._sample_sender_reports(pc)

    async def _sample_sender_reports(self, pc: RTCPeerConnection) -> None:
        lost = received = 0
        for sender in pc.getSenders():
            if sender.track is None:
                continue
            for stats in (await sender.getStats()).values():
                if isinstance(stats, RTCRemoteInboundRtpStreamStats):
                    if stats.roundTripTime is not None:
                        self._rtt_samples.append(stats.roundTripTime * 1000)
                    lost += max(0, stats.packetsLost)
                    received += max(0, stats.packetsReceived)
        if lost + received:
            self._downlink_loss = lost / (lost + received)

    def _counters(self) -> dict[str, tuple[int, int, int, int]]:
        """Per kind: (frames, payload bytes, expected packets, received packets)."""
        return {
            kind: (
                self._frames[kind].frames,
                self._rtp[kind].bytes,
                *self._rtp[kind].expected_and_received(),
            )
            for kind in self._frames
        }

    def _snapshot(self) -> PrecallResult:
        connected = self._window_start is not None
        if self._window_start is None:
            return PrecallResult(
                connected=False,
                video_track="video" in self._tracks,
                audio_track="audio" in self._tracks,
            )
        started, before = self._window_start
        seconds = max(asyncio.get_running_loop().time() - started, 1e-9)
        now = self._counters()
        delta = {
            kind: [n - b for n, b in zip(now[kind], before[kind], strict=True)] for kind in now
        }
        expected = sum(delta[kind][2] for kind in delta)
        received = sum(delta[kind][3] for kind in delta)
        video = self._frames["video"]
        audio = self._frames["audio"]
        return PrecallResult(
            connected=connected,
            seconds=round(seconds, 3),
            round_trip_ms=statistics.median(self._rtt_samples) if self._rtt_samples else None,
            uplink_loss=max(0, expected - received) / expected if expected > 0 else None,
            downlink_loss=self._downlink_loss,
            video_track="video" in self._tracks,
            video_frames=delta["video"][0],
            frame_rate=delta["video"][0] / seconds,
            video_bitrate_bps=int(delta["video"][1] * 8 / seconds),
            width=video.width,
            height=video.height,
            audio_track="audio" in self._tracks,
            audio_frames=delta["audio"][0],
            audio_level_dbfs=audio.peak_dbfs,
        )


def _count_rtp(receiver: RTCRtpReceiver, tally: RtpTally, retransmission_types: set[int]) -> None:
    """Count every RTP packet the receiver gets, before aiortc's own handling.

    aiortc's statistics cannot give this: ``inbound-rtp`` has no byte count and keeps one entry
    per receiver, overwritten by whichever SSRC (media or RTX) comes last. So the receiver's
    packet handler (private, stable since aiortc 1.0, and checked by the integration tests,
    which fail with a zero bitrate if it stops being called) is wrapped on this instance only.
    """
    handle: Callable[[RtpPacket, int], Awaitable[None]] = receiver._handle_rtp_packet

    async def counting(packet: RtpPacket, arrival_time_ms: int) -> None:
        tally.add(
            packet.ssrc,
            packet.sequence_number,
            len(packet.payload),
            counts=packet.payload_type not in retransmission_types,
        )
        await handle(packet, arrival_time_ms)

    receiver._handle_rtp_packet = counting  # type: ignore[method-assign]


async def _drain(track: MediaStreamTrack) -> None:
    with contextlib.suppress(MediaStreamError):
        while True:
            await track.recv()
