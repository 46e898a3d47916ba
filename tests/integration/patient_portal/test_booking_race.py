"""Dozens of patients race for a few seats through two server processes on PostgreSQL.

The database alone decides: whatever process answers, occupancy never exceeds capacity, and
every request gets a clear answer — booked (201) or "just taken" (409) with alternatives.
This test always uses PostgreSQL (the deployment that runs several processes), in both runs.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
import pytest

from tests.support.databases import POSTGRES_URL, run_sync
from tests.support.live_server import free_port

PATIENTS = 36
SLOTS = 3
CAPACITY = 2
ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def race_database() -> Iterator[str]:
    name = f"tsunagu_race_{uuid.uuid4().hex[:8]}"

    async def admin(statement: str) -> None:
        conn = await asyncpg.connect(POSTGRES_URL, timeout=10)
        try:
            await conn.execute(statement)
        finally:
            await conn.close()

    run_sync(admin(f'CREATE DATABASE "{name}"'))
    parts = urlsplit(POSTGRES_URL)
    try:
        yield urlunsplit((parts.scheme, parts.netloc, "/" + name, "", ""))
    finally:
        run_sync(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
def environment(race_database: str, tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TSUNAGU_")}
    env.update(
        TSUNAGU_DATABASE_URL=race_database,
        TSUNAGU_DATA_DIR=str(tmp_path / "var"),
        TSUNAGU_ICE_HOST_ADDRESSES="127.0.0.1",
        TSUNAGU_LOG_LEVEL="WARNING",
        PYTHONPATH=str(ROOT),
    )
    tsunagu = str(Path(sys.executable).with_name("tsunagu"))
    subprocess.run([tsunagu, "migrate"], env=env, check=True, capture_output=True, timeout=120)
    return env


@pytest.fixture
def two_servers(environment: dict[str, str], tmp_path: Path) -> Iterator[list[str]]:
    processes, urls, logs = [], [], []
    try:
        for n in range(2):
            port = free_port()
            log = (tmp_path / f"server{n}.log").open("w")
            logs.append(log)
            processes.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "uvicorn",
                        "patient_portal.asgi:app_from_environment",
                        "--factory",
                        "--host",
                        "127.0.0.1",
                        "--port",
                        str(port),
                        "--no-access-log",
                        "--log-level",
                        "warning",
                    ],
                    env=environment,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
            urls.append(f"http://127.0.0.1:{port}")
        deadline = time.monotonic() + 60
        for url in urls:
            while True:
                try:
                    if httpx.get(url + "/readyz", timeout=2).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, "servers did not start"
                time.sleep(0.2)
        yield urls
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for log in logs:
            log.close()


def test_no_double_booking_across_two_processes(
    environment: dict[str, str], two_servers: list[str]
) -> None:
    seeded = json.loads(
        subprocess.run(
            [sys.executable, "-m", "tests.support.race_seed", str(PATIENTS)],
            env=environment,
            check=True,
            capture_output=True,
            text=True,
            timeout=120,
            cwd=ROOT,
        ).stdout
    )
    menu = seeded["menu_id"]
    slots = httpx.get(f"{two_servers[0]}/api/v1/clinics/race/menus/{menu}/slots").json()["slots"]
    chosen = slots[:SLOTS]
    assert all(slot["free_seats"] == CAPACITY for slot in chosen)

    async def race() -> list[tuple[str, int, dict[str, object]]]:
        async with httpx.AsyncClient(timeout=30) as client:

            async def one(n: int) -> tuple[str, int, dict[str, object]]:
                slot = chosen[n % SLOTS]
                response = await client.post(
                    f"{two_servers[n % 2]}/api/v1/holds",
                    json={
                        "clinic": "race",
                        "menu_id": menu,
                        "practitioner_id": slot["practitioner_id"],
                        "start": slot["start"],
                    },
                    headers={"Authorization": f"Bearer {seeded['tokens'][n]}"},
                )
                return slot["start"], response.status_code, response.json()

            return await asyncio.gather(*(one(n) for n in range(PATIENTS)))

    results = asyncio.run(race())
    statuses = Counter(status for _, status, _ in results)
    assert set(statuses) <= {201, 409}, statuses  # every request got a clear answer, no 5xx
    held = Counter(start for start, status, _ in results if status == 201)
    assert held == {slot["start"]: CAPACITY for slot in chosen}  # full, never over
    for _, status, body in results:
        if status == 409:
            assert body["type"] == "urn:tsunagu:problem:conflict"
            assert "alternatives" in body
    after = httpx.get(f"{two_servers[1]}/api/v1/clinics/race/menus/{menu}/slots").json()["slots"]
    assert not {slot["start"] for slot in after} & {slot["start"] for slot in chosen}
