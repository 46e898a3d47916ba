"""The pre-call check against a real aiortc client peer, on 127.0.0.1 only.

The client sends a synthetic camera whose frames carry their number as 16 black/white stripes,
and a 440 Hz tone (or silence). The server echoes; the client decodes the numbers it gets back.
"""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import math
from array import array
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field

import psutil  # type: ignore[import-untyped]
import pytest
from aiortc import MediaStreamTrack, RTCPeerConnection, RTCSessionDescription, VideoStreamTrack
from aiortc.mediastreams import AudioStreamTrack, MediaStreamError
from aiortc.rtcicetransport import RTCIceGatherer
from aiortc.rtp import is_rtcp
from aiortc.sdp import SessionDescription
from av import AudioFrame, VideoFrame

from video.precall import (
    InvalidOffer,
    Level,
    PrecallBusy,
    PrecallService,
    PrecallSession,
    PrecallSettings,
    SessionClosed,
    configure_ice,
    rtc_configuration,
    verdict,
)

LOOPBACK = "127.0.0.1"
WIDTH, HEIGHT, BITS = 640, 480, 16
TONE_DBFS = 20 * math.log10(0.1 / math.sqrt(2))  # a sine at 10 % of full scale: about -23 dBFS
WAIT = 20.0  # bound on every wait for an event; none of these tests should come near it


@pytest.fixture(autouse=True)
def loopback_only() -> Iterator[None]:
    configure_ice(host_addresses=(LOOPBACK,))
    yield
    configure_ice(host_addresses=None)


# --- the client ----------------------------------------------------------------------------------


class NumberedFrames(VideoStreamTrack):
    """30 fps 640x480 frames; frame n shows n in binary as 16 vertical stripes (white = 1)."""

    def __init__(self) -> None:
        super().__init__()
        self.sent = 0

    async def recv(self) -> VideoFrame:
        pts, time_base = await self.next_timestamp()
        frame = VideoFrame(WIDTH, HEIGHT, "yuv420p")
        luma, cb, cr = frame.planes
        stripe = WIDTH // BITS
        row = b"".join(
            (b"\xeb" if self.sent >> (BITS - 1 - i) & 1 else b"\x10") * stripe for i in range(BITS)
        )
        luma.update(row.ljust(luma.line_size, b"\x10") * HEIGHT)
        cb.update(b"\x80" * cb.buffer_size)
        cr.update(b"\x80" * cr.buffer_size)
        frame.pts, frame.time_base = pts, time_base
        self.sent += 1
        return frame


