"""Group commit for POST /initiatives: many concurrent requests, one transaction, one multi-row insert.

Each request puts its prepared item on a queue and awaits a future; a writer task takes whatever
has gathered (waiting at most a short window for company), persists the lot in one transaction
and resolves the futures only after the commit, so every 201 is durable.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from intake.adapters.store import EventFactory, Outcome, Prepared, SeqAllocator, advance_seq, persist

log = logging.getLogger("intake.writer")


class GroupCommitWriter:
    def __init__(
        self,
        engine: AsyncEngine,
        make_event: EventFactory,
        *,
        window_s: float,
        max_items: int,
        writers: int,
        on_commit: Any,
        batch_sizes: Any,
    ) -> None:
        self.engine = engine
        self.make_event = make_event
        self.window_s = window_s
        self.max_items = max_items
        self.writers = 1 if engine.dialect.name == "sqlite" else writers
        self.on_commit = on_commit
        self.batch_sizes = batch_sizes
        self.queue: asyncio.Queue[tuple[Prepared, asyncio.Future[Outcome]]] = asyncio.Queue()
        self.running = False

    async def submit(self, item: Prepared) -> Outcome:
        if not self.running:
            raise RuntimeError("the group-commit writer is not running")
        future: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        self.queue.put_nowait((item, future))
        return await future

    async def run(self) -> None:
        self.running = True
        try:
            await asyncio.gather(*(self._loop() for _ in range(self.writers)))
        finally:
            self.running = False
            while not self.queue.empty():
                _, future = self.queue.get_nowait()
                if not future.done():
                    future.set_exception(RuntimeError("service stopping"))

    def _drain(self, batch: list[tuple[Prepared, asyncio.Future[Outcome]]]) -> None:
        while len(batch) < self.max_items:
            try:
                batch.append(self.queue.get_nowait())
            except asyncio.QueueEmpty:
                return

    async def _loop(self) -> None:
        # Each writer keeps its own connections (the batch's and, on PostgreSQL, the seq counter's):
        # no pool checkout, nor pre-ping, per batch.
        conns: dict[str, AsyncConnection] = {}
        try:
            while True:
                batch = [await self.queue.get()]
                self._drain(batch)
                if len(batch) < self.max_items and self.window_s > 0:
                    await asyncio.sleep(self.window_s)
                    self._drain(batch)
                try:
                    for name in ("batch", "seq") if self.engine.dialect.name == "postgresql" else ("batch",):
                        if name not in conns or conns[name].closed:
                            conns[name] = await self._connect(name)
                    flushed = await self._flush(conns, batch)
                except Exception as exc:
                    # No connection to be had (the database is away): these requests fail (503, shared.faults) and
                    # the writer lives on for the next ones.
                    log.warning("group commit could not connect", extra={"error": repr(exc)})
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    flushed = False
                if not flushed:
                    for conn in conns.values():
                        with contextlib.suppress(Exception):
                            await conn.close()
                    conns = {}
        finally:
            for conn in conns.values():
                with contextlib.suppress(Exception):
                    await conn.close()

    async def _connect(self, name: str, stack: contextlib.AsyncExitStack | None = None) -> AsyncConnection:
        conn = await self.engine.connect()
        if stack is not None:
            stack.push_async_callback(conn.close)
        if name == "seq":
            # Each UPDATE … RETURNING of the counter commits on its own: one round trip, no BEGIN/COMMIT.
            await conn.execution_options(isolation_level="AUTOCOMMIT")
        return conn

    def _seq_allocator(self, conns: dict[str, AsyncConnection]) -> SeqAllocator | None:
        seq_conn = conns.get("seq")
        if seq_conn is None:
            return None  # SQLite: one writer at a time anyway; the counter moves in the batch's transaction

        async def allocate(campaign: str, n: int) -> int:
            # A statement committed on its own: the counter row is locked for one statement, not for the
            # whole batch, so writers overlap. A batch that then fails leaves a gap; no number is reused.
            return await advance_seq(seq_conn, campaign, n)

        return allocate

    async def _flush(
        self, conns: dict[str, AsyncConnection], batch: list[tuple[Prepared, asyncio.Future[Outcome]]]
    ) -> bool:
        """Write a batch; answer False when the connections should be replaced."""
        live = [(item, fut) for item, fut in batch if not fut.cancelled()]
        if not live:
            return True
        try:
            outcomes = await self._write(conns, [item for item, _ in live])
        except Exception as exc:
            if len(live) == 1:
                log.exception("initiative write failed")
                if not live[0][1].done():
                    failure = RuntimeError("write failed")
                    failure.__cause__ = exc  # a database fault answers 503, not 500 (shared.faults)
                    live[0][1].set_exception(failure)
                return False
            # One bad item must not fail its neighbours: retry them one by one on fresh connections.
            log.warning("group commit failed; retrying its items one at a time", extra={"size": len(live)})
            for conn in conns.values():
                with contextlib.suppress(Exception):
                    await conn.close()
            async with contextlib.AsyncExitStack() as stack:
                fresh = {name: await self._connect(name, stack) for name in conns}
                for pair in live:
                    if not await self._flush(fresh, [pair]):
                        for name in fresh:
                            fresh[name] = await self._connect(name, stack)
            return False
        self.batch_sizes.observe(len(live))
        for (_, future), outcome in zip(live, outcomes, strict=True):
            if not future.done():
                future.set_result(outcome)
        return True

    async def _write(self, conns: dict[str, AsyncConnection], items: list[Prepared]) -> list[Outcome]:
        conn = conns["batch"]
        async with conn.begin():
            outcomes = await persist(conn, items, self.make_event, allocate_seq=self._seq_allocator(conns))
        self.on_commit()
        return outcomes
