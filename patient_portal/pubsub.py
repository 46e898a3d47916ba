"""Publish/subscribe between the parts of the portal: in memory, or through Redis across workers.

Live features (the consult's signaling, vitals pushed to the doctor's view) publish small JSON
messages on a channel; whoever is subscribed to it — in this process, or in another ``serve``
worker when Redis is configured — receives them in order. Delivery is at most once, to the
subscribers present at the time: anything that must not be lost goes through a job or the database.

Usage::

    async with pubsub.subscribe("consult:42") as messages:
        async for message in messages:
            ...
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, Final, Protocol

logger = logging.getLogger(__name__)

Message = dict[str, Any]
MAX_QUEUED: Final = 1000  # per subscriber; a subscriber this far behind loses the oldest
PUBLISH_TIMEOUT: Final = 5.0


class PubSub(Protocol):
    async def publish(self, channel: str, message: Mapping[str, Any]) -> None:
        """Send ``message`` (JSON-serialisable) to every current subscriber of ``channel``."""

    def subscribe(self, channel: str) -> AbstractAsyncContextManager[AsyncIterator[Message]]:
        """Receive the channel's messages while the ``async with`` block is open."""

    async def close(self) -> None: ...


def _encode(message: Mapping[str, Any]) -> str:
    try:
        return json.dumps(message, ensure_ascii=False, separators=(",", ":"))
    except (TypeError, ValueError) as error:
        raise ValueError(f"pub/sub messages must be JSON objects: {error}") from None


class _Subscription:
    def __init__(self) -> None:
        self.queue: asyncio.Queue[Message] = asyncio.Queue(MAX_QUEUED)

    def deliver(self, message: Message) -> None:
        if self.queue.full():
            self.queue.get_nowait()  # drop the oldest rather than block the publisher
        self.queue.put_nowait(message)

    async def __aiter__(self) -> AsyncIterator[Message]:
        while True:
            yield await self.queue.get()


class InMemoryPubSub:
    """Within one process: the embedded default."""

    def __init__(self) -> None:
        self._channels: dict[str, set[_Subscription]] = {}

    async def publish(self, channel: str, message: Mapping[str, Any]) -> None:
        decoded: Message = json.loads(_encode(message))  # same copy semantics as Redis
        for subscription in list(self._channels.get(channel, ())):
            subscription.deliver(decoded)

    @asynccontextmanager
    async def subscribe(self, channel: str) -> AsyncIterator[AsyncIterator[Message]]:
        subscription = _Subscription()
        self._channels.setdefault(channel, set()).add(subscription)
        try:
            yield subscription.__aiter__()
        finally:
            subscribers = self._channels.get(channel)
            if subscribers is not None:
                subscribers.discard(subscription)
                if not subscribers:
                    del self._channels[channel]

    async def close(self) -> None:
        self._channels.clear()


class RedisPubSub:
    """Across processes and machines, through Redis PUBLISH/SUBSCRIBE."""

    def __init__(self, redis_url: str, *, prefix: str = "tsunagu:") -> None:
        from redis.asyncio import Redis

        # No read timeout: a subscription waits for messages as long as it is open.
        self._redis = Redis.from_url(redis_url, socket_connect_timeout=5, decode_responses=True)
        self._prefix = prefix

    async def publish(self, channel: str, message: Mapping[str, Any]) -> None:
        async with asyncio.timeout(PUBLISH_TIMEOUT):
            await self._redis.publish(self._prefix + channel, _encode(message))

    @asynccontextmanager
    async def subscribe(self, channel: str) -> AsyncIterator[AsyncIterator[Message]]:
        pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
        await pubsub.subscribe(self._prefix + channel)
        try:
            yield self._messages(pubsub)
        finally:
            with contextlib.suppress(Exception):
                await pubsub.unsubscribe()
            await pubsub.aclose()

    async def _messages(self, pubsub: Any) -> AsyncIterator[Message]:
        async for raw in pubsub.listen():
            if raw.get("type") != "message":
                continue
            try:
                yield json.loads(raw["data"])
            except ValueError:
                logger.warning("pub/sub: dropped a message that is not JSON")

    async def close(self) -> None:
        await self._redis.aclose()
