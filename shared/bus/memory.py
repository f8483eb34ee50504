"""In-process transport for the embedded mode and fast unit tests.

It behaves like the RabbitMQ transport where it matters: topic routing from the same topology,
batches, acknowledgement after the handler's commit, a delivery limit and a dead-letter list.
A publish is "confirmed" only once every bound queue that has a running consumer has
acknowledged (or dead-lettered) the message (a queue with no consumer yet keeps it until one
starts), so an outbox row is deleted only after its effect is committed
downstream: a crash in between leaves the row, which is published again and deduplicated by
the consumers' inboxes.

Dead letters outlive the process: a service's bus keeps those of its queue in the service's own
database (``DeadLetterStore``), where the operator's list and replay find them after a restart.
The table belongs to this transport, not to the service's schema (a RabbitMQ deployment never has
it, the broker keeps its dead-letter queues), so the store creates it itself rather than through
the services' Alembic revisions.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import Column, DateTime, Integer, LargeBinary, MetaData, String, Table, delete, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.bus.base import BatchHandler, DeadLetter, OutgoingMessage, collect_batch, wait_settled
from shared.envelope import Envelope
from shared.topology import QUEUES

log = logging.getLogger("shared.bus.memory")


@dataclass(eq=False)
class _Message:
    body: bytes
    routing_key: str
    queue: str
    broker: InMemoryBroker
    delivery_count: int = 1
    done: asyncio.Future[None] = field(default_factory=lambda: asyncio.get_running_loop().create_future())
    envelope: Envelope | None = None
    _settled: bool = False

    def __post_init__(self) -> None:
        try:
            self.envelope = Envelope.from_bytes(self.body)
        except ValueError:
            self.envelope = None

    def _settle(self) -> bool:
        if self._settled:
            return False
        self._settled = True
        return True

    async def ack(self) -> None:
        if self._settle() and not self.done.done():
            self.done.set_result(None)

    async def retry(self) -> None:
        if not self._settle():
            return
        if self.delivery_count >= self.broker.delivery_limit:
            await self._to_dead_letter("delivery limit reached")
            return
        self._requeue(self.delivery_count + 1)

    async def dead_letter(self, reason: str | None = None) -> None:
        if self._settle():
            await self._to_dead_letter((reason or "rejected")[:200])

    def _requeue(self, delivery_count: int) -> None:
        again = _Message(self.body, self.routing_key, self.queue, self.broker, delivery_count, self.done)
        self.broker.queue(self.queue).put_nowait(again)

    async def _to_dead_letter(self, reason: str) -> None:
        letter = DeadLetter(self.body, self.routing_key, reason)
        store = self.broker.stores.get(self.queue)
        if store is None:
            self.broker.dead.setdefault(self.queue, []).append(letter)
        else:
            try:
                await store.add(self.queue, letter)
            except Exception:
                # Not stored, so not dead-lettered: it stays in the queue (as RabbitMQ keeps a message whose
                # dead-lettering was not confirmed), delivered again later.
                log.exception("could not store a dead letter; the message goes back to its queue")
                self._requeue(self.delivery_count)
                return
        log.warning("message dead-lettered", extra={"queue": self.queue, "routing_key": self.routing_key})
        if not self.done.done():
            self.done.set_result(None)


class DeadLetterStore:
    """The dead letters of the in-process bus, in the consuming service's own database (survive a restart)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.table = Table(
            "bus_dead_letters",
            MetaData(),
            Column("id", Integer, primary_key=True, autoincrement=True),
            Column("queue", String(200), nullable=False, index=True),
            Column("routing_key", String(200), nullable=False),
            Column("reason", String(200), nullable=False),
            Column("body", LargeBinary, nullable=False),
            Column("dead_at", DateTime(timezone=True), nullable=False),
        )
        self._ready = False

    async def _ensure(self) -> None:
        if not self._ready:
            async with self.engine.begin() as conn:
                await conn.run_sync(self.table.metadata.create_all, checkfirst=True)
            self._ready = True

    async def add(self, queue: str, letter: DeadLetter) -> None:
        await self._ensure()
        row = {
            "queue": queue,
            "routing_key": letter.routing_key,
            "reason": letter.reason,
            "body": letter.body,
            "dead_at": datetime.now(UTC),
        }
        async with self.engine.begin() as conn:
            await conn.execute(self.table.insert().values(**row))

    async def count(self, queue: str) -> int:
        await self._ensure()
        query = select(func.count()).select_from(self.table).where(self.table.c.queue == queue)
        async with self.engine.connect() as conn:
            return int((await conn.execute(query)).scalar_one())

    async def peek(self, queue: str, limit: int) -> list[DeadLetter]:
        await self._ensure()
        t = self.table
        query = select(t.c.body, t.c.routing_key, t.c.reason).where(t.c.queue == queue).order_by(t.c.id).limit(limit)
        async with self.engine.connect() as conn:
            return [DeadLetter(r.body, r.routing_key, r.reason) for r in (await conn.execute(query)).all()]

    async def take(self, queue: str, limit: int, put_back: Callable[[DeadLetter], None]) -> int:
        """Remove up to ``limit`` of the oldest dead letters, handing each to ``put_back`` as it commits."""
        await self._ensure()
        t = self.table
        query = select(t.c.id, t.c.body, t.c.routing_key, t.c.reason).where(t.c.queue == queue)
        async with self.engine.begin() as conn:
            rows = (await conn.execute(query.order_by(t.c.id).limit(limit))).all()
            if rows:
                await conn.execute(delete(t).where(t.c.id.in_([r.id for r in rows])))
        # After the commit: a crash before it leaves them dead-lettered, not lost; after it, they are queued.
        for r in rows:
            put_back(DeadLetter(r.body, r.routing_key, r.reason))
        return len(rows)


