"""Booking benchmark: free-slot search cost, and hold throughput under contention on PostgreSQL.

    .venv/bin/python bench/booking.py [--clients 64 --slots 4 --seconds 20]

(a) Search, in this process: ``booking.availability.free_slots`` for a clinic of 5 practitioners
    (two ranges a day, Mon-Sat, Japanese public holidays, a clinic holiday, a leave afternoon and
    300 existing bookings each) over 90 days, ``--search-repeats`` times. Reported: p50/p99 of one
    clinic search (5 calls), and two ratios measured in the same loop: to one ``free_slots`` call
    for 1 day (what ``hold()`` runs twice per request), and to building the same number of
    ``Slot`` objects from precomputed datetimes (the output alone).
(b) Contention: a fresh PostgreSQL database (dropped at the end), ``tsunagu migrate``, one clinic
    and a menu of capacity 2 whose doctor works all day, ``--clients`` patients with bearer tokens
    (``tests/support/race_seed.py``), two uvicorn processes on two ports. ``--clients`` async
    clients POST ``/api/v1/holds`` on ``--slots`` slots at a time; when the batch is full they
    move to the next ``--slots`` free slots. Reported: decided holds/s (201 + 409 answers) and
    successful holds/s, as ratios to raw asyncpg single-row INSERT transactions (same database,
    same number of tasks, a pool as large as the two servers' pools together) measured before
    and after. The database is then checked: no (practitioner, cell, seat) claimed twice and no
    slot with more live appointments than its capacity, else the script fails. Also the
    end-to-end ``GET .../slots`` as a ratio to ``/healthz`` on the same servers.

Every loop is bounded in count and in time. Results go to ``bench/results/booking.json``. See
``bench/README.md`` for how to read them.
"""

from __future__ import annotations

import sys
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
# This file is bench/booking.py: with bench/ first on sys.path, `import booking` would import this
# script instead of the booking package. Put the repository first and bench/ last.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != BENCH_DIR]
sys.path.insert(0, str(REPO))
sys.path.append(str(BENCH_DIR))

import argparse  # noqa: E402
import asyncio  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import platform  # noqa: E402
import random  # noqa: E402
import signal  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from collections import Counter  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from datetime import datetime, timedelta  # noqa: E402
from datetime import time as clock_time  # noqa: E402
from typing import Any  # noqa: E402
from urllib.parse import urlsplit, urlunsplit  # noqa: E402
from zoneinfo import ZoneInfo  # noqa: E402

from provenance import git_commit, package_version  # noqa: E402 - bench/provenance.py
from run import HOST, Server, free_port, tsunagu_command  # noqa: E402 - bench/run.py

from booking.availability import free_slots  # noqa: E402
from booking.domain import Busy, DateException, Slot, SlotRules, WeeklyRange  # noqa: E402

RESULTS_FILE = BENCH_DIR / "results" / "booking.json"
POSTGRES_ENV = "TSUNAGU_BENCH_POSTGRES_URL"
ZONE = ZoneInfo("Asia/Tokyo")
PRACTITIONERS = 5
SEARCH_DAYS = 90
BOOKINGS_EACH = 300
CAPACITY = 2  # the menu tests/support/race_seed.py creates
APP_POOL_PER_WORKER = 5  # Tortoise's asyncpg default (maxsize=5)
WORKERS = 2
CHILD_TIMEOUT = 120


def _check(condition: object, message: str) -> None:
    """A sanity check that also runs under ``python -O`` (unlike ``assert``)."""
    if not condition:
        raise RuntimeError(f"benchmark sanity check failed: {message}")


def ms(seconds: float) -> float:
    return round(seconds * 1000, 3)


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile (p99 of 100 samples is the 99th smallest)."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(fraction * len(ordered) + 0.4999)))
    return ordered[rank - 1]


# --- (a) free-slot search ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PractitionerInput:
    hours: list[WeeklyRange]
    exceptions: list[DateException]
    busy: list[Busy]


