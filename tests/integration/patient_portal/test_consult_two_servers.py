"""A patient and a doctor on two server processes sharing Redis: signaling crosses workers,
real aiortc peers connect media on loopback, a consented recording on one worker is stopped from
the other, a dropped websocket rejoins on the other worker.

Like the booking race, this always runs on PostgreSQL (the deployment with several processes).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from aiortc import RTCPeerConnection, RTCSessionDescription, VideoStreamTrack

from tests.integration.patient_portal.test_booking_race import (  # noqa: F401 - fixtures
    ROOT,
    race_database,
    two_servers,
)
from video.precall import configure_ice, rtc_configuration

REDIS_URL = os.environ.get("TSUNAGU_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


@pytest.fixture
def environment(race_database: str, tmp_path: Path) -> dict[str, str]:  # noqa: F811
    env = {k: v for k, v in os.environ.items() if not k.startswith("TSUNAGU_")}
    env.update(
        TSUNAGU_DATABASE_URL=race_database,
        TSUNAGU_DATA_DIR=str(tmp_path / "var"),
        TSUNAGU_ICE_HOST_ADDRESSES="127.0.0.1",
        TSUNAGU_REDIS_URL=REDIS_URL,
        TSUNAGU_JOB_RUNNER="inprocess",
        TSUNAGU_LOG_LEVEL="WARNING",
        PYTHONPATH=str(ROOT),
    )
    tsunagu = str(Path(sys.executable).with_name("tsunagu"))
    subprocess.run([tsunagu, "migrate"], env=env, check=True, capture_output=True, timeout=120)
    return env


def ticket(server: str, appointment_id: str, bearer: str) -> dict[str, Any]:
    answer = httpx.post(
        f"{server}/api/v1/consults/{appointment_id}/ticket",
        headers={"Authorization": f"Bearer {bearer}"},
        timeout=10,
    )
    assert answer.status_code == 200, answer.text
    return answer.json()  # type: ignore[no-any-return]


class Side:
    """One participant's websocket: sends frames, waits for a frame of a kind."""

    def __init__(self, socket: Any) -> None:
        self.socket = socket

    async def send(self, **message: Any) -> None:
        await self.socket.send(json.dumps({"v": 1, **message}))

    async def expect(self, kind: str, **match: Any) -> dict[str, Any]:
        async with asyncio.timeout(15):
            while True:
                message: dict[str, Any] = json.loads(await self.socket.recv())
                if message["type"] == kind and all(_get(message, k) == v for k, v in match.items()):
                    return message


def _get(message: dict[str, Any], dotted: str) -> Any:
    value: Any = message
    for part in dotted.split("__"):
        value = value.get(part) if isinstance(value, dict) else None
    return value


@asynccontextmanager
async def joined(server: str, seat: dict[str, Any]) -> AsyncIterator[tuple[Side, dict[str, Any]]]:
    url = server.replace("http://", "ws://") + seat["websocket"]
    async with websockets.connect(url, open_timeout=10) as socket:
        side = Side(socket)
        await side.send(type="join", token=seat["token"])
        yield side, await side.expect("joined")


def listen(connection: RTCPeerConnection) -> asyncio.Queue[Any]:
    """The remote tracks of ``connection`` as they arrive (listen before any description)."""
    arrived: asyncio.Queue[Any] = asyncio.Queue()
    connection.on("track", arrived.put_nowait)
    return arrived


async def frames_from(arrived: asyncio.Queue[Any], count: int) -> int:
    """Wait for the remote video track and read ``count`` frames from it."""
    async with asyncio.timeout(20):
        track = await arrived.get()
        while track.kind != "video":
            track = await arrived.get()
        for _ in range(count):
            await track.recv()
    return count


async def record_across_workers(
    patient: Side, doctor: Side, patients_server: str, appointment: str, bearer: str
) -> None:
    """The doctor (on the other worker) asks, the patient agrees, the patient's camera goes to
    the recorder on the patient's worker; the doctor's stop must reach that recorder."""
    await doctor.send(type="recording", action="request")
    await patient.expect("recording", status="requested")
    await patient.send(type="recording", action="consent")
    on = await patient.expect("recording", status="on")
    await doctor.expect("recording", status="on")
    camera = RTCPeerConnection(rtc_configuration([]))
    try:
        camera.addTrack(VideoStreamTrack())
        for transceiver in camera.getTransceivers():
            transceiver.direction = "sendonly"
        await camera.setLocalDescription(await camera.createOffer())
        async with httpx.AsyncClient(timeout=15) as client:
            answer = await client.post(
                f"{patients_server}/api/v1/consults/{appointment}/recording",
                json={"sdp": camera.localDescription.sdp, "segment": on["segment"]},
                headers={"Authorization": f"Bearer {bearer}"},
            )
        assert answer.status_code == 201, answer.text
        await camera.setRemoteDescription(RTCSessionDescription(answer.json()["sdp"], "answer"))
        await asyncio.sleep(2)  # two seconds of camera into the recorder
        await doctor.send(type="recording", action="stop")
        await patient.expect("recording", status="off")
        await asyncio.sleep(1)  # the camera keeps sending: only the stop may end the recording
    finally:
        await camera.close()