class InMemoryBroker:
    """One per process: the queues every in-process bus publishes to and consumes from."""

    def __init__(self, queues: Mapping[str, Sequence[str]] | None = None, delivery_limit: int = 5) -> None:
        self.bindings: dict[str, tuple[str, ...]] = {q: tuple(keys) for q, keys in (queues or QUEUES).items()}
        self.delivery_limit = delivery_limit
        self.queues: dict[str, asyncio.Queue[_Message]] = {}
        self.dead: dict[str, list[DeadLetter]] = {}  # queues without a store (a bus made without a database)
        self.stores: dict[str, DeadLetterStore] = {}
        self.available = True  # tests flip this to simulate a broker outage
        self.consuming: set[str] = set()

    def queue(self, name: str) -> asyncio.Queue[_Message]:
        if name not in self.queues:
            self.queues[name] = asyncio.Queue()
        return self.queues[name]

    def route(self, body: bytes, routing_key: str) -> list[asyncio.Future[None]]:
        waits: list[asyncio.Future[None]] = []
        for name, keys in self.bindings.items():
            if routing_key in keys:
                msg = _Message(body, routing_key, name, self)
                self.queue(name).put_nowait(msg)
                if name in self.consuming:
                    waits.append(msg.done)
        return waits


class InMemoryBus:
    def __init__(self, broker: InMemoryBroker, dead_letters: DeadLetterStore | None = None) -> None:
        self.broker = broker
        self.store = dead_letters
        self._tasks: list[asyncio.Task[None]] = []
        self._busy = 0  # batches being handled
        self._settled = asyncio.Event()

    async def start(self) -> None:
        for name in self.broker.bindings:
            self.broker.queue(name)

    async def publish(self, envelopes: Sequence[Envelope]) -> None:
        await self.publish_raw([OutgoingMessage(e.id, e.routing_key, e.to_bytes()) for e in envelopes])

    async def publish_raw(self, messages: Sequence[OutgoingMessage]) -> None:
        if not self.broker.available:
            raise ConnectionError("in-memory broker unavailable")
        waits: list[asyncio.Future[None]] = []
        for msg in messages:
            waits.extend(self.broker.route(msg.body, msg.routing_key))
        if waits:
            await asyncio.gather(*waits)

    async def consume(self, service: str, handler: BatchHandler, *, batch_size: int, batch_wait_s: float) -> None:
        queue = self.broker.queue(service)
        if self.store is not None:
            self.broker.stores[service] = self.store
        self.broker.consuming.add(service)

        async def loop() -> None:
            while True:
                batch = await collect_batch(queue, batch_size, batch_wait_s)  # type: ignore[arg-type]
                self._busy += 1
                try:
                    await handler(batch)
                except Exception:
                    log.exception("batch handler crashed; messages go back for redelivery")
                    for d in batch:
                        await d.retry()
                finally:
                    self._busy -= 1
                    self._settled.set()

        self._tasks.append(asyncio.create_task(loop(), name=f"consume:{service}"))

    async def dead_letter_count(self, service: str) -> int:
        if self.store is not None:
            return await self.store.count(service)
        return len(self.broker.dead.get(service, []))

    async def dead_letters(self, service: str, limit: int = 100) -> list[DeadLetter]:
        if self.store is not None:
            return await self.store.peek(service, limit)
        return list(self.broker.dead.get(service, []))[:limit]

    async def replay_dead_letters(self, service: str, limit: int = 100) -> int:
        def put_back(letter: DeadLetter) -> None:
            self.broker.queue(service).put_nowait(_Message(letter.body, letter.routing_key, service, self.broker))

        if self.store is not None:
            return await self.store.take(service, limit, put_back)
        letters = self.broker.dead.get(service, [])
        take, self.broker.dead[service] = letters[:limit], letters[limit:]
        for letter in take:
            put_back(letter)
        return len(take)

    async def ping(self) -> bool:
        return self.broker.available

    async def stop_consuming(self, timeout_s: float) -> bool:
        """Let the batches being handled finish, then stop taking messages (they stay queued)."""
        settled = await wait_settled(lambda: self._busy, self._settled, timeout_s)
        await self.close()
        return settled

    async def close(self) -> None:
        for task in self._tasks:
            self.broker.consuming.discard(task.get_name().removeprefix("consume:"))
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
