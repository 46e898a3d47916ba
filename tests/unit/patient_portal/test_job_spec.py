"""The pure part of jobs: backoff, specs, the registry and enqueue validation."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from enum import Enum
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from patient_portal.jobs import (
    DuplicateJob,
    InvalidPayload,
    InvalidSchedule,
    JobContext,
    JobError,
    JobRegistry,
    JobSpec,
    UnknownJob,
    retry_delay,
)
from patient_portal.jobs.spec import describe_failure, validate_payload

S = timedelta(seconds=1)


async def nothing(payload: dict[str, Any], ctx: JobContext) -> None:
    """A handler that does nothing."""


@pytest.mark.parametrize(
    ("attempt", "base", "cap", "expected"),
    [
        (1, 10 * S, 3600 * S, 10 * S),
        (2, 10 * S, 3600 * S, 20 * S),
        (3, 10 * S, 3600 * S, 40 * S),
        (9, 10 * S, 3600 * S, 2560 * S),
        (10, 10 * S, 3600 * S, 3600 * S),
        (10_000, 10 * S, 3600 * S, 3600 * S),
        (1, timedelta(milliseconds=5), timedelta(milliseconds=5), timedelta(milliseconds=5)),
    ],
)
def test_retry_delay_doubles_up_to_the_cap(
    attempt: int, base: timedelta, cap: timedelta, expected: timedelta
) -> None:
    assert retry_delay(attempt, base, cap) == expected


def test_retry_delay_counts_attempts_from_one() -> None:
    with pytest.raises(ValueError, match="from 1"):
        retry_delay(0, S, S)


bases = st.integers(min_value=1, max_value=10**6).map(lambda ms: timedelta(milliseconds=ms))


@given(
    attempt=st.integers(min_value=1, max_value=10**6),
    base=bases,
    extra=st.integers(min_value=0, max_value=10**9),
)
def test_retry_delay_is_monotonic_capped_and_at_least_base(
    attempt: int, base: timedelta, extra: int
) -> None:
    cap = base + timedelta(milliseconds=extra)
    delay = retry_delay(attempt, base, cap)
    assert base <= delay <= cap
    assert retry_delay(attempt + 1, base, cap) >= delay
    assert retry_delay(attempt, base, cap) == delay  # no randomness


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"name": ""}, "1 to 120"),
        ({"name": "x" * 121}, "1 to 120"),
        ({"max_attempts": 0}, "max_attempts"),
        ({"timeout": 0}, "timeout"),
        ({"timeout": math.nan}, "timeout"),
        ({"backoff_base": timedelta(0)}, "backoff"),
        ({"backoff_base": 10 * S, "backoff_cap": 5 * S}, "backoff"),
    ],
)
def test_job_spec_refuses_nonsense(changes: dict[str, Any], message: str) -> None:
    arguments: dict[str, Any] = {"name": "reminder", "handler": nothing, **changes}
    with pytest.raises(ValueError, match=message):
        JobSpec(**arguments)


def test_registry_decorator_registers_and_returns_the_handler() -> None:
    registry = JobRegistry()

    @registry.job("send_reminder", max_attempts=3, timeout=5)
    async def send_reminder(payload: dict[str, Any], ctx: JobContext) -> None:
        """Send it."""

    spec = registry.get("send_reminder")
    assert spec.handler is send_reminder
    assert (spec.max_attempts, spec.timeout) == (3, 5)
    assert "send_reminder" in registry
    assert [s.name for s in registry] == ["send_reminder"]
    assert len(registry) == 1


def test_registry_defaults() -> None:
    registry = JobRegistry()
    spec = registry.register(JobSpec("a", nothing))
    assert spec.max_attempts == 5
    assert spec.retry_delay(1) == retry_delay(1, spec.backoff_base, spec.backoff_cap)


def test_registry_errors_are_clear_and_share_a_base() -> None:
    registry = JobRegistry()
    registry.register(JobSpec("a", nothing))
    with pytest.raises(DuplicateJob, match="'a'"):
        registry.register(JobSpec("a", nothing))
    with pytest.raises(UnknownJob, match="no job is registered under the name 'b'") as caught:
        registry.get("b")
    assert isinstance(caught.value, JobError)
    assert isinstance(caught.value, LookupError)
    with pytest.raises(UnknownJob):
        registry.request("b", {})


class Colour(Enum):
    RED = "red"


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"at": datetime(2030, 1, 1, tzinfo=UTC)}, "not JSON-serialisable"),
        ({"colour": Colour.RED}, "not JSON-serialisable"),
        ({"ids": {1, 2}}, "not JSON-serialisable"),
        ({"x": math.nan}, "not JSON-serialisable"),
        ({"x": math.inf}, "not JSON-serialisable"),
        ({"pair": (1, 2)}, "round trip"),
        ({"nested": {1: "a"}}, "round trip"),
        ({(1, 2): "a"}, "not JSON-serialisable"),
        ([("a", 1)], "mapping"),
    ],
)
def test_payload_must_be_plain_json(payload: Any, message: str) -> None:
    with pytest.raises(InvalidPayload, match=message):
        validate_payload(payload)


def test_payload_errors_do_not_show_values() -> None:
    secret = "山田花子"
    with pytest.raises(InvalidPayload) as caught:
        validate_payload({"name": secret, "born": datetime(1990, 1, 1, tzinfo=UTC)})
    assert secret not in str(caught.value)
    assert "1990" not in str(caught.value)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)  # fmt: skip


@given(st.dictionaries(st.text(max_size=8), json_values, max_size=5))
def test_plain_json_payloads_pass_unchanged_as_a_copy(payload: dict[str, Any]) -> None:
    copy = validate_payload(payload)
    assert copy == payload
    assert copy is not payload


def test_request_validates_name_payload_schedule_and_key() -> None:
    registry = JobRegistry()
    registry.register(JobSpec("a", nothing, max_attempts=2))
    at = datetime(2030, 1, 1, 9, tzinfo=ZoneInfo("Asia/Tokyo"))
    request = registry.request("a", {"n": 1}, run_at=at, key="k")
    assert (request.spec.max_attempts, request.payload, request.run_at, request.key) == (
        2,
        {"n": 1},
        at,
        "k",
    )
    with pytest.raises(InvalidSchedule, match="timezone-aware"):
        registry.request("a", {}, run_at=datetime(2030, 1, 1))  # noqa: DTZ001 - the point
    with pytest.raises(InvalidSchedule, match="key"):
        registry.request("a", {}, key="")
    with pytest.raises(InvalidSchedule, match="key"):
        registry.request("a", {}, key="k" * 201)
    with pytest.raises(InvalidPayload):
        registry.request("a", {"t": (1,)})


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (ValueError("bad   value\nhere"), "ValueError: bad value here"),
        (TimeoutError(), "TimeoutError"),
        (RuntimeError("x" * 500), "RuntimeError: " + "x" * 185 + "…"),
    ],
)
def test_describe_failure_is_one_short_line(error: BaseException, expected: str) -> None:
    described = describe_failure(error)
    assert described == expected
    assert len(described) <= 200