async def recordings(database_url: str, appointment: str) -> list[tuple[str, str, bool]]:
    """(status, end reason, frames recorded) of the appointment's recordings, once all ended."""
    import asyncpg  # type: ignore[import-untyped]

    connection = await asyncpg.connect(database_url)
    try:
        async with asyncio.timeout(20):
            while True:
                rows = await connection.fetch(
                    "SELECT status, end_reason, video_frames FROM video_consult_recording"
                    " WHERE appointment_id = $1",
                    uuid.UUID(appointment),
                )
                if rows and all(r["status"] != "recording" for r in rows):
                    break
                await asyncio.sleep(0.2)
    finally:
        await connection.close()
    return [(r["status"], r["end_reason"], r["video_frames"] > 10) for r in rows]


def test_patient_and_doctor_on_two_workers(
    two_servers: list[str],  # noqa: F811 - the fixture imported above
    environment: dict[str, str],
) -> None:
    seeded = json.loads(
        subprocess.run(
            [sys.executable, "-m", "tests.support.consult_seed"],
            env=environment,
            check=True,
            capture_output=True,
            text=True,
            timeout=120,
            cwd=ROOT,
        ).stdout
    )
    appointment = seeded["appointment_id"]
    first, second = two_servers
    configure_ice(host_addresses=("127.0.0.1",))

    async def consult() -> None:
        patient_seat = ticket(first, appointment, seeded["patient_token"])
        doctor_seat = ticket(second, appointment, seeded["doctor_token"])
        async with joined(first, patient_seat) as (patient, patient_joined):
            assert patient_joined["status"] == "waiting"
            async with joined(second, doctor_seat) as (doctor, doctor_joined):
                me = patient_joined["participant"]
                assert [p["participant"] for p in doctor_joined["peers"]] == [me]
                await doctor.send(type="admit", participant=me)
                await patient.expect("admitted", participant=me)  # across the two workers

                caller = RTCPeerConnection(rtc_configuration([]))
                callee = RTCPeerConnection(rtc_configuration([]))
                to_patient, to_doctor = listen(caller), listen(callee)
                try:
                    caller.addTrack(VideoStreamTrack())
                    callee.addTrack(VideoStreamTrack())
                    await caller.setLocalDescription(await caller.createOffer())
                    assert "127.0.0.1" in caller.localDescription.sdp
                    await patient.send(type="offer", sdp=caller.localDescription.sdp)
                    offer = await doctor.expect("offer")
                    await callee.setRemoteDescription(RTCSessionDescription(offer["sdp"], "offer"))
                    await callee.setLocalDescription(await callee.createAnswer())
                    await doctor.send(type="answer", sdp=callee.localDescription.sdp)
                    answer = await patient.expect("answer")
                    await caller.setRemoteDescription(
                        RTCSessionDescription(answer["sdp"], "answer")
                    )
                    both = await asyncio.gather(
                        frames_from(to_patient, 10), frames_from(to_doctor, 10)
                    )
                    assert both == [10, 10]  # video both ways, peer to peer
                    await record_across_workers(
                        patient, doctor, first, appointment, seeded["patient_token"]
                    )
                    recorded = await recordings(environment["TSUNAGU_DATABASE_URL"], appointment)
                    assert recorded == [("done", "stopped", True)]
                finally:
                    await caller.close()
                    await callee.close()

                # The patient's websocket drops: the doctor sees "reconnecting", not "left".
                patient.socket.transport.abort()
                await doctor.expect("presence", peer__participant=me, peer__presence="reconnecting")
                again = ticket(second, appointment, seeded["patient_token"])
                async with joined(second, again) as (back, rejoined):
                    assert rejoined["resumed"] is True
                    assert rejoined["status"] in ("admitted", "in_call")
                    await doctor.expect(
                        "presence", peer__participant=me, peer__presence="connected"
                    )
                    await doctor.send(type="end")
                    with_code = None
                    try:
                        async with asyncio.timeout(15):
                            while True:
                                await back.socket.recv()
                    except websockets.ConnectionClosed as closed:
                        with_code = closed.rcvd.code if closed.rcvd else None
                    assert with_code == 4010

    asyncio.run(consult())
    mine = httpx.get(
        f"{first}/api/v1/appointments",
        headers={"Authorization": f"Bearer {seeded['patient_token']}"},
        timeout=10,
    ).json()["appointments"]
    assert [a["status"] for a in mine] == ["done"]
