"""The browser evaluator passes the same vectors as the server engine (Node's built-in runner).

Fails, never skips, when Node is missing: the vectors must run on both sides in CI
(scripts/bootstrap.sh installs nodejs).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]


def test_node_runs_the_shared_vectors_against_the_js_evaluator() -> None:
    node = shutil.which("node")
    assert node is not None, "node is not installed: the JS evaluator cannot be checked"
    result = subprocess.run(
        [node, "--test", "tests/js/"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "# fail 0" in result.stdout
    passed = int(result.stdout.split("# pass ", 1)[1].split()[0])
    assert passed >= 60
