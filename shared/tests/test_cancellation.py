"""Long-lived loops stop when cancelled, even when their wake-up comes in the same turn of the loop.

On Python 3.11 ``asyncio.wait_for`` returns the inner result instead of raising when the cancellation and
the inner completion meet; a loop built on it would then go on forever and hang the app's shutdown."""

from __future__ import annotations

import asyncio
from pathlib import Path

from sqlalchemy import MetaData

from shared.bus.base import collect_batch
from shared.bus.memory import InMemoryBroker, InMemoryBus
from shared.db import make_engine
from shared.messaging import OutboxRelay, messaging_tables
from shared.metrics import ServiceMetrics


async def _stops(task: asyncio.Task[object]) -> bool:
    try:
        async with asyncio.timeout(1.0):
            await task
    except asyncio.CancelledError:
        return True
    except TimeoutError:
        task.cancel()  # the next cancellation, at a quieter moment, ends it
        return False
    return True


async def test_the_outbox_relay_stops_when_cancelled_as_it_is_woken(tmp_path: Path) -> None:
    metadata = MetaData()
    outbox, _inbox = messaging_tables(metadata)
    engine = await make_engine(f"sqlite+aiosqlite:///{tmp_path / 'relay.db'}")
    async with engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
    relay = OutboxRelay(engine, outbox, InMemoryBus(InMemoryBroker({})), ServiceMetrics("t"))
    relay.paused = True
    relay.poll_interval_s = 30
    try:
        for _ in range(20):
            task = asyncio.create_task(relay.run())
            await asyncio.sleep(0.02)  # now waiting to be woken
            relay.wake()
            task.cancel()
            assert await _stops(task)
    finally:
        await engine.dispose()


async def test_collecting_a_batch_stops_when_cancelled_as_a_message_arrives() -> None:
    for _ in range(20):
        queue: asyncio.Queue[int] = asyncio.Queue()
        queue.put_nowait(1)
        task = asyncio.create_task(collect_batch(queue, 10, 30.0))
        await asyncio.sleep(0.01)  # holds the first item, waits for more
        queue.put_nowait(2)
        task.cancel()
        assert await _stops(task)
