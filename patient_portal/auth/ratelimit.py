"""Rate limits and lockout: sliding-window counters, in process or in Redis.

Both limiters keep, per key, the times of the hits allowed in the last ``window`` (a sliding log):
a hit is allowed while fewer than ``limit`` of them remain, and a refused hit is not recorded, so
hammering a locked key does not extend its lockout. Memory per key is bounded by ``limit``.

Time comes from the injected clock in both: the Redis script is given ``now`` rather than reading
Redis ``TIME``, which keeps tests free of sleeps (app servers keep their clocks in sync with NTP).

Keys must never contain a phone number, a name or an e-mail address: Redis keys are visible to
whoever operates Redis. Build them with :meth:`Limit.key` from an account id, an IP address, or
a phone's blind index (``current_keyring().blind_index(e164, "phone")``) — an unkeyed hash of a
phone number is no protection, since all 10^8 Japanese mobile numbers can be hashed in seconds.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import secrets
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Protocol

import redis.asyncio as aioredis
from redis.exceptions import RedisError

Clock = Callable[[], datetime]
KEY_PREFIX: Final = "tsunagu:rl:"
REDIS_TIMEOUT: Final = 2.0


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class RateDecision:
    """The answer to one hit. ``retry_after`` (seconds, 0 when allowed) suits a Retry-After
    header after rounding up."""

    allowed: bool
    remaining: int
    retry_after: float


class RateLimiterUnavailable(Exception):
    """The limiter's store (Redis) did not answer in time. Callers must fail closed."""


class RateLimiter(Protocol):
    async def hit(self, key: str, *, limit: int, window: timedelta) -> RateDecision:
        """Count one attempt on ``key`` if fewer than ``limit`` were allowed in ``window``."""
        ...

    async def reset(self, key: str) -> None:
        """Forget ``key``'s attempts (the failed sign-ins of an account that just succeeded)."""
        ...


@dataclass(frozen=True, slots=True)
class Limit:
    """One rule of the policy: at most ``limit`` hits per ``window`` for each subject."""

    name: str
    limit: int
    window: timedelta

    def key(self, subject: str) -> str:
        """The limiter key for ``subject`` (hashed, so keys carry no readable identifier)."""
        digest = hashlib.sha256(subject.encode("utf-8")).hexdigest()[:32]
        return f"{self.name}:{digest}"

    async def hit(self, limiter: RateLimiter, subject: str) -> RateDecision:
        return await limiter.hit(self.key(subject), limit=self.limit, window=self.window)


# Sign-in: five wrong passwords or codes for one account lock it for the rest of 15 minutes (the
# caller resets the account's key on success); an IP gets more, as clinics share one address.
SIGN_IN_PER_ACCOUNT: Final = Limit("sign-in:account", 5, timedelta(minutes=15))
SIGN_IN_PER_IP: Final = Limit("sign-in:ip", 30, timedelta(minutes=15))
# SMS sending costs money per message and is the target of SMS pumping fraud: tight per number,
# per day, and per IP (which catches one client cycling through many numbers).
SMS_SEND_PER_PHONE: Final = Limit("sms-send:phone", 3, timedelta(minutes=10))
SMS_SEND_PER_PHONE_DAILY: Final = Limit("sms-send:phone:day", 10, timedelta(days=1))
SMS_SEND_PER_IP: Final = Limit("sms-send:ip", 10, timedelta(hours=1))
# Code checking: a six-digit code must not be guessable by volume.
CODE_CHECK_PER_PHONE: Final = Limit("code-check:phone", 5, timedelta(minutes=10))
CODE_CHECK_PER_IP: Final = Limit("code-check:ip", 30, timedelta(minutes=15))

LIMITS: Final[Mapping[str, Limit]] = {
    rule.name: rule
    for rule in (
        SIGN_IN_PER_ACCOUNT,
        SIGN_IN_PER_IP,
        SMS_SEND_PER_PHONE,
        SMS_SEND_PER_PHONE_DAILY,
        SMS_SEND_PER_IP,
        CODE_CHECK_PER_PHONE,
        CODE_CHECK_PER_IP,
    )
}


async def hit_all(limiter: RateLimiter, hits: Iterable[tuple[Limit, str]]) -> RateDecision:
    """Hit every ``(limit, subject)`` pair; allowed only if all allow, waiting for the longest."""
    decisions = [await rule.hit(limiter, subject) for rule, subject in hits]
    refused = [d for d in decisions if not d.allowed]
    return RateDecision(
        allowed=not refused,
        remaining=min((d.remaining for d in decisions), default=0),
        retry_after=max((d.retry_after for d in refused), default=0.0),
    )