def frame_number(frame: VideoFrame) -> int:
    """Read the stripes back: the middle of each stripe on the middle row."""
    luma = frame.planes[0]
    data = bytes(luma)
    middle = (frame.height // 2) * luma.line_size
    stripe = frame.width // BITS
    number = 0
    for i in range(BITS):
        number = number << 1 | (data[middle + i * stripe + stripe // 2] > 128)
    return number


class Tone(AudioStreamTrack):
    """aiortc's paced 8 kHz mono frames, filled with a 440 Hz sine at 10 % of full scale."""

    def __init__(self) -> None:
        super().__init__()
        self.position = 0

    async def recv(self) -> AudioFrame:
        frame = await super().recv()
        assert isinstance(frame, AudioFrame)
        samples = array(
            "h",
            (
                int(3277 * math.sin(2 * math.pi * 440 * (self.position + i) / frame.sample_rate))
                for i in range(frame.samples)
            ),
        )
        self.position += frame.samples
        frame.planes[0].update(samples.tobytes().ljust(frame.planes[0].buffer_size, b"\0"))
        return frame


@dataclass
class Client:
    pc: RTCPeerConnection
    camera: NumberedFrames | None
    offer_sdp: str = ""
    answer_sdp: str = ""
    echoed_numbers: list[int] = field(default_factory=list)
    echoed_audio_frames: int = 0
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    async def close(self) -> None:
        await self.pc.close()
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


async def connect(
    session: PrecallSession,
    *,
    video: bool = True,
    audio: MediaStreamTrack | None = None,
    drop_every: int | None = None,
    apply_answer: bool = True,
) -> Client:
    """Offer to the session and apply its answer, like the pre-call page does.

    ``drop_every=n`` loses every n-th RTP packet the client sends (RTCP gets through).
    """
    pc = RTCPeerConnection(rtc_configuration(()))
    client = Client(pc, NumberedFrames() if video else None)
    pc.addTrack(audio if audio is not None else Tone())
    if client.camera is not None:
        pc.addTrack(client.camera)

    @pc.on("track")
    def on_track(track: MediaStreamTrack) -> None:
        client.tasks.append(asyncio.create_task(read_echo(client, track)))

    await pc.setLocalDescription(await pc.createOffer())
    client.offer_sdp = pc.localDescription.sdp
    if drop_every is not None:
        lose_packets(pc, drop_every)
    client.answer_sdp = await session.answer(client.offer_sdp)
    if apply_answer:
        await pc.setRemoteDescription(RTCSessionDescription(client.answer_sdp, "answer"))
    return client


async def read_echo(client: Client, track: MediaStreamTrack) -> None:
    with contextlib.suppress(MediaStreamError):
        while True:
            frame = await track.recv()
            if isinstance(frame, VideoFrame):
                client.echoed_numbers.append(frame_number(frame))
            else:
                client.echoed_audio_frames += 1


def lose_packets(pc: RTCPeerConnection, every: int) -> None:
    """A lossy network on the client's way out: drop every n-th RTP packet, keep RTCP."""
    transports = {id(s.transport): s.transport for s in pc.getSenders()}
    for transport in transports.values():
        send = transport._send_rtp
        count = 0

        async def lossy(data: bytes, send: Callable[[bytes], Awaitable[None]] = send) -> None:
            nonlocal count
            if not is_rtcp(data):
                count += 1
                if count % every == 0:
                    return
            await send(data)

        transport._send_rtp = lossy  # type: ignore[method-assign]


def candidate_addresses(sdp: str) -> list[tuple[str, str]]:
    """(address, type) of every candidate in an SDP, and the connection addresses."""
    description = SessionDescription.parse(sdp)
    found = [(c.ip, c.type) for m in description.media for c in m.ice_candidates]
    found += [(m.host, "c=") for m in description.media if m.host]
    return found


def udp_sockets() -> list[tuple[str, int]]:
    return [c.laddr for c in psutil.Process().net_connections(kind="udp")]


@pytest.fixture
async def service() -> AsyncIterator[PrecallService]:
    svc = PrecallService(
        PrecallSettings(window_seconds=3.0, connect_timeout=5.0, max_session_seconds=30.0)
    )
    yield svc
    await svc.close_all()


# --- tests ---------------------------------------------------------------------------------------


async def test_echo_brings_back_the_frames_sent_and_the_figures_are_plausible(
    service: PrecallService,
) -> None:
    session = service.open()
    client = await connect(session)
    try:
        during = udp_sockets()
        result = await session.result(timeout=WAIT)
        echoed = list(client.echoed_numbers)
        sent = client.camera.sent if client.camera else 0
    finally:
        await client.close()
        await session.close()

    # Only loopback: every candidate on both sides is a 127.0.0.1 host candidate, no STUN/TURN,
    # and every UDP socket the process held during the check was bound to 127.0.0.1.
    assert RTCIceGatherer.getDefaultIceServers() == []
    for sdp in (client.offer_sdp, client.answer_sdp):
        addresses = candidate_addresses(sdp)
        assert addresses
        assert {address for address, _ in addresses} == {LOOPBACK}
        assert {kind for _, kind in addresses} <= {"host", "c="}
    assert during
    assert {address for address, _ in during} == {LOOPBACK}

    # The picture that came back is the one sent: numbered frames, in order, none invented.
    assert len(echoed) >= 30
    assert echoed == sorted(echoed)
    assert len(set(echoed)) == len(echoed)
    assert echoed[-1] < sent
    assert set(echoed) <= set(range(sent))
    assert client.echoed_audio_frames > 0

    assert result.connected
    assert 2.9 <= result.seconds <= 4.0
    assert result.video_track
    assert result.audio_track
    assert (result.width, result.height) == (WIDTH, HEIGHT)
    assert 10 <= result.frame_rate <= 35  # the camera sends 30 fps
    assert result.video_frames == pytest.approx(result.frame_rate * result.seconds, abs=1)
    assert 20_000 < result.video_bitrate_bps < 20_000_000
    assert result.audio_frames >= 50  # 50 Opus frames a second
    assert result.audio_level_dbfs is not None
    assert abs(result.audio_level_dbfs - TONE_DBFS) < 6
    assert result.round_trip_ms is not None
    assert 0 <= result.round_trip_ms < 200
    assert result.uplink_loss is not None
    assert result.uplink_loss <= 0.01
    assert result.downlink_loss is not None
    assert result.downlink_loss <= 0.01

    graded = verdict(result)
    assert graded.level is Level.GOOD
    assert [a.code for a in graded.advice] == ["connection_good"]


async def test_lossy_uplink_is_measured_and_too_weak_for_video(service: PrecallService) -> None:
    session = service.open()
    client = await connect(session, drop_every=4)
    try:
        result = await session.result(timeout=WAIT)
    finally:
        await client.close()
        await session.close()
    assert result.connected
    assert result.uplink_loss is not None
    assert 0.15 <= result.uplink_loss <= 0.35  # 1 in 4 dropped
    graded = verdict(result)
    assert graded.level is Level.TOO_WEAK_FOR_VIDEO
    assert "loss" in graded.reasons
    assert graded.advice[0].code == "connection_too_weak"


async def test_audio_only_and_silent_microphone_get_device_advice(service: PrecallService) -> None:
    session = service.open()
    client = await connect(session, video=False, audio=AudioStreamTrack())  # silence
    try:
        result = await session.result(timeout=WAIT)
    finally:
        await client.close()
        await session.close()
    assert result.connected
    assert not result.video_track
    assert result.video_frames == 0
    assert result.video_bitrate_bps == 0
    assert result.audio_frames > 0
    assert result.audio_level_dbfs == -120.0
    assert client.echoed_audio_frames > 0
    graded = verdict(result)
    assert graded.level is Level.GOOD  # the network is fine; the devices are not
    assert [a.code for a in graded.advice] == ["connection_good", "no_camera", "microphone_silent"]


async def test_a_send_only_offer_is_measured_without_an_echo(service: PrecallService) -> None:
    session = service.open()
    pc = RTCPeerConnection(rtc_configuration(()))
    camera = NumberedFrames()
    pc.addTransceiver(camera, direction="sendonly")
    pc.addTransceiver(Tone(), direction="sendonly")
    try:
        await pc.setLocalDescription(await pc.createOffer())
        answer = await session.answer(pc.localDescription.sdp)
        assert "a=recvonly" in answer
        assert "a=sendrecv" not in answer
        await pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))
        result = await session.result(timeout=WAIT)
    finally:
        await pc.close()
        await session.close()
    assert result.connected
    assert result.video_frames > 0
    assert result.audio_frames > 0
    assert result.round_trip_ms is None  # RTT rides on the echo's reports: none without echo
    assert result.downlink_loss is None
    assert verdict(result).level is Level.GOOD


async def test_a_peer_that_never_connects_gives_no_connection() -> None:
    service = PrecallService(PrecallSettings(window_seconds=3.0, connect_timeout=1.0))
    session = service.open()
    client = await connect(session, apply_answer=False)
    try:
        result = await session.result(timeout=WAIT)
    finally:
        await client.close()
        await session.close()
    assert not result.connected
    assert verdict(result).level is Level.NO_CONNECTION
    assert service.active == 0


async def test_result_before_the_window_ends_gives_the_figures_so_far() -> None:
    service = PrecallService(PrecallSettings(window_seconds=60.0))
    async with service.open() as session:
        client = await connect(session)
        try:
            for _ in range(int(WAIT / 0.05)):  # wait for the connection, not for a duration
                if session._window_start is not None:
                    break
                await asyncio.sleep(0.05)
            result = await session.result(timeout=1.5)
        finally:
            await client.close()
    assert result.connected
    assert 1.0 <= result.seconds < 10
    assert result.video_frames > 0
    assert session.closed
    assert service.active == 0


async def test_sessions_beyond_the_limit_are_refused_until_one_closes() -> None:
    service = PrecallService(PrecallSettings(max_sessions=2))
    first, second = service.open(), service.open()
    with pytest.raises(PrecallBusy, match="all 2 pre-call check slots are in use"):
        service.open()
    await first.close()
    await first.close()  # idempotent, frees the slot once
    third = service.open()
    assert service.active == 2
    await service.close_all()
    assert service.active == 0
    assert second.closed
    assert third.closed


async def test_bad_offers_are_refused_and_free_their_slot() -> None:
    service = PrecallService(PrecallSettings(max_sessions=1))
    session = service.open()
    with pytest.raises(InvalidOffer, match="no audio or video"):
        await session.answer("v=0\r\nthis is not sdp\r\n")
    assert session.closed
    assert service.active == 0
    with pytest.raises(SessionClosed):
        await session.answer("v=0\r\n")
    garbled = service.open()
    with pytest.raises(InvalidOffer, match="could not be answered"):
        await garbled.answer("v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n")
    assert service.active == 0
    too_large = service.open()
    with pytest.raises(InvalidOffer, match="too large"):
        await too_large.answer("a" * 70_000)
    assert service.active == 0


@pytest.mark.parametrize(
    "offer",
    [
        "v=0\r\nm=video x y\r\n",
        "v=0\r\na=ssrc-group:FID\r\n",
        "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=rtpmap:zz\r\n",
        "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=candidate:1\r\n",
        "",
    ],
)
async def test_garbled_offers_are_invalid(offer: str) -> None:
    service = PrecallService(PrecallSettings(max_sessions=1))
    with pytest.raises(InvalidOffer):
        await service.open().answer(offer)
    assert service.active == 0


async def test_a_second_answer_is_refused(service: PrecallService) -> None:
    session = service.open()
    client = await connect(session)
    try:
        with pytest.raises(SessionClosed):
            await session.answer(client.offer_sdp)
    finally:
        await client.close()
        await session.close()


async def test_closing_leaves_no_peer_task_or_socket_behind() -> None:
    before_sockets = set(udp_sockets())
    before_tasks = asyncio.all_tasks()
    service = PrecallService(PrecallSettings(window_seconds=1.0))
    session = service.open()
    client = await connect(session)
    await session.result(timeout=WAIT)
    pc = session._pc
    assert pc is not None
    assert pc.connectionState == "connected"
    assert set(udp_sockets()) - before_sockets
    await session.close()
    await client.close()
    assert pc.connectionState == "closed"
    assert service.active == 0
    await asyncio.sleep(0)  # let cancelled callbacks run
    assert set(udp_sockets()) - before_sockets == set()
    leftover = [t for t in asyncio.all_tasks() - before_tasks if not t.done()]
    assert leftover == []


async def test_a_forgotten_session_closes_itself_at_its_lifetime() -> None:
    service = PrecallService(PrecallSettings(window_seconds=0.5, max_session_seconds=1.5))
    before_sockets = set(udp_sockets())
    session = service.open()
    client = await connect(session)
    try:
        for _ in range(int(WAIT / 0.1)):
            if session.closed:
                break
            await asyncio.sleep(0.1)
        assert session.closed
        assert service.active == 0
    finally:
        await client.close()
    assert set(udp_sockets()) - before_sockets == set()


def test_configure_ice_uses_exactly_the_given_addresses() -> None:
    import aioice.ice

    configure_ice(host_addresses=("127.0.0.1", "::1"))
    assert aioice.ice.get_host_addresses(use_ipv4=True, use_ipv6=True) == ["127.0.0.1", "::1"]
    assert aioice.ice.get_host_addresses(use_ipv4=True, use_ipv6=False) == ["127.0.0.1"]
    assert aioice.ice.get_host_addresses(use_ipv4=False, use_ipv6=True) == ["::1"]
    with pytest.raises(ValueError, match="does not appear to be an IPv4 or IPv6 address"):
        configure_ice(host_addresses=("localhost",))
    assert RTCIceGatherer.getDefaultIceServers() == []
    assert rtc_configuration(()).iceServers == []


def test_frame_numbers_survive_the_stripe_code() -> None:
    """The test's own pattern reads back without a codec in between."""
    track = NumberedFrames()
    track.sent = 0xA5C3

    async def one() -> VideoFrame:
        return await track.recv()

    frame = asyncio.run(one())
    assert frame_number(frame) == 0xA5C3
    assert frame.time_base == fractions.Fraction(1, 90000)
