"""The relay's floor on PostgreSQL: a poll reads from a little below the highest id it published, and a row that
became visible below that (its transaction committed after later ids were published) still goes, by the periodic
read from the start or at once when draining."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence

import pytest
from sqlalchemy import MetaData, Table, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from shared import messaging
from shared.bus.base import OutgoingMessage
from shared.db import make_engine
from shared.envelope import new_event
from shared.messaging import OutboxRelay, messaging_tables, outbox_row
from shared.metrics import ServiceMetrics
from shared.testing import pg_database

pytestmark = pytest.mark.integration


class Recorder:
    """A bus that keeps what the relay publishes."""

    def __init__(self) -> None:
        self.sent: list[str] = []

    async def publish_raw(self, messages: Sequence[OutgoingMessage]) -> None:
        self.sent.extend(m.event_id for m in messages)


@contextlib.asynccontextmanager
async def outbox_on_postgres() -> AsyncIterator[tuple[AsyncEngine, Table]]:
    """An engine on a fresh PostgreSQL database holding an outbox table."""
    metadata = MetaData()
    outbox, _inbox = messaging_tables(metadata)
    async with pg_database() as url:
        engine = await make_engine(url)
        try:
            async with engine.begin() as conn:
                await conn.run_sync(metadata.create_all)
            yield engine, outbox
        finally:
            await engine.dispose()


async def test_a_row_below_the_floor_is_published_by_the_read_from_the_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(messaging, "OUTBOX_LAG", 10)
    async with outbox_on_postgres() as (engine, outbox):
        bus = Recorder()
        relay = OutboxRelay(engine, outbox, bus, ServiceMetrics("floor_test"))  # type: ignore[arg-type]

        async def add(n: int, first_id: int) -> list[str]:
            events = [new_event("demo.noted", {"n": i}, producer="t") for i in range(n)]
            rows = [outbox_row(e) | {"id": first_id + i} for i, e in enumerate(events)]
            async with engine.begin() as conn:
                await conn.execute(insert(outbox), rows)
            return [e.id for e in events]

        first = await add(30, 1)
        assert await relay.publish_once() == 30 and bus.sent == first
        # The floor is 30 - 10: a row given id 5 that commits only now is not in a poll ...
        late = await add(1, 5)
        later = await add(2, 100)
        assert await relay.publish_once() == 2 and bus.sent[-2:] == later
        assert await relay.publish_once() == 0
        # ... until the poll that reads from the start (every OUTBOX_FULL_SCAN_S; draining: at once).
        relay.rescan()
        assert await relay.publish_once() == 1 and bus.sent[-1:] == late
        async with engine.connect() as conn:
            assert (await conn.execute(select(outbox.c.id))).all() == []
        assert len(bus.sent) == len(set(bus.sent)) == 33


class Gate(Recorder):
    """A bus whose publishes wait for ``open`` and fail while ``failing``."""

    def __init__(self) -> None:
        super().__init__()
        self.open = asyncio.Event()
        self.entered = asyncio.Event()
        self.failing = False

    async def publish_raw(self, messages: Sequence[OutgoingMessage]) -> None:
        self.entered.set()
        await self.open.wait()
        if self.failing:
            raise ConnectionError("the broker did not confirm")
        await super().publish_raw(messages)


async def test_rows_are_taken_by_one_relay_and_stay_when_the_broker_does_not_confirm() -> None:
    """A poll deletes the rows it publishes in the publishing transaction: a second relay (another replica) skips
    them meanwhile, and a publish the broker does not confirm leaves them all in place, to go in id order next."""
    async with outbox_on_postgres() as (engine, outbox):
        events = [new_event("demo.noted", {"n": i}, producer="t") for i in range(40)]
        async with engine.begin() as conn:
            await conn.execute(insert(outbox), [outbox_row(e) for e in reversed(events)])
        ids = [e.id for e in reversed(events)]  # in the order of the rows' ids
        first, second = Gate(), Recorder()
        holding = OutboxRelay(engine, outbox, first, ServiceMetrics("take_a"))  # type: ignore[arg-type]
        other = OutboxRelay(engine, outbox, second, ServiceMetrics("take_b"))  # type: ignore[arg-type]

        first.failing = True
        held = asyncio.create_task(holding.publish_once())
        await first.entered.wait()
        assert await other.publish_once() == 0 and second.sent == []  # every row is taken
        first.open.set()
        with pytest.raises(ConnectionError):
            await held
        async with engine.connect() as conn:
            assert len((await conn.execute(select(outbox.c.id))).all()) == 40

        first.failing = False
        assert await holding.publish_once() == 40 and first.sent == ids
        assert await other.publish_once() == 0 and second.sent == []
        async with engine.connect() as conn:
            assert (await conn.execute(select(outbox.c.id))).all() == []
