"""The direction of imports: domain packages never import the portal, siblings stay apart.

The contracts live in pyproject.toml ([tool.importlinter]); this runs them, and proves on a
throw-away tree that a violation would be caught.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = str(Path(sys.executable).with_name("lint-imports"))
PACKAGES = ("patient_portal", "booking", "interview_forms", "video", "clinic_bridge", "device_hub")


def lint_imports(cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(cwd)}
    return subprocess.run(
        [LINT_IMPORTS, "--no-cache"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_repository_keeps_its_import_contracts() -> None:
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Contracts: 2 kept, 0 broken." in result.stdout


def _copy_tree(target: Path) -> None:
    shutil.copy(ROOT / "pyproject.toml", target / "pyproject.toml")
    for package in PACKAGES:
        shutil.copytree(
            ROOT / package, target / package, ignore=shutil.ignore_patterns("__pycache__")
        )


def test_a_domain_package_importing_the_portal_is_caught(tmp_path: Path) -> None:
    _copy_tree(tmp_path)
    (tmp_path / "booking" / "leak.py").write_text(
        "from patient_portal.settings import Settings\n\n__all__ = ['Settings']\n"
    )
    result = lint_imports(tmp_path)
    assert result.returncode != 0
    assert "booking.leak -> patient_portal.settings" in result.stdout


def test_a_sibling_reaching_into_another_is_caught(tmp_path: Path) -> None:
    _copy_tree(tmp_path)
    (tmp_path / "video" / "peek.py").write_text(
        textwrap.dedent(
            """
            from booking.models import Clinic

            __all__ = ["Clinic"]
            """
        )
    )
    result = lint_imports(tmp_path)
    assert result.returncode != 0
    assert "video.peek -> booking.models" in result.stdout
