"""First Tsunagu benchmark: throughput relative to bare Starlette, and resident memory.

    .venv/bin/python bench/run.py [--duration 5 --connections 32 --rounds 3]

Starts two uvicorn servers on free loopback ports with identical flags (one worker, no access
log): the bare Starlette "hello" app (``bench/hello_app.py``, the baseline) and Tsunagu on a
freshly migrated and seeded demo SQLite database in a temporary folder. Each target is loaded for
``--duration`` seconds per round, rounds interleaved; the median requests/s of each Tsunagu target
is reported as a ratio to the median of the baseline from the same run. Also reported: the peak
RSS (VmHWM) of the Tsunagu worker under that load, the RSS of an idle ``tsunagu demo`` and
whether heavy optional libraries are imported by the app. Results go to
``bench/results/latest.json``. See ``bench/README.md`` for how to read them.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any

from provenance import git_commit, package_version  # bench/provenance.py, beside this file

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
RESULTS_FILE = BENCH_DIR / "results" / "latest.json"
HOST = "127.0.0.1"  # all traffic stays on loopback
HEAVY_MODULES = ("aiortc", "av", "stripe", "twilio", "playwright")
IDLE_BUDGET_BYTES = 250 * 10**6  # "the embedded demo idles under 250 MB RSS"
READY_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0
WARMUP_SECONDS = 1
MIB = 2**20
# Direct connections only: a proxy from the environment must never see benchmark traffic.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@dataclass(frozen=True, slots=True)
class Target:
    name: str
    label: str
    server: str  # "hello" or "tsunagu"
    path: str


BASELINE = Target("hello", "bare Starlette hello", "hello", "/")
TARGETS = (
    BASELINE,
    Target("home", "Tsunagu home page (ja)", "tsunagu", "/"),
    Target("api_health", "Tsunagu API health", "tsunagu", "/api/v1/health"),
    Target("healthz", "Tsunagu /healthz probe", "tsunagu", "/healthz"),
)


@dataclass(frozen=True, slots=True)
class Load:
    requests: int
    seconds: float
    requests_per_second: float
    socket_errors: int  # failed connects, reads and writes, and timeouts
    bad_status: int  # responses outside 2xx/3xx

    @property
    def errors(self) -> int:
        return self.socket_errors + self.bad_status


# --- processes -----------------------------------------------------------------------------------


class Server:
    """One server process; ``stop()`` is safe to call at any time, also when it never started."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log_path: Path) -> None:
        self.name = name
        self.argv = argv
        self.env = env
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self) -> None:
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            self.argv,
            cwd=REPO,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl+C reaches only us; we stop the server in `finally`
        )

    def wait_ready(self, url: str, timeout: float = READY_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited early:\n{self.log_tail()}")
            with contextlib.suppress(OSError):
                if fetch(url)[0] == 200:
                    return
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} not ready after {timeout:.0f} s:\n{self.log_tail()}")

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=STOP_TIMEOUT)
        if self._log is not None:
            self._log.close()
            self._log = None

    def log_tail(self, lines: int = 20) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return "(no log)"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def uvicorn_argv(factory: str, port: int) -> list[str]:
    """The same uvicorn command for the baseline and for Tsunagu; only the factory differs."""
    return [
        sys.executable,
        "-m",
        "uvicorn",
        factory,
        "--factory",
        "--app-dir",
        str(BENCH_DIR),
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


def tsunagu_command() -> list[str]:
    script = Path(sys.executable).with_name("tsunagu")
    return [str(script)] if script.exists() else [sys.executable, "-m", "patient_portal.cli"]


def base_env() -> dict[str, str]:
    """The caller's environment without any TSUNAGU_ variable, so runs are comparable."""
    return {k: v for k, v in os.environ.items() if not k.startswith("TSUNAGU_")}


def tsunagu_env(data_dir: Path) -> dict[str, str]:
    return base_env() | {
        "TSUNAGU_MODE": "development",
        "TSUNAGU_DATA_DIR": str(data_dir),
        "TSUNAGU_DATABASE_URL": f"sqlite://{data_dir / 'demo.sqlite3'}",
        "TSUNAGU_LOG_LEVEL": "WARNING",
    }


def fetch(url: str, timeout: float = 2.0) -> tuple[int, str, int]:
    """(status, content type, body length) of a GET, without raising on HTTP errors."""
    try:
        with _OPENER.open(url, timeout=timeout) as response:
            body = response.read()
            return response.status, response.headers.get("content-type", ""), len(body)
    except urllib.error.HTTPError as error:
        return error.code, error.headers.get("content-type", ""), len(error.read())


def memory(pid: int) -> dict[str, float]:
    """Current and peak resident memory (MiB) of one process."""
    status = Path(f"/proc/{pid}/status")
    if status.exists():
        fields = dict(line.split(":", 1) for line in status.read_text().splitlines() if ":" in line)
        kib = {key: int(fields[key].split()[0]) for key in ("VmRSS", "VmHWM")}
        return {"rss_mib": kib["VmRSS"] / 1024, "peak_rss_mib": kib["VmHWM"] / 1024}
    import psutil  # not Linux: no high-water mark, the current RSS is the best we have

    rss = psutil.Process(pid).memory_info().rss / MIB
    return {"rss_mib": rss, "peak_rss_mib": rss}


# --- load generators -----------------------------------------------------------------------------


def ensure_wrk(allow_install: bool) -> str | None:
    found = shutil.which("wrk")
    if found or not allow_install:
        return found
    if shutil.which("apt-get") is None or not hasattr(os, "geteuid") or os.geteuid() != 0:
        return None
    print("wrk not found: installing the Debian package `wrk` with apt-get", flush=True)
    env = os.environ | {"DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "--no-install-recommends", "wrk"]
    for attempt in ([install], [["apt-get", "update"], install]):
        try:
            for command in attempt:
                subprocess.run(command, env=env, check=True, timeout=300, capture_output=True)
        except (OSError, subprocess.SubprocessError):
            continue
        return shutil.which("wrk")
    return None


def wrk_version(wrk: str) -> str:
    result = subprocess.run([wrk, "-v"], capture_output=True, text=True, timeout=10, check=False)
    first = (result.stdout or result.stderr).strip().splitlines()
    return first[0].split(" Copyright")[0] if first else "wrk"


def run_wrk(wrk: str, url: str, duration: int, connections: int, threads: int) -> Load:
    """wrk stops itself after ``duration``; the subprocess timeout is a second, hard bound."""
    argv = [wrk, f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--timeout", "5s", url]
    out = subprocess.run(
        argv, capture_output=True, text=True, timeout=duration + 30, check=True
    ).stdout
    total = re.search(r"(\d+) requests in ([\d.]+)(ms|s|m)\b", out)
    rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if total is None or rate is None:
        raise RuntimeError(f"unexpected wrk output:\n{out}")
    scale = {"ms": 0.001, "s": 1.0, "m": 60.0}[total[3]]
    socket_errors = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    bad_status = int(non_2xx[1]) if non_2xx else 0
    return Load(int(total[1]), float(total[2]) * scale, float(rate[1]), socket_errors, bad_status)


_CONTENT_LENGTH = re.compile(rb"\r\ncontent-length:[ \t]*(\d+)", re.IGNORECASE)


async def _python_load(
    port: int, path: str, duration: int, connections: int, max_requests: int
) -> Load:
    """Keep-alive HTTP/1.1 GETs on ``connections`` sockets until the deadline or the cap."""
    request = f"GET {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\nUser-Agent: bench\r\n\r\n".encode()
    per_connection = max(1, max_requests // connections)
    ok = socket_errors = bad_status = 0
    start = time.perf_counter()
    deadline = start + duration

    async def connection() -> None:
        nonlocal ok, socket_errors, bad_status
        reader: asyncio.StreamReader | None = None
        writer: asyncio.StreamWriter | None = None
        for _ in range(per_connection):  # bounded in count ...
            if time.perf_counter() >= deadline:  # ... and in time
                break
            try:
                if writer is None:
                    reader, writer = await asyncio.open_connection(HOST, port)
                assert reader is not None
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
                length = _CONTENT_LENGTH.search(head)
                if length is None:
                    raise ValueError("response without Content-Length")
                await reader.readexactly(int(length[1]))
                if 200 <= int(head[9:12]) < 400:
                    ok += 1
                else:
                    bad_status += 1
            except (OSError, ValueError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
                socket_errors += 1
                if writer is not None:
                    writer.close()
                reader = writer = None
        if writer is not None:
            writer.close()

    async with asyncio.timeout(duration + 10):  # a stuck socket cannot hold the run
        await asyncio.gather(*(connection() for _ in range(connections)))
    seconds = time.perf_counter() - start
    total = ok + socket_errors + bad_status
    return Load(total, seconds, ok / seconds, socket_errors, bad_status)


def run_python(url_port: int, path: str, duration: int, connections: int, cap: int) -> Load:
    coroutine = _python_load(url_port, path, duration, connections, cap)
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coroutine)
    return uvloop.run(coroutine)


# --- checks run in child processes ---------------------------------------------------------------


def module_check() -> None:
    """Run in a child: build the app, run its start-up, report heavy modules and RSS as JSON."""
    from patient_portal.app import create_app
    from patient_portal.settings import load_settings

    app = create_app(load_settings(os.environ))

    async def start_and_stop() -> None:
        async with app.router.lifespan_context(app):
            pass

    asyncio.run(start_and_stop())
    report = {
        "imported": [name for name in HEAVY_MODULES if name in sys.modules],
        "installed": [name for name in HEAVY_MODULES if importlib.util.find_spec(name)],
        "module_count": len(sys.modules),
        **memory(os.getpid()),
    }
    print(json.dumps(report))


def run_module_check(env: dict[str, str]) -> dict[str, Any]:
    result = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--module-check"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    report: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return report


def seed_demo(env: dict[str, str]) -> None:
    subprocess.run(
        [*tsunagu_command(), "demo", "--no-serve"],
        cwd=REPO,
        env=env,
        capture_output=True,
        timeout=120,
        check=True,
    )


def idle_demo(data_dir: Path, settle: float) -> dict[str, float]:
    """RSS of ``tsunagu demo`` (migrate, seed, serve) ``settle`` seconds after it answers."""
    port = free_port()
    server = Server(
        "tsunagu demo",
        [*tsunagu_command(), "demo", "--host", HOST, "--port", str(port)],
        base_env() | {"TSUNAGU_DATA_DIR": str(data_dir), "TSUNAGU_LOG_LEVEL": "WARNING"},
        data_dir / "demo-server.log",
    )
    try:
        server.start()
        server.wait_ready(f"http://{HOST}:{port}/healthz")
        time.sleep(settle)
        return memory(server.pid)
    finally:
        server.stop()


# --- the run -------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=5, help="seconds per measurement (5)")
    parser.add_argument("--connections", type=int, default=32, help="open connections (32)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (3)")
    parser.add_argument("--threads", type=int, default=1, help="wrk threads (1)")
    parser.add_argument(
        "--loadgen",
        choices=("auto", "wrk", "python"),
        default="auto",
        help="auto: wrk if present or installable with apt-get, else the Python generator",
    )
    parser.add_argument("--no-install", action="store_true", help="never apt-get install wrk")
    parser.add_argument(
        "--max-requests",
        type=int,
        default=2_000_000,
        help="cap per measurement for the Python generator (2000000)",
    )
    parser.add_argument(
        "--budget",
        type=int,
        default=150,
        help="seconds of load after which further rounds are skipped (150)",
    )
    parser.add_argument("--output", type=Path, default=RESULTS_FILE, help="JSON results file")
    parser.add_argument("--module-check", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    for name in ("duration", "connections", "rounds", "threads", "max_requests", "budget"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.threads > args.connections:
        parser.error("--threads cannot exceed --connections")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.module_check:
        module_check()
        return 0

    # SIGTERM and Ctrl+C both unwind through the `finally` blocks that stop the servers.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    signal.signal(signal.SIGINT, signal.default_int_handler)
    wrk = None if args.loadgen == "python" else ensure_wrk(not args.no_install)
    if args.loadgen == "wrk" and wrk is None:
        print("bench: wrk is not available (apt-get install wrk)", file=sys.stderr)
        return 2
    if wrk is not None:
        loadgen = f"{wrk_version(wrk)} ({args.threads} thread(s))"
    else:
        loadgen = "Python asyncio keep-alive generator in bench/run.py (no wrk)"

    def load(port: int, path: str, duration: int) -> Load:
        if wrk is not None:
            url = f"http://{HOST}:{port}{path}"
            return run_wrk(wrk, url, duration, args.connections, args.threads)
        return run_python(port, path, duration, args.connections, args.max_requests)

    print(f"load generator: {loadgen}", flush=True)
    with tempfile.TemporaryDirectory(prefix="tsunagu-bench-") as tmp:
        work = Path(tmp)
        data_dir, demo_dir = work / "data", work / "demo"
        data_dir.mkdir()
        demo_dir.mkdir()
        env = tsunagu_env(data_dir)
        print("seeding a fresh demo database ...", flush=True)
        seed_demo(env)
        modules = run_module_check(env)

        ports = {"hello": free_port(), "tsunagu": free_port()}
        servers = {
            "hello": Server(
                "hello",
                uvicorn_argv("hello_app:create_app", ports["hello"]),
                base_env(),
                work / "hello.log",
            ),
            "tsunagu": Server(
                "tsunagu",
                uvicorn_argv("patient_portal.asgi:app_from_environment", ports["tsunagu"]),
                env,
                work / "tsunagu.log",
            ),
        }
        samples: dict[str, list[Load]] = {target.name: [] for target in TARGETS}
        responses: dict[str, dict[str, Any]] = {}
        skipped_rounds = 0
        try:
            for server in servers.values():
                server.start()
            servers["hello"].wait_ready(f"http://{HOST}:{ports['hello']}/")
            servers["tsunagu"].wait_ready(f"http://{HOST}:{ports['tsunagu']}/healthz")
            idle = {name: memory(server.pid) for name, server in servers.items()}

            for target in TARGETS:
                status, content_type, size = fetch(
                    f"http://{HOST}:{ports[target.server]}{target.path}"
                )
                if status != 200:
                    raise RuntimeError(f"{target.label}: GET {target.path} answered {status}")
                responses[target.name] = {"content_type": content_type, "bytes": size}
                load(ports[target.server], target.path, WARMUP_SECONDS)  # not recorded

            load_deadline = time.monotonic() + args.budget
            for round_index in range(args.rounds):
                if time.monotonic() >= load_deadline:
                    skipped_rounds = args.rounds - round_index
                    print(f"time budget reached: skipping {skipped_rounds} round(s)")
                    break
                shift = round_index % len(TARGETS)  # rotate the order: no target always first
                for target in TARGETS[shift:] + TARGETS[:shift]:
                    result = load(ports[target.server], target.path, args.duration)
                    samples[target.name].append(result)
                    print(
                        f"  round {round_index + 1}/{args.rounds}  {target.label:<26}"
                        f" {result.requests_per_second:>9.0f} req/s  errors:"
                        f" {result.socket_errors} socket, {result.bad_status} status",
                        flush=True,
                    )
            under_load = {name: memory(server.pid) for name, server in servers.items()}
            logs = {name: server.log_tail() for name, server in servers.items()}
        finally:
            for server in servers.values():
                server.stop()

        print("starting an idle `tsunagu demo` ...", flush=True)
        demo = idle_demo(demo_dir, settle=1.0)

    report = summarise(
        args, loadgen, samples, responses, idle, under_load, demo, modules, skipped_rounds
    )
    report["server_log_tails"] = logs  # warnings and errors only (--log-level warning)
    print_report(report)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    print(f"\nwritten: {args.output}")
    return 0


def summarise(
    args: argparse.Namespace,
    loadgen: str,
    samples: dict[str, list[Load]],
    responses: dict[str, dict[str, Any]],
    idle: dict[str, dict[str, float]],
    under_load: dict[str, dict[str, float]],
    demo: dict[str, float],
    modules: dict[str, Any],
    skipped_rounds: int,
) -> dict[str, Any]:
    baseline = statistics.median(s.requests_per_second for s in samples[BASELINE.name])
    targets = []
    for target in TARGETS:
        rates = [s.requests_per_second for s in samples[target.name]]
        median = statistics.median(rates)
        # Each round's ratio uses the baseline measured in that same round.
        paired = [
            rate / base.requests_per_second
            for rate, base in zip(rates, samples[BASELINE.name], strict=True)
        ]
        targets.append(
            {
                "name": target.name,
                "label": target.label,
                "path": target.path,
                "median_rps": round(median, 1),
                "min_rps": round(min(rates), 1),
                "max_rps": round(max(rates), 1),
                "ratio_to_hello": round(median / baseline, 3),
                "median_round_ratio": round(statistics.median(paired), 3),
                "socket_errors": sum(s.socket_errors for s in samples[target.name]),
                "bad_status": sum(s.bad_status for s in samples[target.name]),
                "response": responses[target.name],
                "rounds": [asdict(s) for s in samples[target.name]],
            }
        )

    def rounded(values: dict[str, float]) -> dict[str, float]:
        return {key: round(value, 1) for key, value in values.items()}

    return {
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "commit": git_commit(),
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "starlette": package_version("starlette"),
            "uvicorn": package_version("uvicorn"),
            "uvloop": package_version("uvloop"),
            "httptools": package_version("httptools"),
        },
        "settings": {
            "duration_s": args.duration,
            "connections": args.connections,
            "rounds": args.rounds,
            "skipped_rounds": skipped_rounds,
            "wrk_threads": args.threads,
            "server": "uvicorn --factory --workers 1 --no-access-log --log-level warning",
        },
        "load_generator": loadgen,
        "targets": targets,
        "memory_mib": {
            "hello_idle": rounded(idle["hello"]),
            "hello_after_load": rounded(under_load["hello"]),
            "tsunagu_idle": rounded(idle["tsunagu"]),
            "tsunagu_after_load": rounded(under_load["tsunagu"]),
            "tsunagu_peak_under_load": round(under_load["tsunagu"]["peak_rss_mib"], 1),
            "demo_idle": rounded(demo),
            "demo_idle_under_250_mb": demo["rss_mib"] * MIB < IDLE_BUDGET_BYTES,
        },
        "heavy_modules": modules,
    }


def print_report(report: dict[str, Any]) -> None:
    settings = report["settings"]
    print(
        f"\nTsunagu benchmark  ({report['machine']['cpus']} CPUs, {settings['connections']}"
        f" connections, {settings['duration_s']} s x {settings['rounds']} rounds interleaved)"
    )
    print(f"load generator: {report['load_generator']}\n")
    print(
        f"{'target':<28}{'path':<16}{'req/s (median)':>15}{'min..max':>14}"
        f"{'ratio':>7}{'per-round':>11}"
    )
    for t in report["targets"]:
        spread = f"{t['min_rps']:.0f}..{t['max_rps']:.0f}"
        print(
            f"{t['label']:<28}{t['path']:<16}{t['median_rps']:>15.0f}{spread:>14}"
            f"{t['ratio_to_hello']:>7.2f}{t['median_round_ratio']:>11.2f}"
            + (f"  ({t['socket_errors']} socket errors)" if t["socket_errors"] else "")
            + (f"  ({t['bad_status']} non-2xx/3xx)" if t["bad_status"] else "")
        )
    memory_mib = report["memory_mib"]
    print(f"\n{'memory (MiB)':<44}{'RSS':>8}{'peak (VmHWM)':>14}")
    rows = [
        ("hello server, idle", memory_mib["hello_idle"]),
        ("hello server, after load", memory_mib["hello_after_load"]),
        ("Tsunagu server, idle", memory_mib["tsunagu_idle"]),
        ("Tsunagu server, after load", memory_mib["tsunagu_after_load"]),
        ("`tsunagu demo`, idle 1 s after ready", memory_mib["demo_idle"]),
    ]
    for label, values in rows:
        print(f"{label:<44}{values['rss_mib']:>8.1f}{values['peak_rss_mib']:>14.1f}")
    verdict = "yes" if memory_mib["demo_idle_under_250_mb"] else "NO"
    print(f"idle demo under 250 MB: {verdict}")
    heavy = report["heavy_modules"]
    print(
        f"heavy modules imported by create_app + start-up ({', '.join(HEAVY_MODULES)}): "
        f"{', '.join(heavy['imported']) or 'none'}"
        f" (installed: {', '.join(heavy['installed']) or 'none'};"
        f" {heavy['module_count']} modules loaded)"
    )


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("\nbench: interrupted; servers stopped", file=sys.stderr)
        sys.exit(130)