class InMemoryRateLimiter:
    """A limiter for one process (the embedded default; several workers each count their own).

    At most ``max_keys`` keys are kept: idle keys are pruned every ``prune_every`` hits, and when
    that is not enough the least recently hit keys are dropped.
    """

    def __init__(
        self, clock: Clock = utc_now, *, max_keys: int = 100_000, prune_every: int = 1_000
    ) -> None:
        self._clock = clock
        self._max_keys = max_keys
        self._prune_every = prune_every
        self._hits_since_prune = 0
        # key → (window in seconds, times of allowed hits, oldest first); most recent key last.
        self._entries: OrderedDict[str, tuple[float, deque[float]]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    async def hit(self, key: str, *, limit: int, window: timedelta) -> RateDecision:
        # No await inside: the whole decision is atomic on the event loop.
        now = self._clock().timestamp()
        span = window.total_seconds()
        _, times = self._entries.pop(key, (span, deque()))
        while times and times[0] <= now - span:
            times.popleft()
        if len(times) < limit:
            times.append(now)
            decision = RateDecision(True, limit - len(times), 0.0)
        else:
            decision = RateDecision(False, 0, times[0] + span - now if times else span)
        if times:
            self._entries[key] = (span, times)  # re-inserted last: the most recently hit
        self._hits_since_prune += 1
        if self._hits_since_prune >= self._prune_every or len(self._entries) > self._max_keys:
            self._prune(now)
        return decision

    async def reset(self, key: str) -> None:
        self._entries.pop(key, None)

    def _prune(self, now: float) -> None:
        self._hits_since_prune = 0
        idle = [
            k for k, (span, times) in self._entries.items() if not times or times[-1] <= now - span
        ]
        for key in idle:
            del self._entries[key]
        while len(self._entries) > self._max_keys:
            self._entries.popitem(last=False)


# KEYS[1] the sorted set of hit times (ms); ARGV: now (ms), window (ms), limit, a unique member.
# Returns {allowed (0/1), remaining, retry_after (ms)}.
_SLIDING_WINDOW = """
local key = KEYS[1]
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local limit = tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
local count = redis.call('ZCARD', key)
if count < limit then
  redis.call('ZADD', key, now, ARGV[4])
  redis.call('PEXPIRE', key, window)
  return {1, limit - count - 1, 0}
end
local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
return {0, 0, tonumber(oldest[2]) + window - now}
"""


class RedisRateLimiter:
    """A limiter shared by every worker through Redis; each hit is one atomic Lua script.

    Give it a URL (it then owns the connection pool: call :meth:`aclose`) or a client the caller
    owns. Every Redis call has a timeout; failures raise :class:`RateLimiterUnavailable`.
    """

    def __init__(
        self,
        redis: str | aioredis.Redis,
        *,
        clock: Clock = utc_now,
        timeout: float = REDIS_TIMEOUT,
        prefix: str = KEY_PREFIX,
    ) -> None:
        self._owned = isinstance(redis, str)
        self._redis: aioredis.Redis = (
            aioredis.Redis.from_url(redis) if isinstance(redis, str) else redis
        )
        self._clock = clock
        self._timeout = timeout
        self._prefix = prefix
        self._script = self._redis.register_script(_SLIDING_WINDOW)

    async def hit(self, key: str, *, limit: int, window: timedelta) -> RateDecision:
        now_ms = math.floor(self._clock().timestamp() * 1000)
        window_ms = max(1, math.ceil(window.total_seconds() * 1000))
        member = f"{now_ms}-{secrets.token_hex(6)}"
        result = await self._call(
            self._script(keys=[self._prefix + key], args=[now_ms, window_ms, limit, member])
        )
        allowed, remaining, retry_ms = (int(v) for v in result)
        return RateDecision(bool(allowed), remaining, retry_ms / 1000)

    async def reset(self, key: str) -> None:
        await self._call(self._redis.delete(self._prefix + key))

    async def aclose(self) -> None:
        if self._owned:
            await self._redis.aclose()

    async def _call(self, call: Awaitable[Any]) -> Any:
        try:
            async with asyncio.timeout(self._timeout):
                return await call
        except (RedisError, OSError, TimeoutError) as error:
            raise RateLimiterUnavailable(f"Redis did not answer: {type(error).__name__}") from error
