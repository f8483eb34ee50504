"""Transactional outbox and inbox, the outbox relay, and the consumer dispatcher.

- ``stage`` writes an event into the outbox in the caller's transaction.
- ``OutboxRelay`` publishes outbox rows with publisher confirms and deletes them only once
  confirmed; on failure it backs off and tries again, forever.
- ``Dispatcher`` handles a batch of deliveries in one transaction: the inbox rows (event id,
  handler) and the handlers' effects commit together, and only then are the messages
  acknowledged. A duplicate is acknowledged and skipped. A failing batch is retried one
  message at a time so that one poison message cannot hold the others back.

An infrastructure fault is not a poison message. When handling fails because the database cannot
be reached (or with an error that says the connection, not the event, is at fault:
``shared.faults``), the dispatcher holds the batch and retries it in-process with backoff, for as
long as the database stays away; consumption pauses meanwhile (the transport waits for the
handler) and ``state()`` says so for ``/health``. Nothing is given back to the broker for it, so
it costs no delivery: on RabbitMQ quorum queues every nack/requeue counts toward
``x-delivery-limit``. Only an event failing on its own (a bad payload, a bug) is retried through
the broker and reaches the dead letter after the delivery limit.

A payload that does not fit the consumer's model of its event is **poison**: a handler parses
``envelope.data`` with ``parse_event`` before it changes anything, and the ``PoisonEvent`` raised
there dead-letters that event at once (no retry can fix a payload), with the validation reason,
while the rest of its batch commits and is acknowledged as usual.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Delete,
    Insert,
    LargeBinary,
    MetaData,
    String,
    Table,
    bindparam,
    delete,
    func,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from shared.bus.base import Delivery, EventBus, OutgoingMessage
from shared.db import BigIntId, insert_ignore
from shared.envelope import Envelope
from shared.faults import is_infrastructure_error
from shared.logs import correlation_id_var
from shared.metrics import ServiceMetrics

log = logging.getLogger("shared.messaging")

# A handler parses ``envelope.data`` with ``parse_event`` before any effect (see the module's docstring).
Handler = Callable[[AsyncSession, Envelope], Awaitable[None]]
POISON_REASON_CHARS = 200  # the dead-letter stores keep a reason of at most this many characters
EventModel = TypeVar("EventModel", bound=BaseModel)


class PoisonEvent(Exception):
    """The payload does not fit the consumer's model of its event: dead-lettered at once, with ``reason``."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def parse_event(model: type[EventModel], envelope: Envelope) -> EventModel:
    """``envelope.data`` as the consumer's own model of the event; ``PoisonEvent`` when it does not fit."""
    try:
        return model.model_validate(envelope.data)
    except ValidationError as exc:
        raise PoisonEvent(poison_reason(exc)) from exc


