"""The transport-neutral bus interface."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

from shared.envelope import Envelope

T = TypeVar("T")


class Delivery(Protocol):
    """One message handed to a consumer. Exactly one of ack/retry/dead_letter must be called."""

    envelope: Envelope | None  # None when the body could not be decoded (a poison message)
    body: bytes
    delivery_count: int  # 1 on the first delivery

    async def ack(self) -> None: ...

    async def retry(self) -> None:
        """Give the message back for another delivery (counted against the delivery limit)."""
        ...

    async def dead_letter(self, reason: str | None = None) -> None:
        """Send it to the dead-letter queue at once; ``reason`` is kept with it (the operator's list shows it)."""
        ...


BatchHandler = Callable[[Sequence[Delivery]], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class OutgoingMessage:
    """An already-encoded envelope, as the outbox stores it (published without re-encoding)."""

    event_id: str
    routing_key: str
    body: bytes


@dataclass(frozen=True, slots=True)
class DeadLetter:
    body: bytes
    routing_key: str
    reason: str


class EventBus(Protocol):
    async def start(self) -> None:
        """Connect and declare the whole topology."""
        ...

    async def publish(self, envelopes: Sequence[Envelope]) -> None:
        """Return only when the broker has confirmed every envelope; raise otherwise."""
        ...

    async def publish_raw(self, messages: Sequence[OutgoingMessage]) -> None:
        """Like ``publish`` for envelopes already encoded (the outbox relay's path)."""
        ...

    async def consume(self, service: str, handler: BatchHandler, *, batch_size: int, batch_wait_s: float) -> None:
        """Start delivering the service's queue to ``handler`` in batches (returns once started)."""
        ...

    async def dead_letters(self, service: str, limit: int = 100) -> list[DeadLetter]:
        """Peek at the dead-letter queue of a service (messages stay there)."""
        ...

    async def replay_dead_letters(self, service: str, limit: int = 100) -> int:
        """Move up to ``limit`` dead letters back to the service's queue; return how many."""
        ...

    async def ping(self) -> bool: ...

    async def close(self) -> None: ...


async def collect_batch(
    queue: asyncio.Queue[T], batch_size: int, batch_wait_s: float, weigh: Callable[[T], int] | None = None
) -> list[T]:
    """Wait for one item, then gather what else arrives within ``batch_wait_s``, up to ``batch_size``.

    ``weigh`` counts the events in an item (a packed AMQP message holds several); an item is never split,
    so the last one may take a batch past ``batch_size``."""
    first = await queue.get()
    batch = [first]
    size = weigh(first) if weigh else 1
    loop = asyncio.get_running_loop()
    deadline = loop.time() + batch_wait_s
    while size < batch_size:
        while not queue.empty() and size < batch_size:
            item = queue.get_nowait()
            batch.append(item)
            size += weigh(item) if weigh else 1
        remaining = deadline - loop.time()
        if size >= batch_size or remaining <= 0:
            break
        try:
            # Not wait_for: on Python 3.11 it swallows a cancellation that meets the item's arrival.
            async with asyncio.timeout(remaining):
                item = await queue.get()
        except TimeoutError:
            break
        batch.append(item)
        size += weigh(item) if weigh else 1
    return batch


async def wait_settled(held: Callable[[], int], settled: asyncio.Event, timeout_s: float) -> bool:
    """Wait until ``held()`` is 0, woken by ``settled`` each time a batch settles; False at the timeout."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(timeout_s):
            while held() > 0:
                settled.clear()
                await settled.wait()
    return held() <= 0
