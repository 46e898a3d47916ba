"""Video benchmark, part 1: the signaling capacity of one worker, as a ratio to a bare websocket
echo server measured in the same run.

    .venv/bin/python bench/video_signaling.py [--rooms 20 --messages 50]

One ``tsunagu serve`` process (uvicorn, one worker, the embedded SQLite default, in-memory
pub/sub) with ``--rooms`` online appointments seeded (tests/support/consult_bench_seed.py). For
every room at once: the patient joins and waits, the doctor joins and admits them — the
**join-to-admitted latency** is from the patient's join frame to the patient receiving
``admitted`` — then patient and doctor exchange ``--messages`` ICE candidate frames each way,
one at a time (send, wait until the other side has it). **Messages/s** counts relayed frames
over the exchange phase. Every frame goes through the room's state machine and a
compare-and-set of its state in the database, then pub/sub.

Baseline, same run, same client code: a bare Starlette websocket echo server (bench/hello_app.py)
on the same uvicorn command, with the same number of connections each sending the same number
of frames and waiting for each echo. The ratio messages/s ÷ echo messages/s is what one relayed
signaling frame costs compared with a websocket round trip that does nothing.

All traffic is on 127.0.0.1; every wait is bounded. Results: bench/results/video_signaling.json.
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
import json  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from typing import Any  # noqa: E402

import websockets  # noqa: E402
from provenance import git_commit  # noqa: E402 - bench/provenance.py
from run import HOST, Server, base_env, free_port, tsunagu_command, uvicorn_argv  # noqa: E402

from patient_portal.consults import Seat, make_ticket  # noqa: E402

RESULTS = BENCH_DIR / "results" / "video_signaling.json"
STEP_TIMEOUT = 30.0
CANDIDATE = {
    "candidate": "candidate:1 1 udp 2122260223 127.0.0.1 50000 typ host",
    "sdpMid": "0",
    "sdpMLineIndex": 0,
}


async def _next(socket: Any, kind: str) -> dict[str, Any]:
    async with asyncio.timeout(STEP_TIMEOUT):
        while True:
            message: dict[str, Any] = json.loads(await socket.recv())
            if message["type"] == kind:
                return message


async def one_room(
    base: str, secret: str, seat: dict[str, str], messages: int
) -> tuple[float, int]:
    """Join, admit, exchange; (join-to-admitted seconds, frames relayed)."""
    url = base.replace("http://", "ws://") + f"/consults/{seat['appointment_id']}/ws"

    def ticket(participant: str, role: str) -> str:
        return make_ticket(
            secret,
            Seat(seat["appointment_id"], seat["clinic_id"], participant, role),  # type: ignore[arg-type]
        )

    async with (
        websockets.connect(url, open_timeout=STEP_TIMEOUT) as patient,
        websockets.connect(url, open_timeout=STEP_TIMEOUT) as doctor,
    ):
        started = time.perf_counter()
        await patient.send(
            json.dumps({"v": 1, "type": "join", "token": ticket(seat["patient"], "patient")})
        )
        await _next(patient, "joined")
        await doctor.send(
            json.dumps({"v": 1, "type": "join", "token": ticket(seat["doctor"], "doctor")})
        )
        await _next(doctor, "joined")
        await doctor.send(json.dumps({"v": 1, "type": "admit", "participant": seat["patient"]}))
        await _next(patient, "admitted")
        admitted = time.perf_counter() - started
        relayed = 0
        for _ in range(messages):
            for sender, receiver in ((patient, doctor), (doctor, patient)):
                await sender.send(json.dumps({"v": 1, "type": "candidate", "candidate": CANDIDATE}))
                await _next(receiver, "candidate")
                relayed += 1
        await doctor.send(json.dumps({"v": 1, "type": "end"}))
    return admitted, relayed


async def signaling(
    base: str, secret: str, seats: list[dict[str, str]], messages: int
) -> dict[str, Any]:
    started = time.perf_counter()
    results = await asyncio.gather(*(one_room(base, secret, s, messages) for s in seats))
    elapsed = time.perf_counter() - started
    latencies = sorted(r[0] for r in results)
    relayed = sum(r[1] for r in results)
    return {
        "rooms": len(seats),
        "frames_relayed": relayed,
        "seconds": elapsed,
        "messages_per_second": relayed / elapsed,
        "join_to_admitted_p50_ms": 1000 * statistics.median(latencies),
        "join_to_admitted_p99_ms": 1000
        * latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))],
    }


async def echo(base: str, connections: int, messages: int) -> dict[str, Any]:
    url = base.replace("http://", "ws://") + "/echo"
    frame = json.dumps({"v": 1, "type": "candidate", "candidate": CANDIDATE})

    async def one() -> int:
        async with websockets.connect(url, open_timeout=STEP_TIMEOUT) as socket:
            for _ in range(messages):
                await socket.send(frame)
                async with asyncio.timeout(STEP_TIMEOUT):
                    await socket.recv()
        return messages

    started = time.perf_counter()
    counts = await asyncio.gather(*(one() for _ in range(connections)))
    elapsed = time.perf_counter() - started
    return {
        "connections": connections,
        "frames": sum(counts),
        "seconds": elapsed,
        "messages_per_second": sum(counts) / elapsed,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rooms", type=int, default=20)
    parser.add_argument("--messages", type=int, default=50, help="frames each way per room")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="tsunagu-signaling-") as tmp:
        work = Path(tmp)
        env = base_env()
        env.update(
            TSUNAGU_DATA_DIR=str(work / "var"),
            TSUNAGU_DATABASE_URL=f"sqlite://{work / 'bench.sqlite3'}",
            TSUNAGU_LOG_LEVEL="WARNING",
            TSUNAGU_ICE_HOST_ADDRESSES=HOST,
            PYTHONPATH=str(REPO),
        )
        subprocess.run(
            [*tsunagu_command(), "migrate"], env=env, check=True, capture_output=True, timeout=120
        )
        seats = json.loads(
            subprocess.run(
                [sys.executable, "-m", "tests.support.consult_bench_seed", str(args.rooms)],
                env=env,
                cwd=REPO,
                check=True,
                capture_output=True,
                text=True,
                timeout=300,
            ).stdout
        )
        secret = (work / "var" / "secret_key").read_text().strip()
        portal_port, echo_port = free_port(), free_port()
        portal = Server(
            "tsunagu",
            [*tsunagu_command(), "serve", "--host", HOST, "--port", str(portal_port)],
            env,
            work / "tsunagu.log",
        )
        bare = Server(
            "echo", uvicorn_argv("hello_app:create_echo_app", echo_port), env, work / "echo.log"
        )
        try:
            for server, ready in (
                (portal, f"http://{HOST}:{portal_port}/healthz"),
                (bare, f"http://{HOST}:{echo_port}/"),
            ):
                server.start()
                server.wait_ready(ready)
            base = f"http://{HOST}:{portal_port}"
            baseline_before = asyncio.run(
                echo(f"http://{HOST}:{echo_port}", 2 * args.rooms, args.messages)
            )
            measured = asyncio.run(signaling(base, secret, seats, args.messages))
            baseline_after = asyncio.run(
                echo(f"http://{HOST}:{echo_port}", 2 * args.rooms, args.messages)
            )
        finally:
            portal.stop()
            bare.stop()
    baseline = max(baseline_before["messages_per_second"], baseline_after["messages_per_second"])
    report = {
        "commit": git_commit(),
        "settings": vars(args),
        "signaling": measured,
        "echo_before": baseline_before,
        "echo_after": baseline_after,
        "ratio_messages_per_second": measured["messages_per_second"] / baseline,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2))
    print(f"rooms {args.rooms}, {args.messages} frames each way per room, one worker (SQLite)")
    print(
        f"signaling: {measured['messages_per_second']:.0f} relayed frames/s "
        f"(× {report['ratio_messages_per_second']:.2f} of the bare echo's {baseline:.0f}/s)"
    )
    print(
        f"join → admitted: p50 {measured['join_to_admitted_p50_ms']:.0f} ms, "
        f"p99 {measured['join_to_admitted_p99_ms']:.0f} ms"
    )
    print(f"written: {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
