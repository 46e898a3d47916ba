"""What a job is, independent of who runs it: specs, the registry, backoff and the errors.

Nothing here does I/O. Both runners (in-process and arq) take a :class:`JobRegistry` and turn an
enqueue into a :class:`JobRequest` with :meth:`JobRegistry.request`, so a bad name, payload or
schedule is refused at the caller, before anything is stored.

Errors::

    JobError
     ├── UnknownJob        no job is registered under that name
     ├── DuplicateJob      a second job registered under a taken name
     ├── InvalidPayload    the payload does not survive a JSON round trip unchanged
     ├── InvalidSchedule   run_at is naive, or the key is empty or too long
     ├── QueueUnavailable  the queue's store (Redis) did not answer; nothing was enqueued
     └── JobFailed         raised by the arq dispatcher once a job has failed for good
"""

from __future__ import annotations

import json
import math
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

MAX_NAME_LENGTH = 120  # JobRecord.name
MAX_KEY_LENGTH = 200  # JobRecord.key
DEFAULT_MAX_ATTEMPTS = 5
DEFAULT_TIMEOUT = 60.0
DEFAULT_BACKOFF_BASE = timedelta(seconds=10)
DEFAULT_BACKOFF_CAP = timedelta(hours=1)


class JobError(Exception):
    """Base of every error the job subsystem raises. Messages never contain payloads."""


class UnknownJob(JobError, LookupError):
    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(f"no job is registered under the name {name!r}")


class DuplicateJob(JobError):
    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(f"a job is already registered under the name {name!r}")


class InvalidPayload(JobError, TypeError):
    """The payload is not plain JSON (string-keyed objects, lists, strings, numbers, null)."""


class InvalidSchedule(JobError, ValueError):
    """``run_at`` is naive, or ``key`` is empty or longer than the column allows."""


class QueueUnavailable(JobError):
    """The job could not be stored: the queue's backing service is down or too slow."""


class JobFailed(JobError):
    """A job used up its attempts; its failure is recorded in the database."""


@dataclass(frozen=True, slots=True)
class JobContext:
    """Handed to a handler on each run. ``attempt`` counts from 1; ``now`` is the runner's clock."""

    job_id: str
    attempt: int
    now: datetime


JobHandler = Callable[[dict[str, Any], JobContext], Awaitable[None]]
Clock = Callable[[], datetime]
_H = TypeVar("_H", bound=JobHandler)


def utc_now() -> datetime:
    """The default clock of both runners: the aware current time in UTC."""
    return datetime.now(UTC)


def retry_delay(attempt: int, base: timedelta, cap: timedelta) -> timedelta:
    """How long to wait after failed attempt number ``attempt`` (1-based): ``base·2^(attempt-1)``.

    Deterministic, never more than ``cap``, and non-decreasing in ``attempt``.
    """
    if attempt < 1:
        raise ValueError("attempt counts from 1")
    # Clamp the exponent so huge attempt numbers cannot overflow a float or a timedelta.
    seconds = base.total_seconds() * math.ldexp(1.0, min(attempt - 1, 64))
    return min(cap, timedelta(seconds=min(seconds, cap.total_seconds())))


@dataclass(frozen=True, slots=True)
class JobSpec:
    """A named job: its handler, how often it may run, how long one run may take, and its backoff.

    The handler must be idempotent: a run that crashed the process, or whose outcome could not be
    stored, is run again.
    """

    name: str
    handler: JobHandler
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    timeout: float = DEFAULT_TIMEOUT
    backoff_base: timedelta = DEFAULT_BACKOFF_BASE
    backoff_cap: timedelta = DEFAULT_BACKOFF_CAP

    def __post_init__(self) -> None:
        if not self.name or len(self.name) > MAX_NAME_LENGTH:
            raise ValueError(f"a job name has 1 to {MAX_NAME_LENGTH} characters")
        if self.max_attempts < 1:
            raise ValueError(f"job {self.name!r}: max_attempts must be at least 1")
        if not self.timeout > 0:
            raise ValueError(f"job {self.name!r}: timeout must be positive")
        if self.backoff_base <= timedelta(0) or self.backoff_cap < self.backoff_base:
            raise ValueError(f"job {self.name!r}: need 0 < backoff_base <= backoff_cap")

    def retry_delay(self, attempt: int) -> timedelta:
        return retry_delay(attempt, self.backoff_base, self.backoff_cap)


