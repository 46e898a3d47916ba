"""The shared test vectors (interview_forms/vectors/*.json), also run by the JS evaluator."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import interview_forms

VECTORS = Path(interview_forms.__file__).parent / "vectors"


@dataclass(frozen=True)
class Case:
    file: str
    name: str
    questionnaire: dict[str, Any]
    answers: dict[str, Any]
    expected: dict[str, Any]

    @property
    def id(self) -> str:
        return f"{self.file}: {self.name}"


def files() -> list[Path]:
    return sorted(VECTORS.glob("*.json"))


def cases() -> list[Case]:
    out = []
    for path in files():
        document = json.loads(path.read_text(encoding="utf-8"))
        for case in document["cases"]:
            out.append(
                Case(
                    path.stem,
                    case["name"],
                    document["questionnaire"],
                    case["answers"],
                    case["expected"],
                )
            )
    return out


def same_numbers(actual: dict[str, Any], expected: dict[str, Any]) -> bool:
    """Computed values agree (floats within 1e-9 relative: FHIRPath decimals vs doubles)."""
    if actual.keys() != expected.keys():
        return False
    for key, value in expected.items():
        got = actual[key]
        if isinstance(value, float) or isinstance(got, float):
            if not math.isclose(got, value, rel_tol=1e-9, abs_tol=1e-12):
                return False
        elif got != value or type(got) is not type(value):
            return False
    return True
