"""The ``tsunagu`` console script, run as a user runs it: a separate process."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from patient_portal.settings import Settings
from tests.support.live_server import free_port

TSUNAGU = str(Path(sys.executable).with_name("tsunagu"))


def run(*args: str, env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [TSUNAGU, *args], env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


@pytest.fixture
def clean_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TSUNAGU_")}
    env["TSUNAGU_DATA_DIR"] = str(tmp_path / "var")
    return env


def test_check_config_masks_secrets(clean_env: dict[str, str]) -> None:
    env = {
        **clean_env,
        "TSUNAGU_SECRET_KEY": "s" * 40,
        "TSUNAGU_DATABASE_URL": "postgres://app:db-password-1@127.0.0.1:5432/tsunagu",
        "TSUNAGU_PAYMENT_PROVIDER": "stripe",
        "TSUNAGU_STRIPE_SECRET_KEY": "stripe-key-value",
        "TSUNAGU_STRIPE_WEBHOOK_SECRET": "stripe-webhook-value",
    }
    result = run("check-config", env=env)
    assert result.returncode == 0, result.stderr
    for secret in ("s" * 40, "db-password-1", "stripe-key-value", "stripe-webhook-value"):
        assert secret not in result.stdout
    assert "TSUNAGU_DATABASE_URL" in result.stdout
    assert "postgres://app:********@127.0.0.1:5432/tsunagu" in result.stdout
    assert "configuration is valid" in result.stdout


@pytest.mark.parametrize("command", ["check-config", "migrate", "serve", "worker", "demo"])
def test_a_wrong_value_stops_every_command_with_one_line(
    clean_env: dict[str, str], command: str
) -> None:
    env = {**clean_env, "TSUNAGU_DATABASE_URL": "mysql://root:pw@localhost/tsunagu"}
    result = run(command, env=env)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("tsunagu: configuration error: TSUNAGU_DATABASE_URL: ")
    assert "Traceback" not in result.stderr
    assert "pw@" not in result.stderr


def test_migrate_applies_then_reports_up_to_date(
    clean_env: dict[str, str], empty_settings: Settings
) -> None:
    env = {**clean_env, "TSUNAGU_DATABASE_URL": empty_settings.database.tortoise_url}
    first = run("migrate", env=env)
    assert first.returncode == 0, first.stderr
    assert "applied booking.0001_initial" in first.stdout
    assert "applied portal.0001_initial" in first.stdout
    second = run("migrate", env=env)
    assert second.returncode == 0, second.stderr
    assert second.stdout.strip() == "database is up to date"


def test_makemigrations_check_finds_no_missing_migration(clean_env: dict[str, str]) -> None:
    result = run("makemigrations", "--check", env=clean_env)
    assert result.returncode == 0, result.stdout + result.stderr


def test_demo_seeds_once_and_a_second_run_is_safe(clean_env: dict[str, str]) -> None:
    first = run("demo", "--no-serve", env=clean_env)
    assert first.returncode == 0, first.stderr
    assert "つなぐ見本クリニック (4 demo patients)" in first.stdout
    assert "doctor1@demo.tsunagu.invalid" in first.stdout
    assert "mihon-clinic-demo-password" in first.stdout
    assert "http://127.0.0.1:8000/" in first.stdout
    assert "an online consult is ready" in first.stdout
    second = run("demo", "--no-serve", env=clean_env)
    assert second.returncode == 0, second.stderr
    assert "(4 demo patients)" in second.stdout
    database = Path(clean_env["TSUNAGU_DATA_DIR"], "demo.sqlite3")
    with sqlite3.connect(database) as db:
        (ready,) = db.execute(
            "SELECT count(*) FROM booking_appointment a JOIN booking_menu m ON a.menu_id = m.id"
            " WHERE m.mode = 'online' AND a.status = 'booked'"
        ).fetchone()
    assert ready == 1  # one consult kept ready, not one more per start


@pytest.fixture
def demo_server(clean_env: dict[str, str], tmp_path: Path) -> Iterator[str]:
    port = free_port()
    log = tmp_path / "demo.log"
    with log.open("w") as output:
        process = subprocess.Popen(
            [TSUNAGU, "demo", "--port", str(port)],
            env=clean_env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise AssertionError(f"demo exited: {log.read_text()}")
            try:
                if httpx.get(base_url + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        else:
            raise AssertionError("demo did not start within 30 s")
        yield base_url
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_demo_serves_the_japanese_home_page(demo_server: str) -> None:
    response = httpx.get(demo_server + "/", timeout=5)
    assert response.status_code == 200
    assert '<html lang="ja">' in response.text
    assert "つなぐ" in response.text
    assert httpx.get(demo_server + "/readyz", timeout=5).json()["status"] == "ready"