def search_inputs(now: datetime, rules: SlotRules) -> list[PractitionerInput]:
    """Five practitioners: 9:00-12:30 and 15:00-18:30 Mon-Sat (one has Thursdays off), a clinic
    holiday, one leave afternoon each, and ``BOOKINGS_EACH`` bookings on offered slots."""
    rng = random.Random(20260401)  # fixed seed: reproducible inputs
    today = now.astimezone(ZONE).date()
    clinic_holiday = today + timedelta(days=45)
    people = []
    for n in range(PRACTITIONERS):
        weekdays = [d for d in range(6) if not (n == 4 and d == 3)]
        hours = [
            WeeklyRange(d, start, end)
            for d in weekdays
            for start, end in (
                (clock_time(9), clock_time(12, 30)),
                (clock_time(15), clock_time(18, 30)),
            )
        ]
        exceptions = [
            DateException(clinic_holiday, closed=True),
            DateException(today + timedelta(days=10 + 7 * n), True, clock_time(15), clock_time(19)),
            DateException(today + timedelta(days=20 + n), False, clock_time(19), clock_time(20)),
        ]
        offered = free_slots(
            hours=hours,
            exceptions=exceptions,
            busy=[],
            rules=rules,
            zone=ZONE,
            now=now,
            days=SEARCH_DAYS,
        )
        busy = [Busy(s.start, s.end) for s in rng.sample(offered, BOOKINGS_EACH)]
        people.append(PractitionerInput(hours, exceptions, busy))
    return people


def bench_search(repeats: int, budget: float) -> dict[str, Any]:
    rules = SlotRules(duration=timedelta(minutes=15), capacity=1, max_days_ahead=120)
    now = datetime(2026, 4, 1, 8, 0, tzinfo=ZONE)  # a Wednesday; Golden Week is in the window
    people = search_inputs(now, rules)

    def search(days: int, who: list[PractitionerInput]) -> list[list[Slot]]:
        return [
            free_slots(
                hours=p.hours,
                exceptions=p.exceptions,
                busy=p.busy,
                rules=rules,
                zone=ZONE,
                now=now,
                days=days,
            )
            for p in who
        ]

    found = search(SEARCH_DAYS, people)  # also the warm-up (fills the holiday cache)
    slot_count = sum(len(s) for s in found)
    bounds = [(s.start, s.end) for slots in found for s in slots]

    def same_output() -> list[Slot]:
        return [Slot(start, end, 1) for start, end in bounds]

    one_day_slots = len(search(1, people[:1])[0])
    series: dict[str, list[float]] = {"clinic_90_days": [], "one_call_1_day": [], "same_output": []}
    deadline = time.perf_counter() + budget
    done = 0
    for _ in range(repeats):  # bounded in count ...
        if time.perf_counter() >= deadline:  # ... and in time
            break
        start = time.perf_counter()
        search(SEARCH_DAYS, people)
        series["clinic_90_days"].append(time.perf_counter() - start)
        # One 1-day call is ~100x faster: time a batch of 20 and divide.
        start = time.perf_counter()
        for _ in range(20):
            search(1, people[:1])
        series["one_call_1_day"].append((time.perf_counter() - start) / 20)
        start = time.perf_counter()
        same_output()
        series["same_output"].append(time.perf_counter() - start)
        done += 1
    p50 = {name: statistics.median(values) for name, values in series.items()}
    return {
        "practitioners": PRACTITIONERS,
        "days": SEARCH_DAYS,
        "bookings_per_practitioner": BOOKINGS_EACH,
        "slots_returned": slot_count,
        "slots_returned_one_day": one_day_slots,
        "repeats": done,
        "clinic_search_p50_ms": ms(p50["clinic_90_days"]),
        "clinic_search_p99_ms": ms(percentile(series["clinic_90_days"], 0.99)),
        "clinic_search_min_ms": ms(min(series["clinic_90_days"])),
        "one_day_call_p50_ms": ms(p50["one_call_1_day"]),
        "same_output_p50_ms": ms(p50["same_output"]),
        "ratio_to_one_day_call": round(p50["clinic_90_days"] / p50["one_call_1_day"], 1),
        "ratio_to_same_output": round(p50["clinic_90_days"] / p50["same_output"], 2),
        "us_per_slot_returned": round(p50["clinic_90_days"] / slot_count * 1e6, 2),
    }


