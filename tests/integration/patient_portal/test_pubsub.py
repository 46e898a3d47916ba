"""Pub/sub in memory and through a real Redis: order, fan-out, isolation, clean unsubscribe."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from patient_portal.pubsub import MAX_QUEUED, InMemoryPubSub, PubSub, RedisPubSub


@pytest.fixture(params=["memory", "redis"])
async def pubsub(request: pytest.FixtureRequest) -> AsyncIterator[PubSub]:
    if request.param == "memory":
        broker: PubSub = InMemoryPubSub()
    else:
        broker = RedisPubSub(request.getfixturevalue("redis_url"), prefix="tsunagu-test:")
    try:
        yield broker
    finally:
        await broker.close()


async def take(messages: AsyncIterator[dict[str, object]], count: int) -> list[dict[str, object]]:
    async with asyncio.timeout(5):
        return [await anext(messages) for _ in range(count)]


async def test_every_subscriber_gets_every_message_in_order(pubsub: PubSub) -> None:
    async with pubsub.subscribe("consult:1") as first, pubsub.subscribe("consult:1") as second:
        for n in range(5):
            await pubsub.publish("consult:1", {"n": n, "text": "こんにちは"})
        expected = [{"n": n, "text": "こんにちは"} for n in range(5)]
        assert await take(first, 5) == expected
        assert await take(second, 5) == expected


async def test_channels_are_separate(pubsub: PubSub) -> None:
    async with pubsub.subscribe("consult:a") as a, pubsub.subscribe("consult:b") as b:
        await pubsub.publish("consult:b", {"to": "b"})
        await pubsub.publish("consult:a", {"to": "a"})
        assert await take(a, 1) == [{"to": "a"}]
        assert await take(b, 1) == [{"to": "b"}]


async def test_messages_after_unsubscribing_go_nowhere(pubsub: PubSub) -> None:
    async with pubsub.subscribe("consult:2") as messages:
        await pubsub.publish("consult:2", {"n": 1})
        assert await take(messages, 1) == [{"n": 1}]
    await pubsub.publish("consult:2", {"n": 2})  # no subscriber: dropped, no error
    async with pubsub.subscribe("consult:2") as again:
        await pubsub.publish("consult:2", {"n": 3})
        assert await take(again, 1) == [{"n": 3}]


async def test_a_message_that_is_not_json_is_refused(pubsub: PubSub) -> None:
    with pytest.raises(ValueError, match="JSON"):
        await pubsub.publish("consult:3", {"when": object()})


async def test_a_slow_subscriber_keeps_the_newest_messages() -> None:
    pubsub = InMemoryPubSub()
    async with pubsub.subscribe("vitals") as messages:
        for n in range(MAX_QUEUED + 5):
            await pubsub.publish("vitals", {"n": n})
        assert (await take(messages, 1)) == [{"n": 5}]


async def test_redis_carries_messages_between_separate_connections(redis_url: str) -> None:
    publisher = RedisPubSub(redis_url, prefix="tsunagu-test:")
    subscriber = RedisPubSub(redis_url, prefix="tsunagu-test:")
    try:
        async with subscriber.subscribe("consult:9") as messages:
            await publisher.publish("consult:9", {"from": "another worker"})
            assert await take(messages, 1) == [{"from": "another worker"}]
    finally:
        await publisher.close()
        await subscriber.close()