AfterBatch = Callable[[AsyncSession, Sequence[Envelope]], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Subscription:
    """One line of a service's subscription list: the routing key and its handler.

    ``idempotent``: the handler's own keys already make a second delivery of an event change nothing (the highest
    ``revision`` or ``decision_seq`` wins, a withdrawal is terminal, a fact is inserted once), whether it comes
    twice, late or out of order, and across replicas (under the rows' locks). Its events then take no inbox row:
    the inbox was ~12 µs of PostgreSQL per event and consumer, five rows per initiative (docs/benchmarks.md).
    Duplicates inside one batch are still skipped before any handler runs; those across batches are absorbed by
    the handler itself and are not counted in ``events_duplicate``."""

    routing_key: str
    handler: Handler
    idempotent: bool = False


def messaging_tables(metadata: MetaData) -> tuple[Table, Table]:
    """Add the ``outbox`` and ``inbox`` tables to a service's metadata."""
    outbox = Table(
        "outbox",
        metadata,
        Column("id", BigIntId, primary_key=True, autoincrement=True),
        Column("event_id", String(36), nullable=False),
        Column("routing_key", String(200), nullable=False),
        Column("body", LargeBinary, nullable=False),
        Column("created_at", DateTime(timezone=True), nullable=False),
    )
    inbox = Table(
        "inbox",
        metadata,
        Column("event_id", String(36), primary_key=True),
        Column("handler", String(200), primary_key=True),
        Column("processed_at", DateTime(timezone=True), nullable=False),
    )
    return outbox, inbox


def outbox_row(envelope: Envelope, created_at: datetime | None = None) -> dict[str, Any]:
    """The outbox row of an envelope, for Core multi-row inserts on hot paths."""
    return {
        "event_id": envelope.id,
        "routing_key": envelope.routing_key,
        "body": envelope.to_bytes(),
        "created_at": created_at or datetime.now(UTC),
    }


def mark_outbox_dirty(session: AsyncSession) -> None:
    session.info["outbox_dirty"] = True


async def stage(session: AsyncSession, outbox: Table, *envelopes: Envelope) -> None:
    """Write events into the outbox inside the session's current transaction."""
    if not envelopes:
        return
    ids, keys = [e.id for e in envelopes], [e.routing_key for e in envelopes]
    await stage_encoded(session, outbox, ids, keys, [e.to_bytes() for e in envelopes])


async def stage_encoded(
    session: AsyncSession,
    outbox: Table,
    event_ids: Sequence[str],
    routing_keys: Sequence[str],
    bodies: Sequence[bytes],
) -> None:
    """``stage`` of events already encoded (``shared.envelope.encode_many``): their ids, routing keys and bytes."""
    if not bodies:
        return
    now = datetime.now(UTC)
    if session.bind.dialect.name == "postgresql" and len(bodies) > 1:
        # One statement, however many events (an executemany is one execution per row).
        await session.execute(outbox_insert_many(outbox), outbox_many_params(event_ids, routing_keys, bodies))
    else:
        rows = [
            {"event_id": i, "routing_key": k, "body": b, "created_at": now}
            for i, k, b in zip(event_ids, routing_keys, bodies, strict=True)
        ]
        await session.execute(outbox.insert(), rows)
    mark_outbox_dirty(session)


def outbox_many_params(
    event_ids: Sequence[str], routing_keys: Sequence[str], bodies: Sequence[bytes]
) -> dict[str, Any]:
    """The parameters of ``outbox_insert_many``: the events' ids, routing keys and bytes, staged now."""
    return {
        "event_ids": list(event_ids),
        "routing_keys": list(routing_keys),
        "bodies": list(bodies),
        "now": datetime.now(UTC),
    }


@cache
def outbox_insert_many(outbox: Table) -> Insert:
    """PostgreSQL: ``INSERT INTO outbox … SELECT unnest(…)`` of many events in one statement (its parameters:
    ``outbox_many_params``). A caller may attach its own writes as data-modifying CTEs (``add_cte``): PostgreSQL
    runs each once, in the same statement; the caller then calls ``mark_outbox_dirty``."""
    return outbox.insert().from_select(
        ["event_id", "routing_key", "body", "created_at"],
        select(
            func.unnest(bindparam("event_ids", type_=ARRAY(String))),
            func.unnest(bindparam("routing_keys", type_=ARRAY(String))),
            func.unnest(bindparam("bodies", type_=ARRAY(LargeBinary))),
            bindparam("now", type_=DateTime(timezone=True)),
        ),
    )


# The primary key's left end holds the rows the relay deleted until vacuum clears them, and a poll that reads it
# from the start steps over all of them (at 43,000 events, 1,041 pages per poll; bench/pipeline.py at 100,000).
# So a poll starts OUTBOX_LAG ids below the highest it published, and every OUTBOX_FULL_SCAN_S one reads from the
# start: a row whose transaction committed after later ids were published (ids are given at insert, rows become
# visible at commit) is published by it, seconds late, never lost.
OUTBOX_LAG = 20_000
OUTBOX_FULL_SCAN_S = 5.0


class OutboxRelay:
    def __init__(
        self,
        engine: AsyncEngine,
        outbox: Table,
        bus: EventBus,
        metrics: ServiceMetrics,
        *,
        batch_size: int = 500,
        poll_interval_s: float = 0.5,
    ) -> None:
        self.engine = engine
        self.outbox = outbox
        self.bus = bus
        self.metrics = metrics
        self.batch_size = batch_size
        self.poll_interval_s = poll_interval_s
        self._wake = asyncio.Event()
        # PostgreSQL: a poll takes its rows by deleting them (``_taking``), from the floor on or from the start.
        self._pg_take_from_floor = self._taking(from_floor=True)
        self._pg_take_all = self._taking(from_floor=False)
        self.paused = False  # tests stop the path between outbox and broker with this
        self._last_count = 0.0
        self._floor: int | None = None  # PostgreSQL: the lowest id a poll reads from (see OUTBOX_LAG)
        self._full_scan_at = 0.0

    def _taking(self, *, from_floor: bool) -> Delete:
        """``WITH picked AS (SELECT id … ORDER BY id LIMIT n FOR UPDATE SKIP LOCKED) DELETE … RETURNING`` the rows.

        The rows are deleted in the transaction that publishes them: if the broker does not confirm, it rolls back
        and they are there again. Locking them with a SELECT and deleting them afterwards wrote each row twice
        (the lock, then the deletion) in two statements."""
        picked = select(self.outbox.c.id).order_by(self.outbox.c.id).limit(self.batch_size)
        if from_floor:
            picked = picked.where(self.outbox.c.id >= bindparam("floor", type_=BigInteger))
        # Replicas share the table: each row is taken by one relay while it publishes.
        taken = picked.with_for_update(skip_locked=True).cte("picked")
        o = self.outbox.c
        return delete(self.outbox).where(o.id == taken.c.id).returning(o.id, o.event_id, o.routing_key, o.body)

    def wake(self) -> None:
        self._wake.set()

    def rescan(self) -> None:
        """``wake``, the next poll reading the outbox from the start (draining: a row behind the floor goes now)."""
        self._full_scan_at = 0.0
        self._wake.set()

    async def run(self) -> None:
        backoff = 0.1
        while True:
            try:
                published = 0 if self.paused else await self.publish_once()
                backoff = 0.1
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.metrics.outbox_publish_failures.inc()
                log.warning("outbox relay could not publish; will retry", extra={"error": repr(exc)})
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            await self._refresh_backlog()
            if published < self.batch_size:
                # asyncio.timeout, not wait_for: on Python 3.11 wait_for swallows a cancellation that meets the
                # wake-up in one turn of the loop, and the relay would never stop.
                try:
                    async with asyncio.timeout(self.poll_interval_s):
                        await self._wake.wait()
                except TimeoutError:
                    pass
                self._wake.clear()

    async def publish_once(self) -> int:
        query = (
            select(self.outbox.c.id, self.outbox.c.event_id, self.outbox.c.routing_key, self.outbox.c.body)
            .order_by(self.outbox.c.id)
            .limit(self.batch_size)
        )
        if self.engine.dialect.name == "postgresql":
            now = asyncio.get_running_loop().time()
            take, params = self._pg_take_all, {}
            if self._floor is not None and now - self._full_scan_at < OUTBOX_FULL_SCAN_S:
                take, params = self._pg_take_from_floor, {"floor": self._floor}
            else:
                self._full_scan_at = now
            async with self.engine.begin() as conn:
                rows = sorted((await conn.execute(take, params)).all(), key=lambda r: r.id)  # RETURNING has no order
                if not rows:
                    return 0
                await self._publish(rows)
            self._floor = max(self._floor or 0, rows[-1].id - OUTBOX_LAG)
            return len(rows)
        # SQLite has one writer process: read, publish, then delete in a second transaction.
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        if not rows:
            return 0
        await self._publish(rows)
        async with self.engine.begin() as conn:
            await conn.execute(delete(self.outbox).where(self.outbox.c.id.in_([r.id for r in rows])))
        return len(rows)

    async def _publish(self, rows: Sequence[Any]) -> None:
        # The stored bytes go out as they are: no decode/re-encode per event on the relay's path.
        await self.bus.publish_raw([OutgoingMessage(r.event_id, r.routing_key, r.body) for r in rows])
        for key, n in Counter(r.routing_key for r in rows).items():
            self.metrics.events_published.labels(key.rsplit(".v", 1)[0]).inc(n)

    async def _refresh_backlog(self) -> None:
        loop = asyncio.get_running_loop()
        if loop.time() - self._last_count < 1.0:
            return
        self._last_count = loop.time()
        if self.engine.dialect.name == "postgresql":
            # The span of ids waiting, from the primary key's two ends: count(*) would read every row version
            # the relay deleted and vacuum has not yet cleared (tens of ms after a burst, every second). Rows
            # published out of order by another replica make it an upper bound.
            ids = self.outbox.c.id
            query = select(func.coalesce(func.max(ids) - func.min(ids) + 1, 0))
            if self._floor is not None:  # the deleted rows' left end, as a poll (OUTBOX_LAG)
                query = query.where(ids >= self._floor)
        else:
            query = select(func.count()).select_from(self.outbox)
        async with self.engine.connect() as conn:
            count = (await conn.execute(query)).scalar_one()
        self.metrics.outbox_backlog.set(count)


class Dispatcher:
    def __init__(
        self,
        service: str,
        sessions: async_sessionmaker[AsyncSession],
        inbox: Table,
        subscriptions: Sequence[Subscription],
        metrics: ServiceMetrics,
        *,
        after_batch: AfterBatch | None = None,
        on_commit: Callable[[], None] | None = None,
        delivery_limit: int = 5,
        hold_backoff_s: tuple[float, float] = (0.2, 5.0),
        transient_budget_s: float = 60.0,
    ) -> None:
        self.service = service
        self.delivery_limit = delivery_limit
        # Holding a batch through an infrastructure fault: the first and the longest pause between attempts, and
        # how long an error that only looks like one (the database answers meanwhile) is retried in-process
        # before it is taken as the event's own failure.
        self.hold_backoff_s = hold_backoff_s
        self.transient_budget_s = transient_budget_s
        self._paused_since: datetime | None = None
        self._pause_reason = ""
        self._held = 0
        self.sessions = sessions
        self.inbox = inbox
        self.handlers = {s.routing_key: s.handler for s in subscriptions}
        self.idempotent = frozenset(s.routing_key for s in subscriptions if s.idempotent)
        self.metrics = metrics
        self.after_batch = after_batch
        self.on_commit = on_commit
        # PostgreSQL: the whole batch's inbox rows in one statement, from arrays (built once, compiled once).
        self._pg_inbox: Insert = (
            pg_insert(inbox)
            .from_select(
                ["event_id", "handler", "processed_at"],
                select(
                    func.unnest(bindparam("event_ids", type_=ARRAY(String))),
                    func.unnest(bindparam("handlers", type_=ARRAY(String))),
                    bindparam("now", type_=DateTime(timezone=True)),
                ),
            )
            .on_conflict_do_nothing(index_elements=["event_id", "handler"])
            .returning(inbox.c.event_id, inbox.c.handler)
        )

    async def __call__(self, deliveries: Sequence[Delivery]) -> None:
        good: list[Delivery] = []
        for d in deliveries:
            if d.delivery_count > 1:
                self.metrics.events_redelivered.labels(d.envelope.type if d.envelope else "undecodable").inc()
            if d.envelope is None:
                self.metrics.events_failed.labels("undecodable").inc()
                self.metrics.events_dead_lettered.labels("undecodable").inc()
                await d.dead_letter("undecodable: not an event envelope")
            elif d.envelope.routing_key not in self.handlers:
                await d.ack()  # tolerant reader: an event this service does not handle
            else:
                good.append(d)
        if not good:
            return
        try:
            await self._process_holding(good)
        except Exception:
            if len(good) == 1:
                await self._fail(good[0])
                return
            log.warning("batch failed; retrying its messages one at a time", extra={"size": len(good)})
            for d in good:
                try:
                    await self._process_holding([d])
                except Exception:
                    await self._fail(d)
            return

    def state(self) -> dict[str, Any]:
        """For ``/health``: whether consumption is paused on an infrastructure fault, since when and why."""
        if self._paused_since is None:
            return {"state": "running"}
        return {
            "state": "paused",
            "since": self._paused_since.isoformat(),
            "reason": self._pause_reason,
            "held_events": self._held,
        }

    @property
    def paused(self) -> bool:
        return self._paused_since is not None

    async def _process_holding(self, deliveries: Sequence[Delivery]) -> None:
        """``_process``, held and retried in-process while the fault is the infrastructure's.

        Raises what ``_process`` raised once the failure is the events' own: the database answers and the
        error is not a connection's, or it looks like one but has persisted for ``transient_budget_s``."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        delay, longest = self.hold_backoff_s
        while True:
            try:
                await self._process(deliveries)
            except Exception as exc:
                database_up = await self.database_answers()
                if database_up and (
                    not is_infrastructure_error(exc) or loop.time() - started > self.transient_budget_s
                ):
                    raise
                reason = "database unreachable" if not database_up else f"transient error: {type(exc).__name__}"
                self._pause(reason, len(deliveries), exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, longest)
                continue
            self._resume()
            return

    async def database_answers(self, timeout_s: float = 5.0) -> bool:
        try:
            async with asyncio.timeout(timeout_s), self.sessions() as session:
                await session.execute(text("SELECT 1"))
        except Exception:
            return False
        return True

    def _pause(self, reason: str, held: int, exc: Exception) -> None:
        if self._paused_since is None or reason != self._pause_reason:
            log.warning(
                "consumer paused: infrastructure fault; the batch is held and retried, not given back",
                extra={"service": self.service, "reason": reason, "held_events": held, "error": repr(exc)},
            )
        if self._paused_since is None:
            self._paused_since = datetime.now(UTC)
        self._pause_reason = reason
        self._held = held

    def _resume(self) -> None:
        if self._paused_since is not None:
            log.warning(
                "consumer resumed",
                extra={"service": self.service, "paused_s": (datetime.now(UTC) - self._paused_since).total_seconds()},
            )
            self._paused_since = None
            self._pause_reason = ""
            self._held = 0

    async def _process(self, deliveries: Sequence[Delivery]) -> None:
        envs = [d.envelope for d in deliveries if d.envelope is not None]
        fresh: list[Envelope] = []
        poison: dict[tuple[str, str], str] = {}
        async with self.sessions() as session, session.begin():
            # First occurrence of each (event, handler) in the batch.
            unique: dict[tuple[str, str], Envelope] = {}
            for env in envs:
                if (env.id, env.routing_key) in unique:
                    self.metrics.events_duplicate.labels(env.type).inc()
                else:
                    unique[(env.id, env.routing_key)] = env
            claimed = await self._claim(session, [key for key in unique if key[1] not in self.idempotent])
            for key, env in unique.items():
                if key not in claimed and key[1] not in self.idempotent:
                    self.metrics.events_duplicate.labels(env.type).inc()
                    continue
                token = correlation_id_var.set(env.correlation_id)
                try:
                    await self.handlers[env.routing_key](session, env)
                except PoisonEvent as exc:
                    poison[key] = exc.reason
                    continue
                finally:
                    correlation_id_var.reset(token)
                fresh.append(env)
            if poison:
                # Not handled, so not in the inbox: replayed once its consumer can read it, it is handled then.
                for event_id, handler in poison:
                    if handler in self.idempotent:
                        continue  # it took no row
                    await session.execute(
                        delete(self.inbox).where(self.inbox.c.event_id == event_id, self.inbox.c.handler == handler)
                    )
            if self.after_batch is not None and fresh:
                await self.after_batch(session, fresh)
            dirty = bool(session.info.pop("outbox_dirty", False))
        if dirty and self.on_commit is not None:
            self.on_commit()
        for etype, n in Counter(env.type for env in fresh).items():
            self.metrics.events_consumed.labels(etype).inc(n)
        for d in deliveries:
            # One dead letter per poison event: a second copy of it in the batch is acknowledged.
            reason = poison.pop((d.envelope.id, d.envelope.routing_key), None) if poison and d.envelope else None
            if reason is None:
                await d.ack()
                continue
            etype = d.envelope.type if d.envelope else "undecodable"
            self.metrics.events_failed.labels(etype).inc()
            self.metrics.events_dead_lettered.labels(etype).inc()
            log.warning("poison event dead-lettered", extra={"event_type": etype, "reason": reason})
            await d.dead_letter(reason)

    async def _claim(self, session: AsyncSession, keys: list[tuple[str, str]]) -> set[tuple[str, str]]:
        """Insert the inbox rows; return the (event id, handler) pairs not seen before."""
        if not keys:
            return set()
        now = datetime.now(UTC)
        dialect = session.bind.dialect.name
        if dialect == "postgresql":
            params = {"event_ids": [i for i, _ in keys], "handlers": [h for _, h in keys], "now": now}
            return {(r[0], r[1]) for r in (await session.execute(self._pg_inbox, params)).all()}
        stmt = insert_ignore(self.inbox, dialect, ["event_id", "handler"]).returning(
            self.inbox.c.event_id, self.inbox.c.handler
        )
        rows = [{"event_id": i, "handler": h, "processed_at": now} for (i, h) in keys]
        return {(r.event_id, r.handler) for r in (await session.execute(stmt, rows)).all()}

    async def _fail(self, d: Delivery) -> None:
        etype = d.envelope.type if d.envelope else "undecodable"
        self.metrics.events_failed.labels(etype).inc()
        log.exception("handler failed", extra={"event_type": etype, "delivery_count": d.delivery_count})
        if d.delivery_count >= self.delivery_limit:
            self.metrics.events_dead_lettered.labels(etype).inc()
            await d.dead_letter()
            return
        # The event failed on its own (infrastructure faults never get here): back off a little and give it back
        # for another delivery, counted against the limit.
        await asyncio.sleep(min(0.05 * 2 ** (d.delivery_count - 1), 2.0))
        await d.retry()


def poison_reason(exc: ValidationError) -> str:
    """The dead letter's reason for a payload its consumer's model refused: each field and what is wrong."""
    problems = "; ".join(
        f"{'.'.join(str(p) for p in err['loc']) or 'data'}: {err['msg']}" for err in exc.errors(include_url=False)
    )
    return f"invalid payload ({exc.title}): {problems}"[:POISON_REASON_CHARS]