@dataclass(frozen=True, slots=True)
class JobRequest:
    """A validated enqueue: a registered spec, a JSON-clean copy of the payload, an aware run_at."""

    spec: JobSpec
    payload: dict[str, Any]
    run_at: datetime | None
    key: str | None


def validate_payload(payload: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``payload`` that is plain JSON; raises :class:`InvalidPayload` otherwise.

    The handler receives exactly what was enqueued, so values JSON would change (tuples,
    non-string keys) are refused too. The message names the problem, never a value.
    """
    if not isinstance(payload, Mapping):
        raise InvalidPayload(f"a job payload is a mapping, not {type(payload).__name__}")
    try:
        copy: dict[str, Any] = json.loads(json.dumps(dict(payload), allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise InvalidPayload(f"job payload is not JSON-serialisable: {exc}") from None
    if copy != payload:
        raise InvalidPayload(
            "job payload changes in a JSON round trip (use lists, not tuples; string keys only)"
        )
    return copy


def validate_schedule(run_at: datetime | None, key: str | None) -> None:
    """Raise :class:`InvalidSchedule` unless ``run_at`` is aware and ``key`` fits the column."""
    if run_at is not None and run_at.utcoffset() is None:
        raise InvalidSchedule("run_at must be timezone-aware (use datetime.now(UTC) + delta)")
    if key is not None and not 0 < len(key) <= MAX_KEY_LENGTH:
        raise InvalidSchedule(f"a job key has 1 to {MAX_KEY_LENGTH} characters")


class JobRegistry:
    """Job specs by name. Register at start-up; the runners only read it afterwards."""

    def __init__(self) -> None:
        self._specs: dict[str, JobSpec] = {}

    def register(self, spec: JobSpec) -> JobSpec:
        if spec.name in self._specs:
            raise DuplicateJob(spec.name)
        self._specs[spec.name] = spec
        return spec

    def job(
        self,
        name: str,
        *,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        timeout: float = DEFAULT_TIMEOUT,
        backoff_base: timedelta = DEFAULT_BACKOFF_BASE,
        backoff_cap: timedelta = DEFAULT_BACKOFF_CAP,
    ) -> Callable[[_H], _H]:
        """Decorator form of :meth:`register`; returns the handler unchanged."""

        def decorate(handler: _H) -> _H:
            self.register(JobSpec(name, handler, max_attempts, timeout, backoff_base, backoff_cap))
            return handler

        return decorate

    def get(self, name: str) -> JobSpec:
        try:
            return self._specs[name]
        except KeyError:
            raise UnknownJob(name) from None

    def request(
        self,
        name: str,
        payload: Mapping[str, Any],
        *,
        run_at: datetime | None = None,
        key: str | None = None,
    ) -> JobRequest:
        """Validate an enqueue; raises :class:`UnknownJob`, :class:`InvalidPayload` or
        :class:`InvalidSchedule`."""
        spec = self.get(name)
        validate_schedule(run_at, key)
        return JobRequest(spec, validate_payload(payload), run_at, key)

    def __contains__(self, name: object) -> bool:
        return name in self._specs

    def __iter__(self) -> Iterator[JobSpec]:
        return iter(self._specs.values())

    def __len__(self) -> int:
        return len(self._specs)


def describe_failure(exc: BaseException, *, limit: int = 200) -> str:
    """``"TypeName: message"`` cut to ``limit`` characters, for ``JobRecord.last_error``.

    Handlers must not put patient data in exception messages; this keeps what they do put short.
    """
    message = " ".join(str(exc).split())
    text = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"
