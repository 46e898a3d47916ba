"""The in-process rate limiter with an injected clock: limits, sliding windows, reset, pruning."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from patient_portal.auth.ratelimit import (
    CODE_CHECK_PER_PHONE,
    LIMITS,
    SIGN_IN_PER_ACCOUNT,
    SMS_SEND_PER_IP,
    SMS_SEND_PER_PHONE,
    SMS_SEND_PER_PHONE_DAILY,
    InMemoryRateLimiter,
    Limit,
    RateDecision,
    hit_all,
)
from tests.support.clock import FakeClock

START = datetime(2030, 4, 1, 9, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START)


@pytest.fixture
def limiter(clock: FakeClock) -> InMemoryRateLimiter:
    return InMemoryRateLimiter(clock)


async def test_allows_up_to_the_limit_then_refuses(limiter: InMemoryRateLimiter) -> None:
    decisions = [await limiter.hit("k", limit=3, window=MINUTE) for _ in range(4)]
    assert decisions == [
        RateDecision(True, 2, 0.0),
        RateDecision(True, 1, 0.0),
        RateDecision(True, 0, 0.0),
        RateDecision(False, 0, 60.0),
    ]


async def test_the_window_slides(limiter: InMemoryRateLimiter, clock: FakeClock) -> None:
    await limiter.hit("k", limit=2, window=MINUTE)
    clock.advance(timedelta(seconds=40))
    await limiter.hit("k", limit=2, window=MINUTE)
    refused = await limiter.hit("k", limit=2, window=MINUTE)
    assert not refused.allowed
    assert refused.retry_after == pytest.approx(20.0)
    clock.advance(timedelta(seconds=20))  # the first hit leaves the window exactly now
    assert (await limiter.hit("k", limit=2, window=MINUTE)).allowed
    assert not (await limiter.hit("k", limit=2, window=MINUTE)).allowed
    clock.advance(timedelta(seconds=40))
    assert (await limiter.hit("k", limit=2, window=MINUTE)).allowed


async def test_refused_hits_do_not_extend_a_lockout(
    limiter: InMemoryRateLimiter, clock: FakeClock
) -> None:
    for _ in range(5):
        await limiter.hit("account", limit=5, window=timedelta(minutes=15))
    for _ in range(100):
        clock.advance(timedelta(seconds=5))
        assert not (await limiter.hit("account", limit=5, window=timedelta(minutes=15))).allowed
    clock.advance(timedelta(minutes=15) - timedelta(seconds=500))
    assert (await limiter.hit("account", limit=5, window=timedelta(minutes=15))).allowed


async def test_keys_are_independent(limiter: InMemoryRateLimiter) -> None:
    assert (await limiter.hit("a", limit=1, window=MINUTE)).allowed
    assert not (await limiter.hit("a", limit=1, window=MINUTE)).allowed
    assert (await limiter.hit("b", limit=1, window=MINUTE)).allowed


async def test_reset_forgets_a_key(limiter: InMemoryRateLimiter) -> None:
    await limiter.hit("a", limit=1, window=MINUTE)
    await limiter.reset("a")
    assert (await limiter.hit("a", limit=1, window=MINUTE)).allowed
    await limiter.reset("never-seen")


async def test_idle_keys_are_pruned(clock: FakeClock) -> None:
    limiter = InMemoryRateLimiter(clock, prune_every=10)
    for n in range(9):
        await limiter.hit(f"key-{n}", limit=5, window=MINUTE)
    assert len(limiter) == 9
    clock.advance(2 * MINUTE)
    await limiter.hit("fresh", limit=5, window=MINUTE)  # the tenth hit prunes
    assert len(limiter) == 1


async def test_memory_is_bounded_even_when_every_key_is_live(clock: FakeClock) -> None:
    limiter = InMemoryRateLimiter(clock, max_keys=100)
    for n in range(1_000):
        await limiter.hit(f"ip-{n}", limit=5, window=timedelta(hours=1))
    assert len(limiter) <= 101
    # The most recently hit keys are the ones kept.
    assert not (await limiter.hit("ip-999", limit=1, window=timedelta(hours=1))).allowed


async def test_hit_all_needs_every_limit(limiter: InMemoryRateLimiter, clock: FakeClock) -> None:
    phone, ip = "blind-index-of-the-phone", "203.0.113.7"
    hits = [(SMS_SEND_PER_PHONE, phone), (SMS_SEND_PER_PHONE_DAILY, phone), (SMS_SEND_PER_IP, ip)]
    for expected_remaining in (2, 1, 0):
        decision = await hit_all(limiter, hits)
        assert decision == RateDecision(True, expected_remaining, 0.0)
    refused = await hit_all(limiter, hits)
    assert not refused.allowed
    assert refused.retry_after == pytest.approx(600.0)
    # Ten minutes later the per-phone window has moved on, but the day's count goes on.
    for _ in range(3):
        clock.advance(timedelta(minutes=10))
        for _ in range(3):
            await hit_all(limiter, [(SMS_SEND_PER_PHONE, phone), (SMS_SEND_PER_PHONE_DAILY, phone)])
    clock.advance(timedelta(minutes=10))
    daily = await hit_all(limiter, [(SMS_SEND_PER_PHONE, phone), (SMS_SEND_PER_PHONE_DAILY, phone)])
    assert not daily.allowed
    assert daily.retry_after > 20 * 3600


def test_limit_keys_never_contain_the_subject() -> None:
    key = SMS_SEND_PER_PHONE.key("+819012345678")
    assert "9012345678" not in key
    assert key.startswith("sms-send:phone:")
    assert key == SMS_SEND_PER_PHONE.key("+819012345678")
    assert key != SMS_SEND_PER_PHONE_DAILY.key("+819012345678")


def test_the_policy_table() -> None:
    assert LIMITS[SIGN_IN_PER_ACCOUNT.name] == Limit("sign-in:account", 5, timedelta(minutes=15))
    assert LIMITS[CODE_CHECK_PER_PHONE.name].limit == 5
    assert all(rule.limit > 0 and rule.window > timedelta(0) for rule in LIMITS.values())
    assert len({rule.name for rule in LIMITS.values()}) == len(LIMITS)
