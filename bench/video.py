"""Video benchmark: the server's CPU cost per pre-call check stream, as a ratio to the bare codecs.

    .venv/bin/python bench/video.py [--streams 1 2 4 --seconds 8 --warmup 2]

**Pre-call check** (``precall``): this process runs a `video.precall.PrecallService`; a child
process (this script with ``--client N``) runs N aiortc client peers, each sending a 640x480
30 fps camera and a 440 Hz microphone tone, offering over a pipe and reading back the echo. All
peers gather 127.0.0.1 host candidates only (`video.precall.configure_ice`) and name no STUN or
TURN server. After ``--warmup`` seconds the CPU time of *this* process (every thread:
``time.process_time``) is read over ``--seconds``; the clients' CPU is not in it. Figures per N:
CPU per stream-second, % of one core per stream, and the ratio to the baseline.

**Baseline**, measured in the same run and process: the codec work a pre-call stream needs at
the least, with no networking, RTP, SRTP or asyncio — aiortc's own VP8 decoder and encoder on 30
frames of the same picture and its Opus decoder and encoder on 50 frames of the same tone (one
stream-second), the input encoded beforehand. The ratio says how much the whole echo peer
(ICE, DTLS/SRTP, RTP and RTCP, jitter buffer, pacing, the measurements) costs on top of the
codecs it cannot avoid. A second reference, **bare echo**: one plain aiortc peer that sends the
received tracks straight back (aiortc's example), under the same client load; pre-call ÷ bare
echo is the cost of our measuring.

The picture is a blocky texture panning 2 px a frame: harder to encode than a face in front of
a wall, so the figure is on the safe side. Every wait is bounded; results go to
``bench/results/video.json``.

**Consented recording** (``recording``): the same clients send the same load to a
`video.recording.RecorderService`, which decodes it and re-encodes it as VP8/Opus WebM into a
sealed file (`patient_portal.crypto.sealed_files`, a throwaway keyring in a temporary folder),
nothing echoed. Figures per N as above, with the ratio to the codec baseline and to the bare
echo: what a recorded side costs the server on top of a stream it merely passes back.
"""

from __future__ import annotations

import sys
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != BENCH_DIR]
sys.path.insert(0, str(REPO))
sys.path.append(str(BENCH_DIR))

import argparse  # noqa: E402
import asyncio  # noqa: E402
import contextlib  # noqa: E402
import fractions  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import os  # noqa: E402
import platform  # noqa: E402
import random  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from array import array  # noqa: E402
from collections.abc import Awaitable, Callable  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from typing import Any  # noqa: E402

from aiortc import MediaStreamTrack, RTCPeerConnection, RTCSessionDescription  # noqa: E402
from aiortc.codecs import depayload  # noqa: E402
from aiortc.codecs.opus import OpusDecoder, OpusEncoder  # noqa: E402
from aiortc.codecs.vpx import Vp8Decoder, Vp8Encoder  # noqa: E402
from aiortc.jitterbuffer import JitterFrame  # noqa: E402
from aiortc.mediastreams import AudioStreamTrack, MediaStreamError, VideoStreamTrack  # noqa: E402
from aiortc.rtcrtpparameters import RTCRtpCodecParameters  # noqa: E402
from av import AudioFrame, VideoFrame  # noqa: E402
from provenance import git_commit, package_version  # noqa: E402 - bench/provenance.py

from patient_portal.crypto.keyring import parse_keyring  # noqa: E402
from patient_portal.crypto.sealed_files import SealedWriter  # noqa: E402
from video.precall import (  # noqa: E402
    PrecallService,
    PrecallSession,
    PrecallSettings,
    configure_ice,
    rtc_configuration,
    verdict,
)
from video.recording import RecorderService, RecorderSession, RecorderSettings  # noqa: E402

RESULTS_FILE = BENCH_DIR / "results" / "video.json"
SCRIPT = Path(__file__).resolve()
LOOPBACK = "127.0.0.1"  # every peer gathers this address only
WIDTH, HEIGHT, FPS = 640, 480, 30
AUDIO_FRAMES_PER_SECOND = 50  # aiortc's 20 ms audio frames
SETUP_TIMEOUT = 30.0
VIDEO_TIME_BASE = fractions.Fraction(1, 90000)
VP8 = RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90000, payloadType=96)