# --- (b) PostgreSQL, servers, clients ------------------------------------------------------------


def admin_url() -> str:
    from tests.support.databases import POSTGRES_URL  # TSUNAGU_TEST_POSTGRES_URL or its default

    return os.environ.get(POSTGRES_ENV) or POSTGRES_URL


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, "", ""))


async def admin(url: str, statement: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(url, timeout=10)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


def uvicorn_argv(port: int) -> list[str]:
    """Like tests/integration/patient_portal/test_booking_race.py: one worker per process."""
    return [
        sys.executable,
        "-m",
        "uvicorn",
        "patient_portal.asgi:app_from_environment",
        "--factory",
        "--host",
        HOST,
        "--port",
        str(port),
        "--workers",
        "1",
        "--no-access-log",
        "--log-level",
        "warning",
    ]


@dataclass(slots=True)
class Tally:
    statuses: Counter[int] = field(default_factory=Counter)
    latencies: dict[int, list[float]] = field(default_factory=lambda: {201: [], 409: []})
    other_samples: list[str] = field(default_factory=list)
    per_second: Counter[int] = field(default_factory=Counter)  # decided answers per whole second
    holds_per_second: Counter[int] = field(default_factory=Counter)  # 201s per whole second
    last_conflict: str = ""
    batches_filled: int = 0
    exhausted: bool = False
    seconds: float = 0.0


async def contention(
    urls: list[str],
    tokens: list[str],
    menu_id: str,
    batches: list[list[dict[str, Any]]],
    seconds: float,
    max_requests: int,
) -> Tally:
    """Every client POSTs holds on the current batch's not-yet-full slots; a full batch moves
    everyone to the next one. Stops at the deadline, after ``max_requests`` or when the slots
    run out."""
    import httpx

    tally = Tally()
    state = {"batch": 0, "sent": 0}
    held: Counter[str] = Counter()  # 201s per slot start
    limits = httpx.Limits(max_connections=len(tokens), max_keepalive_connections=len(tokens))
    start = time.perf_counter()
    deadline = start + seconds

    async with httpx.AsyncClient(timeout=30, limits=limits, trust_env=False) as client:

        async def one_client(n: int) -> None:
            url = f"{urls[n % len(urls)]}/api/v1/holds"
            headers = {"Authorization": f"Bearer {tokens[n]}"}
            turn = n
            while time.perf_counter() < deadline and state["sent"] < max_requests:
                index = state["batch"]
                if index >= len(batches):
                    tally.exhausted = True
                    return
                batch = batches[index]
                open_slots = [s for s in batch if held[s["start"]] < CAPACITY] or batch
                slot = open_slots[turn % len(open_slots)]
                turn += 1
                state["sent"] += 1
                body = {
                    "clinic": "race",
                    "menu_id": menu_id,
                    "practitioner_id": slot["practitioner_id"],
                    "start": slot["start"],
                }
                sent = time.perf_counter()
                try:
                    response = await client.post(url, json=body, headers=headers)
                except httpx.HTTPError as error:
                    tally.statuses[0] += 1
                    if len(tally.other_samples) < 5:
                        tally.other_samples.append(f"{type(error).__name__}: {error}")
                    continue
                now = time.perf_counter()
                status = response.status_code
                if status == 409 and response.json().get("type") != "urn:tsunagu:problem:conflict":
                    status = -409  # a 409 that is not "just taken": counted as other
                tally.statuses[status] += 1
                if status in (201, 409):
                    tally.latencies[status].append(now - sent)
                    tally.per_second[int(now - start)] += 1
                elif len(tally.other_samples) < 5:
                    tally.other_samples.append(f"{response.status_code}: {response.text[:300]}")
                if status == 409:
                    tally.last_conflict = f"{slot['start']}: {response.text[:400]}"
                if status == 201:
                    tally.holds_per_second[int(now - start)] += 1
                    held[slot["start"]] += 1
                    full = all(held[s["start"]] >= CAPACITY for s in batch)
                    if full and state["batch"] == index:
                        state["batch"] = index + 1
                        tally.batches_filled += 1

        async with asyncio.timeout(seconds + 60):  # a stuck request cannot hold the run
            await asyncio.gather(*(one_client(n) for n in range(len(tokens))))
    tally.seconds = time.perf_counter() - start
    return tally


async def insert_baseline(
    url: str, tasks: int, pool_size: int, seconds: float, cap: int, table: str
) -> dict[str, Any]:
    """``tasks`` tasks each run single-row INSERT transactions through one asyncpg pool."""
    import asyncpg

    counter = {"next": 0, "done": 0}
    pool = await asyncpg.create_pool(url, min_size=pool_size, max_size=pool_size)
    try:
        await pool.execute(f"TRUNCATE {table}")  # both baseline runs start from an empty table
        start = time.perf_counter()
        deadline = start + seconds

        async def worker() -> None:
            while time.perf_counter() < deadline and counter["next"] < cap:
                key = counter["next"]
                counter["next"] += 1
                async with pool.acquire() as conn, conn.transaction():
                    await conn.execute(
                        f"INSERT INTO {table} (k, seat, created_at) VALUES ($1, 0, now())",  # noqa: S608
                        key,
                    )
                counter["done"] += 1

        async with asyncio.timeout(seconds + 60):
            await asyncio.gather(*(worker() for _ in range(tasks)))
        elapsed = time.perf_counter() - start
    finally:
        await pool.close()
    return {
        "inserts": counter["done"],
        "seconds": round(elapsed, 3),
        "per_second": round(counter["done"] / elapsed, 1),
    }


async def get_load(
    urls: list[str], path: str, seconds: float, concurrency: int, cap: int
) -> dict[str, Any]:
    """Keep-alive GETs of ``path`` from ``concurrency`` tasks, alternating the two servers."""
    import httpx

    counts: Counter[int] = Counter()
    size = 0
    start = time.perf_counter()
    deadline = start + seconds
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(timeout=30, limits=limits, trust_env=False) as client:

        async def task(n: int) -> None:
            nonlocal size
            while time.perf_counter() < deadline and counts.total() < cap:
                response = await client.get(urls[n % len(urls)] + path)
                counts[response.status_code] += 1
                size = len(response.content)

        async with asyncio.timeout(seconds + 60):
            await asyncio.gather(*(task(n) for n in range(concurrency)))
    elapsed = time.perf_counter() - start
    ok = counts[200]
    return {
        "requests": counts.total(),
        "non_200": counts.total() - ok,
        "per_second": round(ok / elapsed, 1),
        "bytes": size,
    }


OVERBOOKING_QUERIES = {
    # The unique constraint should make this impossible; the benchmark checks anyway.
    "seat_claimed_twice": """
        SELECT count(*) FROM (
            SELECT practitioner_id, cell_start, seat FROM booking_seat_claim
            GROUP BY 1, 2, 3 HAVING count(*) > 1) AS twice""",
    "cell_over_capacity": """
        SELECT count(*) FROM (
            SELECT c.practitioner_id, c.cell_start
            FROM booking_seat_claim c
            JOIN booking_appointment a ON a.id = c.appointment_id
            JOIN booking_menu m ON m.id = a.menu_id
            WHERE a.status IN ('held', 'booked')
            GROUP BY 1, 2 HAVING count(DISTINCT a.id) > max(m.capacity)) AS over""",
    "slot_over_capacity": """
        SELECT count(*) FROM (
            SELECT a.practitioner_id, a.starts_at
            FROM booking_appointment a JOIN booking_menu m ON m.id = a.menu_id
            WHERE a.status IN ('held', 'booked')
            GROUP BY 1, 2 HAVING count(*) > max(m.capacity)) AS over""",
    "live_appointment_without_claim": """
        SELECT count(*) FROM booking_appointment a
        WHERE a.status IN ('held', 'booked')
          AND NOT EXISTS (SELECT 1 FROM booking_seat_claim c WHERE c.appointment_id = a.id)""",
}


async def overbooking_check(url: str) -> dict[str, int]:
    import asyncpg

    conn = await asyncpg.connect(url, timeout=10)
    try:
        found = {name: int(await conn.fetchval(sql)) for name, sql in OVERBOOKING_QUERIES.items()}
        found["held_in_database"] = int(
            await conn.fetchval("SELECT count(*) FROM booking_appointment WHERE status = 'held'")
        )
        found["seat_claims"] = int(await conn.fetchval("SELECT count(*) FROM booking_seat_claim"))
    finally:
        await conn.close()
    return found


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of one process so far (Linux /proc; 0.0 elsewhere)."""
    stat = Path(f"/proc/{pid}/stat")
    if not stat.exists():
        return 0.0
    fields = stat.read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_child(argv: list[str], env: dict[str, str]) -> str:
    result = subprocess.run(
        argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=CHILD_TIMEOUT, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[:3])} failed:\n{result.stderr[-2000:]}")
    return result.stdout


def bench_contention(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    import httpx

    base = admin_url()
    name = f"tsunagu_bench_booking_{uuid.uuid4().hex[:8]}"
    url = with_database(base, name)
    asyncio.run(admin(base, f'CREATE DATABASE "{name}"'))
    servers: list[Server] = []
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith("TSUNAGU_")}
        env |= {
            "TSUNAGU_DATABASE_URL": url,
            "TSUNAGU_DATA_DIR": str(work / "var"),
            "TSUNAGU_LOG_LEVEL": "WARNING",
            "PYTHONPATH": str(REPO),
        }
        print("migrating and seeding a fresh PostgreSQL database ...", flush=True)
        run_child([*tsunagu_command(), "migrate"], env)
        seeded = json.loads(
            run_child([sys.executable, "-m", "tests.support.race_seed", str(args.clients)], env)
        )
        tokens, menu_id = seeded["tokens"], seeded["menu_id"]
        _check(len(tokens) == args.clients, "one token per client")

        table = "bench_insert_baseline"
        asyncio.run(
            admin(
                url,
                f"CREATE TABLE {table} (id bigserial PRIMARY KEY, k bigint NOT NULL,"
                " seat int NOT NULL, created_at timestamptz NOT NULL, UNIQUE (k, seat))",
            )
        )
        pool_size = APP_POOL_PER_WORKER * WORKERS

        def baseline(label: str) -> dict[str, Any]:
            asyncio.run(  # warm-up, not recorded: the pool's connections and the plan cache
                insert_baseline(url, args.clients, pool_size, 1.0, args.max_requests, table)
            )
            result = asyncio.run(
                insert_baseline(
                    url, args.clients, pool_size, args.baseline_seconds, args.max_requests, table
                )
            )
            print(f"  asyncpg INSERT baseline ({label}): {result['per_second']:.0f} inserts/s")
            return result

        ports = [free_port() for _ in range(WORKERS)]
        urls = [f"http://{HOST}:{port}" for port in ports]
        for n, port in enumerate(ports):
            servers.append(Server(f"tsunagu{n}", uvicorn_argv(port), env, work / f"s{n}.log"))
        for server in servers:
            server.start()
        for server, server_url in zip(servers, urls, strict=True):
            server.wait_ready(f"{server_url}/readyz", timeout=60)

        slots_path = f"/api/v1/clinics/race/menus/{menu_id}/slots"
        with httpx.Client(timeout=30, trust_env=False) as client:
            offered = client.get(f"{urls[0]}{slots_path}?days=31").json()["slots"]
        # Far enough from now that no slot turns into the past during the run.
        cutoff = datetime.now(ZONE) + timedelta(hours=1)
        offered = [s for s in offered if datetime.fromisoformat(s["start"]) > cutoff]
        _check(all(s["free_seats"] == CAPACITY for s in offered), "fresh slots are empty")
        batches = [
            offered[i : i + args.slots] for i in range(0, len(offered) - args.slots + 1, args.slots)
        ]
        print(f"  {len(offered)} free slots, {len(batches)} batches of {args.slots}", flush=True)

        before = baseline("before")
        print(
            f"  {args.clients} clients on {args.slots} slots x {CAPACITY} seats,"
            f" {args.seconds:.0f} s ...",
            flush=True,
        )
        cpu_before = [cpu_seconds(server.pid) for server in servers], time.process_time()
        tally = asyncio.run(
            contention(urls, tokens, menu_id, batches, args.seconds, args.max_requests)
        )
        cpu = {
            "servers_s": [
                round(cpu_seconds(server.pid) - before, 2)
                for server, before in zip(servers, cpu_before[0], strict=True)
            ],
            "client_s": round(time.process_time() - cpu_before[1], 2),
        }
        after = baseline("after")

        end_to_end: dict[str, Any] = {}
        if not args.no_http_search:
            rounds: dict[str, list[dict[str, Any]]] = {"healthz": [], "slots_7_days": []}
            for _ in range(2):  # interleaved
                for key, path in (("healthz", "/healthz"), ("slots_7_days", slots_path)):
                    rounds[key].append(
                        asyncio.run(get_load(urls, path, args.http_seconds, 16, args.max_requests))
                    )
            medians = {k: statistics.median(r["per_second"] for r in v) for k, v in rounds.items()}
            end_to_end = {
                "concurrency": 16,
                "seconds_each": args.http_seconds,
                "rounds": rounds,
                "healthz_per_second": medians["healthz"],
                "slots_per_second": medians["slots_7_days"],
                "slots_response_bytes": rounds["slots_7_days"][-1]["bytes"],
                "ratio_to_healthz": round(medians["slots_7_days"] / medians["healthz"], 3),
                "non_200": sum(r["non_200"] for v in rounds.values() for r in v),
            }
        logs = {server.name: server.log_tail() for server in servers}
        for server in servers:
            server.stop()
        check = asyncio.run(overbooking_check(url))
    finally:
        for server in servers:
            server.stop()
        asyncio.run(admin(base, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))

    decided = tally.statuses[201] + tally.statuses[409]
    inserts = statistics.mean([before["per_second"], after["per_second"]])
    every = tally.latencies[201] + tally.latencies[409] or [0.0]
    timeline = [tally.per_second[s] for s in range(int(tally.seconds) + 1)]
    half = max(1, len(timeline) // 2)
    return {
        "database": "PostgreSQL, fresh database, dropped afterwards",
        "servers": f"{WORKERS} uvicorn processes (one worker each) on two ports;"
        " client n uses server n % 2",
        "clients": args.clients,
        "slots_per_batch": args.slots,
        "capacity": CAPACITY,
        "seconds": round(tally.seconds, 3),
        "requests": tally.statuses.total(),
        "status_counts": {str(k): v for k, v in sorted(tally.statuses.items())},
        "other_samples": tally.other_samples,
        "batches_filled": tally.batches_filled,
        "timeline_decided": [tally.per_second[s] for s in range(int(tally.seconds) + 1)],
        "timeline_holds": [tally.holds_per_second[s] for s in range(int(tally.seconds) + 1)],
        "last_conflict": tally.last_conflict,
        "slots_exhausted": tally.exhausted,
        "decided_per_second": round(decided / tally.seconds, 1),
        "holds_per_second": round(tally.statuses[201] / tally.seconds, 1),
        "conflicts_per_hold": round(tally.statuses[409] / max(1, tally.statuses[201]), 2),
        "decided_per_second_first_half": round(statistics.mean(timeline[:half]), 1),
        "decided_per_second_second_half": round(statistics.mean(timeline[half:] or [0]), 1),
        "latency_p50_ms": ms(statistics.median(every)),
        "latency_p99_ms": ms(percentile(every, 0.99)),
        "latency_p50_ms_201": ms(statistics.median(tally.latencies[201] or [0.0])),
        "latency_p50_ms_409": ms(statistics.median(tally.latencies[409] or [0.0])),
        "cpu_during_contention": cpu | {"wall_s": round(tally.seconds, 2)},
        "baseline": {
            "what": f"asyncpg single-row INSERT transactions, {args.clients} tasks,"
            f" pool of {pool_size} ({WORKERS} servers x Tortoise's default {APP_POOL_PER_WORKER})",
            "before": before,
            "after": after,
            "inserts_per_second": round(inserts, 1),
        },
        "ratio_decided_to_inserts": round(decided / tally.seconds / inserts, 4),
        "ratio_holds_to_inserts": round(tally.statuses[201] / tally.seconds / inserts, 4),
        "database_check": check,
        "over_booking": sum(check[k] for k in OVERBOOKING_QUERIES),
        "holds_match_database": check["held_in_database"] == tally.statuses[201],
        "end_to_end_search": end_to_end,
        "server_log_tails": logs,
    }


# --- the run -------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=64, help="concurrent clients (64)")
    parser.add_argument("--slots", type=int, default=4, help="slots contended at once (4)")
    parser.add_argument("--seconds", type=float, default=20, help="contention seconds (20)")
    parser.add_argument(
        "--baseline-seconds", type=float, default=5, help="INSERT baseline seconds, x2 (5)"
    )
    parser.add_argument(
        "--max-requests", type=int, default=100_000, help="cap per measurement (100000)"
    )
    parser.add_argument("--search-repeats", type=int, default=100, help="clinic searches (100)")
    parser.add_argument(
        "--search-budget", type=float, default=20, help="seconds after which searches stop (20)"
    )
    parser.add_argument("--http-seconds", type=float, default=3, help="GET load, each (3)")
    parser.add_argument("--no-http-search", action="store_true", help="skip the GET comparison")
    parser.add_argument("--no-contention", action="store_true", help="only the search (a)")
    parser.add_argument("--output", type=Path, default=RESULTS_FILE, help="JSON results file")
    args = parser.parse_args(argv)
    for name in ("clients", "slots", "max_requests", "search_repeats"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    for name in ("seconds", "baseline_seconds", "search_budget", "http_seconds"):
        if getattr(args, name) <= 0:
            parser.error(f"--{name.replace('_', '-')} must be positive")
    return args


def print_report(report: dict[str, Any]) -> None:
    s = report["search"]
    print(
        f"\n(a) free-slot search: {s['practitioners']} practitioners x {s['days']} days,"
        f" {s['bookings_per_practitioner']} bookings each, {s['slots_returned']} slots returned,"
        f" {s['repeats']} repeats"
    )
    print(
        f"    clinic search p50 {s['clinic_search_p50_ms']:.1f} ms, p99"
        f" {s['clinic_search_p99_ms']:.1f} ms ({s['us_per_slot_returned']:.1f} µs per slot)"
    )
    print(
        f"    one free_slots call, 1 day: {s['one_day_call_p50_ms']:.3f} ms  ->  ratio"
        f" {s['ratio_to_one_day_call']:.0f}x"
    )
    print(
        f"    building the same {s['slots_returned']} Slot objects: {s['same_output_p50_ms']:.1f}"
        f" ms  ->  ratio {s['ratio_to_same_output']:.1f}x"
    )
    c = report.get("contention")
    if not c:
        return
    print(
        f"\n(b) holds under contention: {c['clients']} clients, {c['slots_per_batch']} slots x"
        f" {c['capacity']} seats per batch, {c['seconds']:.1f} s, 2 uvicorn processes, PostgreSQL"
    )
    print(
        f"    answers: {c['status_counts']}  ({c['batches_filled']} batches filled,"
        f" {c['conflicts_per_hold']:.1f} conflicts per hold)"
    )
    print(
        f"    decided {c['decided_per_second']:.1f}/s (first half"
        f" {c['decided_per_second_first_half']:.1f}, second half"
        f" {c['decided_per_second_second_half']:.1f}), holds {c['holds_per_second']:.1f}/s,"
        f" latency p50 {c['latency_p50_ms']:.0f} ms p99 {c['latency_p99_ms']:.0f} ms"
    )
    cpu = c["cpu_during_contention"]
    print(
        f"    latency p50 of 201s {c['latency_p50_ms_201']:.0f} ms, of 409s"
        f" {c['latency_p50_ms_409']:.0f} ms; CPU s in {cpu['wall_s']:.0f} s: servers"
        f" {' + '.join(f'{x:.1f}' for x in cpu['servers_s'])}, load generator {cpu['client_s']:.1f}"
    )
    b = c["baseline"]
    print(
        f"    asyncpg INSERT baseline: {b['inserts_per_second']:.0f}/s (before"
        f" {b['before']['per_second']:.0f}, after {b['after']['per_second']:.0f})"
    )
    print(
        f"    ratio decided/inserts {c['ratio_decided_to_inserts']:.4f}"
        f" (1 : {1 / c['ratio_decided_to_inserts']:.0f}),"
        f" holds/inserts {c['ratio_holds_to_inserts']:.4f}"
    )
    e = c["end_to_end_search"]
    if e:
        print(
            f"    GET slots (7 days, {e['slots_response_bytes']} bytes) {e['slots_per_second']:.0f}"
            f" req/s vs /healthz {e['healthz_per_second']:.0f} req/s -> ratio"
            f" {e['ratio_to_healthz']:.3f}"
            + (f"  ({e['non_200']} non-200)" if e["non_200"] else "")
        )
    check = c["database_check"]
    print(f"    database: {check}")
    print(f"over-booking: {c['over_booking']}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # SIGTERM and Ctrl+C both unwind through the `finally` blocks that stop servers and drop
    # the database.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    signal.signal(signal.SIGINT, signal.default_int_handler)
    print("(a) free-slot search ...", flush=True)
    report: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "commit": git_commit(),
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "starlette": package_version("starlette"),
            "tortoise-orm": package_version("tortoise-orm"),
            "uvicorn": package_version("uvicorn"),
            "asyncpg": package_version("asyncpg"),
            "httpx": package_version("httpx"),
        },
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "search": bench_search(args.search_repeats, args.search_budget),
    }
    if not args.no_contention:
        with tempfile.TemporaryDirectory(prefix="tsunagu-bench-booking-") as tmp:
            report["contention"] = bench_contention(args, Path(tmp))
    print_report(report)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2, ensure_ascii=False, default=str) + "\n")
    print(f"\nwritten: {args.output}")
    contended = report.get("contention")
    if contended and (contended["over_booking"] or not contended["holds_match_database"]):
        print("bench: OVER-BOOKING or lost holds: see database_check above", file=sys.stderr)
        return 1
    if contended and set(contended["status_counts"]) - {"201", "409"}:
        print("bench: answers other than 201/409: see other_samples", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("\nbench: interrupted; servers stopped and database dropped", file=sys.stderr)
        sys.exit(130)
