"""A video consult end to end in two headless Chromium windows, inside a network namespace
that has only loopback: waiting room, admit, video both ways, chat, a consented recording of
both sides, a dropped websocket that
reconnects while the call goes on, and the end. The browsers run in a child process
(tests/support/consult_browser_run.py) on the embedded SQLite default."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def test_a_video_consult_in_two_browsers(tmp_path: Path) -> None:
    assert shutil.which("unshare"), "util-linux's unshare is needed for the loopback-only netns"
    env = {k: v for k, v in os.environ.items() if not k.startswith("TSUNAGU_")}
    env.update(
        TSUNAGU_DATA_DIR=str(tmp_path / "var"),
        TSUNAGU_ICE_HOST_ADDRESSES="127.0.0.1",
        TSUNAGU_DATABASE_URL=f"sqlite://{tmp_path / 'consult.sqlite3'}",
        TSUNAGU_LOG_LEVEL="WARNING",
        PYTHONPATH=str(ROOT),
        PATH=f"{Path(sys.executable).parent}:{env.get('PATH', '')}",
    )
    command = f'ip link set lo up && exec "{sys.executable}" -m tests.support.consult_browser_run'
    result = subprocess.run(
        ["unshare", "-n", "sh", "-c", command],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    lines = result.stdout.strip().splitlines()
    assert lines, result.stderr[-3000:]
    report = json.loads(lines[-1])
    assert result.returncode == 0, (report, result.stderr[-3000:])
    assert report["precall"] in ("good", "fair")  # Chromium's fake camera, measured by the server
    assert "接続" in report["precall_advice"]
    assert report["patient_waited"]
    assert report["patient_sees"][0] > 0  # the doctor's camera, at the patient
    assert report["doctor_sees"][0] > 0  # and the patient's, at the doctor
    assert report["phone_fits"]
    assert report["chat"]
    assert "同意" in report["patient_asked"]  # the patient is asked, in plain words
    assert "録画中" in report["recording_shown"]
    assert report["recording_stopped"]
    sides = sorted((r["side"], r["status"]) for r in report["recordings"])
    assert sides == [("patient", "done"), ("staff", "done")]  # both cameras, each sealed
    assert all(r["frames"] > 20 for r in report["recordings"])
    assert report["doctor_saw_reconnecting"]
    assert report["patient_rejoined"]
    assert report["ice_restarted"]
    assert report["patient_video_after_drop"] >= 5  # frames/s still arriving after the drop
    assert report["doctor_video_after_drop"] >= 5
    assert report["doctor_reload_rejoined"]  # a reloaded page rejoins the consult by itself
    assert report["patient_video_after_reload"] >= 5
    assert report["chat_after_reload"]  # the chat so far comes back after the reload
    assert report["ended"]
    assert report["page_errors"] == []