def _check(condition: object, message: str) -> None:
    """A sanity check that also runs under ``python -O`` (unlike ``assert``)."""
    if not condition:
        raise RuntimeError(f"benchmark sanity check failed: {message}")


# --- the synthetic camera and microphone ---------------------------------------------------------


class Picture:
    """A grey 8x8-block texture (fixed seed) that pans 2 px to the left each frame."""

    def __init__(self, seed: int = 7) -> None:
        rng = random.Random(seed)
        bands = []
        for _ in range(HEIGHT // 8):
            row = b"".join(bytes([rng.randrange(16, 236)]) * 8 for _ in range(WIDTH // 8))
            bands.append(row + row)  # doubled, so any 640-px window is one slice
        self._rows = [band for band in bands for _ in range(8)]
        self._chroma = b"\x80" * (WIDTH // 2 * HEIGHT // 2)

    def frame(self, number: int) -> VideoFrame:
        offset = (2 * number) % WIDTH
        frame = VideoFrame(WIDTH, HEIGHT, "yuv420p")
        luma, cb, cr = frame.planes
        pad = b"\x10" * (luma.line_size - WIDTH)
        luma.update(b"".join(row[offset : offset + WIDTH] + pad for row in self._rows))
        cb.update(self._chroma.ljust(cb.buffer_size, b"\x80"))
        cr.update(self._chroma.ljust(cr.buffer_size, b"\x80"))
        return frame


def tone_samples(position: int, count: int, rate: int) -> bytes:
    """440 Hz at 10 % of full scale, 16-bit mono."""
    return array(
        "h",
        (int(3277 * math.sin(2 * math.pi * 440 * (position + i) / rate)) for i in range(count)),
    ).tobytes()


class Camera(VideoStreamTrack):
    def __init__(self, picture: Picture) -> None:
        super().__init__()
        self._picture = picture
        self._number = 0

    async def recv(self) -> VideoFrame:
        pts, time_base = await self.next_timestamp()
        frame = self._picture.frame(self._number)
        frame.pts, frame.time_base = pts, time_base
        self._number += 1
        return frame


class Microphone(AudioStreamTrack):
    def __init__(self) -> None:
        super().__init__()
        self._position = 0

    async def recv(self) -> AudioFrame:
        frame = await super().recv()  # paced, 8 kHz mono silence with the right timestamps
        if not isinstance(frame, AudioFrame):
            raise TypeError("aiortc's AudioStreamTrack returned a non-audio frame")
        data = tone_samples(self._position, frame.samples, frame.sample_rate)
        frame.planes[0].update(data.ljust(frame.planes[0].buffer_size, b"\0"))
        self._position += frame.samples
        return frame


# --- baseline: the codecs alone ------------------------------------------------------------------


def codec_baseline(frames: int, rounds: int) -> dict[str, Any]:
    """CPU of VP8 decode+encode and Opus decode+encode for one stream-second, median of rounds.

    Input packets are made beforehand by aiortc's encoders (not timed), as a client would send
    them; the timed loop is what the server cannot avoid: decode what arrives, encode the echo.
    """
    picture = Picture()
    sender = Vp8Encoder()
    video_packets: list[bytes] = []
    for number in range(frames):
        frame = picture.frame(number)
        frame.pts, frame.time_base = number * 3000, VIDEO_TIME_BASE
        payloads, _ = sender.encode(frame, force_keyframe=number == 0)
        video_packets.append(b"".join(depayload(VP8, payload) for payload in payloads))
    audio_sender = OpusEncoder()
    audio_packets: list[bytes] = []
    audio_frames = frames * AUDIO_FRAMES_PER_SECOND // FPS
    for number in range(audio_frames):
        sound = AudioFrame(format="s16", layout="mono", samples=160)
        sound.planes[0].update(tone_samples(number * 160, 160, 8000))
        sound.pts, sound.sample_rate = number * 160, 8000
        sound.time_base = fractions.Fraction(1, 8000)
        payloads, _ = audio_sender.encode(sound)
        audio_packets.extend(payloads)
    _check(len(video_packets) == frames and audio_packets, "baseline input not encoded")

    def one_round() -> tuple[float, float]:
        decoder, encoder = Vp8Decoder(), Vp8Encoder()
        start = time.process_time()
        for number, data in enumerate(video_packets):
            for decoded in decoder.decode(JitterFrame(data, number * 3000)):
                encoder.encode(decoded)
        video = time.process_time() - start
        audio_decoder, audio_encoder = OpusDecoder(), OpusEncoder()
        start = time.process_time()
        for number, data in enumerate(audio_packets):
            for decoded in audio_decoder.decode(JitterFrame(data, number * 960)):
                audio_encoder.encode(decoded)
        return video, time.process_time() - start

    samples = [one_round() for _ in range(rounds)]
    video = statistics.median(v for v, _ in samples) / frames * FPS
    audio = statistics.median(a for _, a in samples) / len(audio_packets) * AUDIO_FRAMES_PER_SECOND
    return {
        "video_frames_per_round": frames,
        "audio_frames_per_round": len(audio_packets),
        "rounds": rounds,
        "vp8_ms_per_stream_second": round(video * 1000, 2),
        "opus_ms_per_stream_second": round(audio * 1000, 2),
        "cpu_ms_per_stream_second": round((video + audio) * 1000, 2),
    }


# --- pre-call check streams ----------------------------------------------------------------------


async def _read_json(stream: asyncio.StreamReader) -> dict[str, Any]:
    async with asyncio.timeout(SETUP_TIMEOUT):
        line = await stream.readline()
    if not line:
        raise RuntimeError("the client process ended early")
    message: dict[str, Any] = json.loads(line)
    return message


@dataclass
class Load:
    """CPU of this process while the child's clients were connected and echoed."""

    cpu: float
    wall: float
    echoed_video_frames: list[int]


async def with_clients(
    streams: int,
    answer: Callable[[str], Awaitable[str]],
    seconds: float,
    warmup: float,
    *,
    echo: bool = True,
) -> Load:
    """Start the client process, answer its ``streams`` offers, measure this process's CPU."""
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        str(SCRIPT),
        "--client",
        str(streams),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    stdin, stdout = child.stdin, child.stdout
    _check(stdin is not None and stdout is not None, "no pipes to the client process")
    assert stdin is not None
    assert stdout is not None
    try:
        for _ in range(streams):
            offer = await _read_json(stdout)
            stdin.write(json.dumps({"sdp": await answer(offer["sdp"])}).encode() + b"\n")
            await stdin.drain()
        await asyncio.sleep(warmup)
        cpu_start, wall_start = time.process_time(), time.perf_counter()
        await asyncio.sleep(seconds)
        cpu = time.process_time() - cpu_start
        wall = time.perf_counter() - wall_start
        stdin.write(b'{"stop": true}\n')
        await stdin.drain()
        echoed = await _read_json(stdout)
    finally:
        if child.returncode is None:
            with contextlib.suppress(OSError):
                stdin.close()
            try:
                async with asyncio.timeout(10):
                    await child.wait()
            except TimeoutError:
                child.kill()
                await child.wait()
    if echo:
        _check(all(n > 0 for n in echoed["video_frames"]), "an echo did not reach its client")
    return Load(cpu, wall, echoed["video_frames"])


def per_stream(load: Load, streams: int) -> dict[str, Any]:
    cpu_per_stream_second = load.cpu / (streams * load.wall)
    return {
        "streams": streams,
        "seconds": round(load.wall, 3),
        "cpu_seconds": round(load.cpu, 3),
        "cpu_ms_per_stream_second": round(cpu_per_stream_second * 1000, 2),
        "core_percent_per_stream": round(cpu_per_stream_second * 100, 1),
        "echoed_video_frames_at_clients": load.echoed_video_frames,
    }


async def precall_streams(streams: int, seconds: float, warmup: float) -> dict[str, Any]:
    """Server CPU while ``streams`` pre-call checks (`PrecallService`) echo at once."""
    settings = PrecallSettings(
        window_seconds=warmup + seconds,
        connect_timeout=SETUP_TIMEOUT,
        max_session_seconds=warmup + seconds + SETUP_TIMEOUT,
        max_sessions=streams,
    )
    service = PrecallService(settings)
    sessions: list[PrecallSession] = []

    async def answer(offer: str) -> str:
        sessions.append(service.open())
        return await sessions[-1].answer(offer)

    try:
        load = await with_clients(streams, answer, seconds, warmup)
        results = [await s.result(timeout=SETUP_TIMEOUT) for s in sessions]
    finally:
        await service.close_all()
    _check(all(r.connected for r in results), "a pre-call check did not connect")
    _check(all(r.video_frames > 0 and r.audio_frames > 0 for r in results), "no media arrived")
    return per_stream(load, streams) | {
        "frame_rate": [round(r.frame_rate, 1) for r in results],
        "video_kbps": [round(r.video_bitrate_bps / 1000) for r in results],
        "round_trip_ms": [
            None if r.round_trip_ms is None else round(r.round_trip_ms, 2) for r in results
        ],
        "uplink_loss": [r.uplink_loss for r in results],
        "verdict": [verdict(r).level.value for r in results],
    }


async def bare_echo_streams(streams: int, seconds: float, warmup: float) -> dict[str, Any]:
    """The same load on plain aiortc peers that send the received tracks straight back.

    aiortc's own echo example, without our measurement (RTP tally, frame and level counting,
    stats sampling): the difference to `precall_streams` is what the measuring costs.
    """
    peers: list[RTCPeerConnection] = []

    async def answer(offer: str) -> str:
        pc = RTCPeerConnection(rtc_configuration(()))
        peers.append(pc)
        pc.on("track", pc.addTrack)
        await pc.setRemoteDescription(RTCSessionDescription(offer, "offer"))
        await pc.setLocalDescription(await pc.createAnswer())
        return str(pc.localDescription.sdp)

    try:
        load = await with_clients(streams, answer, seconds, warmup)
    finally:
        for pc in peers:
            await pc.close()
    return per_stream(load, streams)


async def recording_streams(streams: int, seconds: float, warmup: float) -> dict[str, Any]:
    """Server CPU while ``streams`` recorders write what the clients send into sealed files."""
    import base64
    import tempfile

    key = base64.b64encode(os.urandom(32)).decode()
    keyring = parse_keyring(
        json.dumps({"active": "bench", "keys": {"bench": key}, "index_key": key})
    )
    service = RecorderService(RecorderSettings(max_sessions=streams, idle_seconds=SETUP_TIMEOUT))
    sessions: list[RecorderSession] = []
    with tempfile.TemporaryDirectory(prefix="tsunagu-bench-") as folder:

        async def answer(offer: str) -> str:
            sink = SealedWriter(Path(folder) / f"{len(sessions)}.sealed", keyring, "bench")
            sessions.append(service.open(sink))
            return await sessions[-1].answer(offer)

        try:
            load = await with_clients(streams, answer, seconds, warmup, echo=False)
        finally:
            summaries = [await s.stop() for s in sessions]
            await service.close_all()
        file_bytes = sum(p.stat().st_size for p in Path(folder).iterdir())  # noqa: ASYNC240
    _check(all(s.video_frames > 0 and s.audio_frames > 0 for s in summaries), "nothing recorded")
    # the clients hang up as the measurement ends, so a recorder may see that before its stop
    _check(
        all(s.reason in ("stopped", "disconnected") for s in summaries), "a recorder ended early"
    )
    recorded = sum(s.seconds for s in summaries)
    return per_stream(load, streams) | {
        "recorded_video_frames": [s.video_frames for s in summaries],
        "dropped_video_frames": [s.dropped_frames for s in summaries],
        "sealed_kbps": round(file_bytes * 8 / recorded / 1000) if recorded else 0,
    }


async def idle_cpu(seconds: float) -> float:
    """This process's CPU share with the event loop idle: the floor under every figure."""
    start = time.process_time()
    await asyncio.sleep(seconds)
    return (time.process_time() - start) / seconds


async def measure_precall(args: argparse.Namespace) -> dict[str, Any]:
    configure_ice(host_addresses=(LOOPBACK,))
    baseline = codec_baseline(frames=FPS * 3, rounds=args.baseline_rounds)
    idle = await idle_cpu(1.0)
    bare = await bare_echo_streams(1, args.seconds, args.warmup)
    runs = []
    for streams in args.streams:
        runs.append(await precall_streams(streams, args.seconds, args.warmup))
    recordings = []
    for streams in args.recording_streams:
        recordings.append(await recording_streams(streams, args.seconds, args.warmup))
    base = baseline["cpu_ms_per_stream_second"]
    for run in (bare, *runs, *recordings):
        run["ratio_to_codecs"] = round(run["cpu_ms_per_stream_second"] / base, 2)
        run["streams_per_core"] = round(1000 / run["cpu_ms_per_stream_second"], 1)
    for run in (*runs, *recordings):
        run["ratio_to_bare_echo"] = round(
            run["cpu_ms_per_stream_second"] / bare["cpu_ms_per_stream_second"], 2
        )
    return {
        "baseline_codecs": baseline,
        "idle_core_percent": round(idle * 100, 2),
        "bare_echo": bare,
        "runs": runs,
        "recording": recordings,
    }


# --- the client process --------------------------------------------------------------------------


async def client(streams: int) -> None:
    """Offer ``streams`` peers on stdout, take answers on stdin, report echoed frames at "stop"."""
    configure_ice(host_addresses=(LOOPBACK,))
    picture = Picture()
    video_frames = [0] * streams
    peers: list[RTCPeerConnection] = []
    tasks: list[asyncio.Task[None]] = []

    async def count(track: MediaStreamTrack, index: int) -> None:
        with contextlib.suppress(MediaStreamError):
            while True:
                frame = await track.recv()
                if isinstance(frame, VideoFrame):
                    video_frames[index] += 1

    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    try:
        for index in range(streams):
            pc = RTCPeerConnection(rtc_configuration(()))
            peers.append(pc)
            pc.addTrack(Microphone())
            pc.addTrack(Camera(picture))
            pc.on(
                "track",
                lambda track, index=index: tasks.append(asyncio.create_task(count(track, index))),
            )
            await pc.setLocalDescription(await pc.createOffer())
            print(json.dumps({"sdp": pc.localDescription.sdp}), flush=True)
            answer = await _read_json(reader)
            await pc.setRemoteDescription(RTCSessionDescription(answer["sdp"], "answer"))
        async with asyncio.timeout(SETUP_TIMEOUT + 600):
            await reader.readline()  # "stop", or EOF when the parent goes away
        print(json.dumps({"video_frames": video_frames}), flush=True)
    finally:
        for pc in peers:
            await pc.close()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


# --- the run -------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--streams", type=int, nargs="+", default=[1, 2, 4], help="(1 2 4)")
    parser.add_argument(
        "--recording-streams", type=int, nargs="*", default=[1, 2], help="recorders (1 2)"
    )
    parser.add_argument("--seconds", type=float, default=8.0, help="measured per N (8)")
    parser.add_argument("--warmup", type=float, default=2.0, help="after connecting (2)")
    parser.add_argument("--baseline-rounds", type=int, default=5, help="codec rounds (5)")
    parser.add_argument("--output", type=Path, default=RESULTS_FILE, help="JSON results file")
    parser.add_argument("--client", type=int, help=argparse.SUPPRESS)  # the child process
    args = parser.parse_args(argv)
    if min(args.streams) < 1 or args.seconds <= 0 or args.warmup < 0 or args.baseline_rounds < 1:
        parser.error("--streams and --baseline-rounds must be ≥ 1, --seconds > 0, --warmup ≥ 0")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.client is not None:
        asyncio.run(client(args.client))
        return 0
    report: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "commit": git_commit(),
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "aiortc": package_version("aiortc"),
            "av": package_version("av"),
        },
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
    }
    report["precall"] = precall = asyncio.run(measure_precall(args))
    base = precall["baseline_codecs"]
    print(
        f"baseline, codecs only: {base['cpu_ms_per_stream_second']} ms CPU per stream-second "
        f"(VP8 {base['vp8_ms_per_stream_second']}, Opus {base['opus_ms_per_stream_second']}); "
        f"idle process {precall['idle_core_percent']} % of a core"
    )
    print(
        f"{'':22}{'streams':>8}{'ms CPU/stream-s':>17}{'% core/stream':>15}"
        f"{'× codecs':>10}{'× bare echo':>13}{'fps':>14}"
    )
    for name, run in (
        [("bare aiortc echo", precall["bare_echo"])]
        + [("pre-call check", run) for run in precall["runs"]]
        + [("recording (sealed)", run) for run in precall["recording"]]
    ):
        fps = "/".join(f"{f:.0f}" for f in run.get("frame_rate", []))
        print(
            f"{name:22}{run['streams']:>8}{run['cpu_ms_per_stream_second']:>17.1f}"
            f"{run['core_percent_per_stream']:>15.1f}{run['ratio_to_codecs']:>10.2f}"
            f"{run.get('ratio_to_bare_echo', 1.0):>13.2f}{fps:>14}"
        )
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    print(f"\nwritten: {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
