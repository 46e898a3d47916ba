"""The recorder peer against a real aiortc client on 127.0.0.1: what it writes is a WebM file that
decodes back to the frames the client sent (each frame carries its number as stripes)."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator, Callable, Iterator

import av
import pytest
from aiortc import RTCPeerConnection, RTCSessionDescription

from tests.integration.video.test_precall import (
    LOOPBACK,
    WAIT,
    NumberedFrames,
    Tone,
    frame_number,
)
from video.precall import configure_ice, rtc_configuration
from video.recording import (
    InvalidOffer,
    RecorderBusy,
    RecorderService,
    RecorderSession,
    RecorderSettings,
    _fit,
)


@pytest.fixture(autouse=True)
def loopback_only() -> Iterator[None]:
    configure_ice(host_addresses=(LOOPBACK,))
    yield
    configure_ice(host_addresses=None)


class MemorySink:
    """A one-way sink, like the encrypting writer: write and close, no seek."""

    def __init__(self, fail_after: int | None = None) -> None:
        self.data = bytearray()
        self.closed = 0
        self.fail_after = fail_after

    def write(self, data: bytes) -> int:
        if self.fail_after is not None and len(self.data) + len(data) > self.fail_after:
            raise OSError(28, "No space left on device")
        self.data += data
        return len(data)

    def close(self) -> None:
        self.closed += 1


@pytest.fixture
async def service() -> AsyncIterator[RecorderService]:
    svc = RecorderService(RecorderSettings(idle_seconds=2.0, connect_timeout=5.0, max_sessions=2))
    yield svc
    await svc.close_all()


async def send(
    session: RecorderSession, *, video: bool = True
) -> tuple[RTCPeerConnection, NumberedFrames]:
    """Offer camera and microphone send-only, as the consult page's recorder connection does."""
    pc = RTCPeerConnection(rtc_configuration(()))
    camera = NumberedFrames()
    pc.addTrack(Tone())
    if video:
        pc.addTrack(camera)
    for transceiver in pc.getTransceivers():
        transceiver.direction = "sendonly"
    await pc.setLocalDescription(await pc.createOffer())
    answer = await session.answer(pc.localDescription.sdp)
    await pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))
    return pc, camera


async def until(condition: Callable[[], bool]) -> None:
    """Poll a counter the aiortc track advances (it offers no event to wait on)."""
    async with asyncio.timeout(WAIT):
        while not condition():  # noqa: ASYNC110
            await asyncio.sleep(0.05)


def decode(data: bytes) -> tuple[list[int], list[tuple[int, int]], float, float]:
    """Frame numbers read back, picture sizes, and the last video and audio times (s)."""
    numbers: list[int] = []
    sizes: list[tuple[int, int]] = []
    video_end = audio_end = 0.0
    with av.open(io.BytesIO(data), mode="r", format="webm") as container:
        for frame in container.decode(*container.streams):
            assert frame.time is not None
            if isinstance(frame, av.VideoFrame):
                numbers.append(frame_number(frame.reformat(format="yuv420p")))
                sizes.append((frame.width, frame.height))
                video_end = max(video_end, frame.time)
            else:
                audio_end = max(audio_end, frame.time)
    return numbers, sizes, video_end, audio_end


async def test_the_recording_decodes_to_the_frames_and_sound_that_were_sent(
    service: RecorderService,
) -> None:
    sink = MemorySink()
    session = service.open(sink)
    pc, camera = await send(session)
    try:
        await until(lambda: camera.sent >= 90)  # three seconds of camera
    finally:
        summary = await session.stop()
        await pc.close()
    assert summary.reason == "stopped"
    assert sink.closed == 1
    assert bytes(sink.data[:4]) == b"\x1a\x45\xdf\xa3"  # an EBML (WebM) header
    assert summary.bytes_written == len(sink.data)
    numbers, sizes, video_end, audio_end = decode(bytes(sink.data))
    assert summary.video_frames >= 45
    assert len(numbers) >= summary.video_frames - 2  # the encoder may hold the last one or two
    assert numbers == sorted(numbers)
    assert len(set(numbers)) == len(numbers)
    assert numbers[-1] <= camera.sent
    assert set(sizes) == {(640, 480)}
    assert (summary.width, summary.height) == (640, 480)
    assert summary.audio_frames >= 100  # 20 ms frames
    assert abs(video_end - audio_end) < 0.5  # sound and picture end together


async def test_a_browser_that_goes_away_ends_the_session_by_itself(
    service: RecorderService,
) -> None:
    sink = MemorySink()
    session = service.open(sink)
    pc, camera = await send(session)
    await until(lambda: camera.sent >= 30)  # a second of camera
    await pc.close()
    async with asyncio.timeout(WAIT):
        reason = await session.finished()
    assert reason in ("disconnected", "idle")
    summary = await session.stop()
    assert summary.video_frames > 0
    assert service.active == 0
    numbers, _, _, _ = decode(bytes(sink.data))
    assert numbers


async def test_sound_alone_is_recorded_when_there_is_no_camera(service: RecorderService) -> None:
    sink = MemorySink()
    session = service.open(sink)
    pc, _ = await send(session, video=False)
    await asyncio.sleep(1.5)
    summary = await session.stop()
    await pc.close()
    assert summary.video_frames == 0
    assert summary.audio_frames >= 30
    with av.open(io.BytesIO(bytes(sink.data)), mode="r", format="webm") as container:
        assert [s.type for s in container.streams] == ["audio"]


async def test_sessions_beyond_the_limit_are_refused_until_one_stops(
    service: RecorderService,
) -> None:
    first, second = service.open(MemorySink()), service.open(MemorySink())
    with pytest.raises(RecorderBusy):
        service.open(MemorySink())
    await first.stop()
    third = service.open(MemorySink())
    assert service.active == 2
    await second.stop()
    await third.stop()
    assert service.active == 0


@pytest.mark.parametrize(
    "offer",
    ["", "v=0\r\n", "x" * 70_000, "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n"],
    ids=["empty", "bare", "too large", "no media"],
)
async def test_bad_offers_are_refused_and_free_their_slot(
    service: RecorderService, offer: str
) -> None:
    sink = MemorySink()
    session = service.open(sink)
    with pytest.raises(InvalidOffer):
        await session.answer(offer)
    await session.stop()
    assert service.active == 0
    assert sink.closed == 1
    assert sink.data == b""


async def test_a_sink_that_fails_ends_the_recording_as_failed(service: RecorderService) -> None:
    sink = MemorySink(fail_after=20_000)
    session = service.open(sink)
    pc, _ = await send(session)
    async with asyncio.timeout(WAIT):
        reason = await session.finished()
    summary = await session.stop()
    await pc.close()
    assert reason == "failed"
    assert summary.reason == "failed"
    assert len(sink.data) <= 20_000
    assert service.active == 0


@pytest.mark.parametrize(
    ("size", "fitted"),
    [
        ((640, 480), (640, 480)),
        ((1920, 1080), (1280, 720)),
        ((1080, 1920), (720, 1280)),  # a phone held upright stays upright
        ((641, 361), (640, 360)),  # VP8 wants even sizes
        ((3840, 1000), (1280, 332)),  # 333.3 lines, down to even
    ],
)
def test_pictures_are_scaled_down_to_fit_keeping_their_shape(
    size: tuple[int, int], fitted: tuple[int, int]
) -> None:
    assert _fit(*size, 1280, 720) == fitted
