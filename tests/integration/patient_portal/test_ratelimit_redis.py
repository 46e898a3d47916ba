"""The Redis rate limiter against a real Redis, with the clock injected (no sleeping)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
import redis.asyncio as aioredis

from patient_portal.auth.ratelimit import (
    KEY_PREFIX,
    SIGN_IN_PER_ACCOUNT,
    InMemoryRateLimiter,
    RateDecision,
    RateLimiterUnavailable,
    RedisRateLimiter,
)
from tests.support.clock import FakeClock
from tests.support.live_server import free_port

pytestmark = pytest.mark.redis

START = datetime(2030, 4, 1, 9, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START)


@pytest.fixture
def prefix() -> str:
    return f"{KEY_PREFIX}test-{uuid.uuid4().hex}:"


@pytest.fixture
async def limiter(redis_url: str, clock: FakeClock, prefix: str) -> AsyncIterator[RedisRateLimiter]:
    limiter = RedisRateLimiter(redis_url, clock=clock, prefix=prefix)
    yield limiter
    await limiter.aclose()


async def test_allows_up_to_the_limit_then_refuses(limiter: RedisRateLimiter) -> None:
    decisions = [await limiter.hit("k", limit=3, window=MINUTE) for _ in range(4)]
    assert decisions == [
        RateDecision(True, 2, 0.0),
        RateDecision(True, 1, 0.0),
        RateDecision(True, 0, 0.0),
        RateDecision(False, 0, 60.0),
    ]


async def test_the_window_slides(limiter: RedisRateLimiter, clock: FakeClock) -> None:
    await limiter.hit("k", limit=2, window=MINUTE)
    clock.advance(timedelta(seconds=40))
    await limiter.hit("k", limit=2, window=MINUTE)
    refused = await limiter.hit("k", limit=2, window=MINUTE)
    assert not refused.allowed
    assert refused.retry_after == pytest.approx(20.0)
    clock.advance(timedelta(seconds=20))
    assert (await limiter.hit("k", limit=2, window=MINUTE)).allowed
    assert not (await limiter.hit("k", limit=2, window=MINUTE)).allowed


async def test_lockout_ends_with_the_window(limiter: RedisRateLimiter, clock: FakeClock) -> None:
    key = SIGN_IN_PER_ACCOUNT.key("staff-uuid")
    for _ in range(5):
        assert (await SIGN_IN_PER_ACCOUNT.hit(limiter, "staff-uuid")).allowed
    clock.advance(timedelta(minutes=10))
    locked = await SIGN_IN_PER_ACCOUNT.hit(limiter, "staff-uuid")
    assert not locked.allowed
    assert locked.retry_after == pytest.approx(300.0)
    clock.advance(timedelta(minutes=5))
    assert (await limiter.hit(key, limit=5, window=timedelta(minutes=15))).allowed


async def test_reset(limiter: RedisRateLimiter) -> None:
    await limiter.hit("k", limit=1, window=MINUTE)
    assert not (await limiter.hit("k", limit=1, window=MINUTE)).allowed
    await limiter.reset("k")
    assert (await limiter.hit("k", limit=1, window=MINUTE)).allowed


async def test_keys_expire_in_redis_with_their_window(
    limiter: RedisRateLimiter, redis_url: str, prefix: str
) -> None:
    await limiter.hit("k", limit=5, window=timedelta(seconds=90))
    client = aioredis.Redis.from_url(redis_url)
    try:
        ttl = await client.pttl(prefix + "k")
        members = await client.zcard(prefix + "k")
    finally:
        await client.aclose()
    assert 0 < ttl <= 90_000
    assert members == 1


async def test_concurrent_hits_never_exceed_the_limit(
    redis_url: str, clock: FakeClock, prefix: str
) -> None:
    limiters = [RedisRateLimiter(redis_url, clock=clock, prefix=prefix) for _ in range(4)]
    try:
        decisions = await asyncio.gather(
            *(limiters[n % 4].hit("shared", limit=7, window=MINUTE) for n in range(40))
        )
    finally:
        for limiter in limiters:
            await limiter.aclose()
    assert sum(d.allowed for d in decisions) == 7


async def test_same_answers_as_the_in_memory_limiter(
    limiter: RedisRateLimiter, clock: FakeClock
) -> None:
    memory = InMemoryRateLimiter(clock)
    pattern = [0, 5, 5, 10, 20, 1, 30, 2, 2, 59, 61, 0, 0, 120]
    for seconds in pattern:
        clock.advance(timedelta(seconds=seconds))
        expected = await memory.hit("k", limit=3, window=MINUTE)
        assert await limiter.hit("k", limit=3, window=MINUTE) == expected


async def test_a_client_passed_in_stays_open(redis_url: str, clock: FakeClock, prefix: str) -> None:
    client = aioredis.Redis.from_url(redis_url)
    try:
        limiter = RedisRateLimiter(client, clock=clock, prefix=prefix)
        assert (await limiter.hit("k", limit=1, window=MINUTE)).allowed
        await limiter.aclose()
        assert await client.ping()
    finally:
        await client.aclose()


async def test_redis_down_is_an_error_not_a_pass(clock: FakeClock) -> None:
    limiter = RedisRateLimiter(f"redis://127.0.0.1:{free_port()}/0", clock=clock, timeout=1)
    try:
        with pytest.raises(RateLimiterUnavailable):
            await limiter.hit("k", limit=1, window=MINUTE)
        with pytest.raises(RateLimiterUnavailable):
            await limiter.reset("k")
    finally:
        await limiter.aclose()
