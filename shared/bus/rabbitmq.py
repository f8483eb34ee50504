"""RabbitMQ transport (aio-pika, aiormq for the hot paths).

One durable topic exchange; per consuming service one durable quorum queue with a delivery
limit and a dead-letter exchange; publisher confirms; manual acknowledgement after the
handler's transaction commits; a prefetch window the batches are drawn from.

**Packs.** The broker's cost is per message, not per byte: a quorum queue appends, replicates and
confirms each message, three queues per ``initiative.submitted``. So events published together with
one routing key travel as one message of up to ``pack_size`` envelopes: a JSON array with content type
``application/vnd.sangkien.events+json``. A lone event is still a plain envelope. A consumer unpacks a
pack into one ``Delivery`` per event and settles the message once the batch is handled: acknowledged
when every event was; otherwise the events not done are first published again on their own (to the
queue to be retried, or straight to the dead-letter queue), with their count of earlier deliveries in
``x-sangkien-attempts``, and only then is the pack acknowledged. If that publish fails, the whole pack
goes back to the queue; the events already handled are skipped by the inbox when it returns.

**Reasons.** A consumer may dead-letter an event with a reason (a payload its model refuses). A broker's
reject cannot carry one, so such an event, lone or in a pack, is published to the dead-letter queue with
the reason in ``x-sangkien-dead-reason`` and its message acknowledged, as a pack's events are.

Acknowledgements of a batch are sent as one ``basic.ack`` with ``multiple``: each consumer loop
handles its batches one after another on its own channel and never splits a message across batches,
so every earlier delivery tag of that channel is settled by then.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import aio_pika
import orjson
from aio_pika.abc import (
    AbstractChannel,
    AbstractExchange,
    AbstractIncomingMessage,
    AbstractQueue,
    AbstractRobustConnection,
)
from aio_pika.exceptions import ChannelInvalidStateError
from aiormq.abc import AbstractChannel as AmqpChannel
from pamqp.commands import Basic

from shared.bus.base import BatchHandler, DeadLetter, OutgoingMessage, collect_batch, wait_settled
from shared.envelope import Envelope
from shared.topology import DEAD_LETTER_EXCHANGE, EXCHANGE, QUEUES, RETIRED, dead_letter_queue_name, queue_name

PACK_CONTENT_TYPE = "application/vnd.sangkien.events+json"
PACK_MAX_BYTES = 512 * 1024
ATTEMPTS_HEADER = "x-sangkien-attempts"  # deliveries an event had inside a pack before it was split out
REASON_HEADER = "x-sangkien-dead-reason"
PUBLISH_SLICE = 32
MIN_PREFETCH_MESSAGES = 64
log = logging.getLogger("shared.bus.rabbitmq")


@dataclass(frozen=True, slots=True)
class _Frame:
    """One AMQP message to publish: a plain envelope, or a pack of ``count`` envelopes."""

    message_id: str
    routing_key: str
    body: bytes
    count: int
    headers: dict[str, Any] | None = None
    message_type: str | None = None  # the event's routing key, where routing_key is a queue's name


def pack(messages: Sequence[OutgoingMessage], pack_size: int, max_bytes: int = PACK_MAX_BYTES) -> list[_Frame]:
    """Group events by routing key (keeping their order) and cut each group into packs.

    The stored bytes of each envelope are joined as they are, without decoding them."""
    by_key: dict[str, list[OutgoingMessage]] = {}
    for msg in messages:
        by_key.setdefault(msg.routing_key, []).append(msg)
    frames: list[_Frame] = []
    for key, group in by_key.items():
        chunk: list[OutgoingMessage] = []
        size = 1  # the pack's body: "[", then each envelope followed by "," or "]"
        for msg in group:
            if chunk and (len(chunk) >= pack_size or size + len(msg.body) + 1 > max_bytes):
                frames.append(_frame(key, chunk))
                chunk, size = [], 1
            chunk.append(msg)
            size += len(msg.body) + 1
        if chunk:
            frames.append(_frame(key, chunk))
    return frames


def _frame(key: str, chunk: Sequence[OutgoingMessage]) -> _Frame:
    if len(chunk) == 1:
        return _Frame(chunk[0].event_id, key, chunk[0].body, 1)
    body = b"[" + b",".join(m.body for m in chunk) + b"]"
    return _Frame(f"{chunk[0].event_id}+{len(chunk) - 1}", key, body, len(chunk))


class _RabbitDelivery:
    """One event of an incoming message: the whole message, or one element of a pack.

    ``ack``, ``retry`` and ``dead_letter`` only record the outcome; the message is settled after the
    batch (``_settle``)."""

    __slots__ = ("envelope", "delivery_count", "outcome", "reason", "_body", "_item")

    def __init__(self, envelope: Envelope | None, delivery_count: int, body: bytes | None, item: object = None) -> None:
        self.envelope = envelope
        self.delivery_count = delivery_count
        self.outcome: str | None = None
        self.reason: str | None = None  # why it was dead-lettered, when the consumer said
        self._body = body
        self._item = item

    @property
    def body(self) -> bytes:
        if self._body is None:  # an element of a pack: encoded again only when someone needs its bytes
            self._body = orjson.dumps(self._item)
        return self._body

    async def ack(self) -> None:
        self.outcome = "ack"

    async def retry(self) -> None:
        self.outcome = "retry"

    async def dead_letter(self, reason: str | None = None) -> None:
        self.outcome = "dead"
        self.reason = reason


class _Incoming:
    """One AMQP message as received, with the deliveries (events) it holds."""

    __slots__ = ("message", "deliveries", "packed")

    def __init__(self, message: AbstractIncomingMessage) -> None:
        self.message = message
        headers = message.headers or {}
        # Quorum queues count earlier deliveries in x-delivery-count (absent on the first one); an event split
        # out of a pack carries the deliveries it had there.
        count = _int(headers.get("x-delivery-count")) + _int(headers.get(ATTEMPTS_HEADER)) + 1
        self.packed = message.content_type == PACK_CONTENT_TYPE
        self.deliveries: list[_RabbitDelivery] = []
        if self.packed:
            try:
                items = orjson.loads(message.body)
            except ValueError:
                items = None
            if isinstance(items, list) and items:
                for item in items:
                    try:
                        envelope: Envelope | None = Envelope.from_obj(item)
                    except ValueError:
                        envelope = None
                    self.deliveries.append(_RabbitDelivery(envelope, count, None, item))
                return
            self.packed = False  # not a readable pack: handled (dead-lettered) as one undecodable message
        try:
            envelope = Envelope.from_bytes(message.body)
        except ValueError:
            envelope = None
        self.deliveries.append(_RabbitDelivery(envelope, count, message.body))

    def weight(self) -> int:
        return len(self.deliveries)


def _int(value: object) -> int:
    try:
        return int(value or 0)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return 0


class RabbitMQBus:
    def __init__(
        self,
        url: str,
        *,
        prefix: str = "",
        prefetch: int = 200,
        delivery_limit: int = 5,
        topology: Mapping[str, Sequence[str]] | None = None,
        pack_size: int = 100,
    ) -> None:
        self.url = url
        self.prefix = prefix
        self.prefetch = prefetch
        self.delivery_limit = delivery_limit
        self.pack_size = max(1, pack_size)
        self.topology = dict(topology or QUEUES)
        self._connection: AbstractRobustConnection | None = None
        self._publish_channel: AbstractChannel | None = None
        self._exchange: AbstractExchange | None = None
        self._consumers: list[tuple[AbstractChannel, AbstractQueue, str]] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._held = 0  # messages received from the broker and not yet settled (graceful shutdown waits for 0)
        self._settled = asyncio.Event()

    @property
    def exchange_name(self) -> str:
        return f"{self.prefix}{EXCHANGE}"

    @property
    def dead_letter_exchange_name(self) -> str:
        return f"{self.prefix}{DEAD_LETTER_EXCHANGE}"

    async def start(self) -> None:
        self._connection = await aio_pika.connect_robust(self.url, client_properties={"connection_name": "sangkien"})
        self._publish_channel = await self._connection.channel(publisher_confirms=True)
        self._exchange = await self._declare(self._publish_channel)

    async def _declare(self, channel: AbstractChannel) -> AbstractExchange:
        exchange = await channel.declare_exchange(self.exchange_name, aio_pika.ExchangeType.TOPIC, durable=True)
        dlx = await channel.declare_exchange(self.dead_letter_exchange_name, aio_pika.ExchangeType.DIRECT, durable=True)
        for service, keys in self.topology.items():
            qname = queue_name(service, self.prefix)
            dlq = await channel.declare_queue(
                dead_letter_queue_name(service, self.prefix), durable=True, arguments={"x-queue-type": "quorum"}
            )
            await dlq.bind(dlx, routing_key=qname)
            queue = await channel.declare_queue(
                qname,
                durable=True,
                arguments={
                    "x-queue-type": "quorum",
                    "x-delivery-limit": self.delivery_limit,
                    "x-dead-letter-exchange": self.dead_letter_exchange_name,
                    "x-dead-letter-routing-key": qname,
                },
            )
            for key in keys:
                await queue.bind(exchange, routing_key=key)
            for key in RETIRED.get(service, ()):
                if key not in keys:
                    await queue.unbind(exchange, routing_key=key)
        return exchange

    async def publish(self, envelopes: Sequence[Envelope]) -> None:
        await self.publish_raw([OutgoingMessage(e.id, e.routing_key, e.to_bytes()) for e in envelopes])

    async def publish_raw(self, messages: Sequence[OutgoingMessage]) -> None:
        if self._exchange is None or self._publish_channel is None:
            raise ConnectionError("bus not started")
        try:
            # On a robust connection this is the channel as restored after a reconnection.
            channel = await self._publish_channel.get_underlay_channel()
        except Exception as exc:
            raise ConnectionError(f"publish failed: {exc!r}") from exc
        await _publish_frames(channel, self._exchange.name, pack(messages, self.pack_size))

    def _prefetch_messages(self, batch_size: int) -> int:
        """The channel's prefetch, in messages: ``prefetch`` counts events, and a message may hold a pack."""
        return max(MIN_PREFETCH_MESSAGES, math.ceil(max(self.prefetch, batch_size) / self.pack_size))

    async def consume(self, service: str, handler: BatchHandler, *, batch_size: int, batch_wait_s: float) -> None:
        if self._connection is None:
            raise ConnectionError("bus not started")
        channel = await self._connection.channel()
        await channel.set_qos(prefetch_count=self._prefetch_messages(batch_size))
        qname = queue_name(service, self.prefix)
        queue = await channel.get_queue(qname, ensure=True)
        inbox: asyncio.Queue[_Incoming] = asyncio.Queue()

        async def on_message(message: AbstractIncomingMessage) -> None:
            self._held += 1
            inbox.put_nowait(_Incoming(message))

        tag = await queue.consume(on_message, no_ack=False)
        self._consumers.append((channel, queue, tag))

        async def loop() -> None:
            while True:
                batch = await collect_batch(inbox, batch_size, batch_wait_s, _Incoming.weight)
                try:
                    await handler([d for m in batch for d in m.deliveries])
                except Exception:
                    log.exception("batch handler crashed; messages go back for redelivery")
                try:
                    await self._settle(batch, qname)
                except Exception:
                    # The channel is gone: the broker redelivers whatever was not acknowledged.
                    log.exception("could not acknowledge a batch; its messages will be redelivered")
                finally:
                    self._held -= len(batch)
                    self._settled.set()

        self._tasks.append(asyncio.create_task(loop(), name=f"consume:{service}"))

    async def _settle(self, batch: Sequence[_Incoming], qname: str) -> None:
        """Settle every message of a handled batch; the acknowledged ones in one frame per channel.

        ``multiple`` acknowledges every unsettled tag up to the highest: the earlier batches of this channel
        are all settled, the messages still waiting in the local queue have higher tags, and this batch's
        other messages were just retried, dead-lettered or acked."""
        acked: list[_Incoming] = []
        for m in batch:
            outcomes = {d.outcome for d in m.deliveries}
            if outcomes == {"ack"}:
                acked.append(m)
            elif not m.packed and not (outcomes == {"dead"} and m.deliveries[0].reason):
                with contextlib.suppress(Exception):
                    if outcomes == {"dead"}:
                        await m.message.reject(requeue=False)
                    else:  # retried, or left unsettled by a handler that crashed
                        # The quorum queue's x-delivery-limit dead-letters it once the limit is passed.
                        await m.message.nack(requeue=True)
            else:
                # A pack, or a message dead-lettered with a reason (a broker's reject cannot carry one): its events
                # are published on their own, then the message is acknowledged.
                try:
                    await self._split(m, qname)
                except Exception:
                    log.exception("could not split a message; it goes back to the queue whole")
                    with contextlib.suppress(Exception):
                        await m.message.nack(requeue=True)
                    continue
                acked.append(m)
        # Per AMQP channel: after a reconnection a batch may hold messages of the old channel (whose tags
        # mean nothing on the new one, and whose acknowledgement is moot: the broker redelivers them).
        last: dict[int, _Incoming] = {}
        for m in acked:
            try:
                channel = m.message.channel
            except ChannelInvalidStateError:
                continue
            held = last.get(id(channel))
            if held is None or (m.message.delivery_tag or 0) > (held.message.delivery_tag or 0):
                last[id(channel)] = m
        for m in last.values():
            await m.message.ack(multiple=True)

    async def _split(self, incoming: _Incoming, qname: str) -> None:
        """Publish the events of a pack that were not acknowledged on their own, and wait for the confirms."""
        if self._publish_channel is None:
            raise ConnectionError("bus not started")
        frames: list[tuple[str, _Frame]] = []
        for d in incoming.deliveries:
            if d.outcome == "ack":
                continue
            event_id = d.envelope.id if d.envelope is not None else ""
            if d.outcome == "dead":
                headers: dict[str, Any] = {REASON_HEADER: d.reason or "rejected"}
                exchange = self.dead_letter_exchange_name  # bound to the dead-letter queue by the queue's name
            else:
                headers = {ATTEMPTS_HEADER: d.delivery_count}
                exchange = ""  # the default exchange: straight back to this queue
            event_key = d.envelope.routing_key if d.envelope is not None else incoming.message.type
            frames.append((exchange, _Frame(event_id, qname, d.body, 1, headers, event_key)))
        channel = await self._publish_channel.get_underlay_channel()
        for exchange in {e for e, _ in frames}:
            await _publish_frames(channel, exchange, [f for e, f in frames if e == exchange])

    async def dead_letters(self, service: str, limit: int = 100) -> list[DeadLetter]:
        if self._connection is None:
            raise ConnectionError("bus not started")
        async with self._connection.channel() as channel:
            dlq = await channel.get_queue(dead_letter_queue_name(service, self.prefix), ensure=True)
            out: list[DeadLetter] = []
            seen: list[AbstractIncomingMessage] = []
            for _ in range(limit):
                msg = await dlq.get(no_ack=False, fail=False)
                if msg is None:
                    break
                seen.append(msg)
                headers = msg.headers or {}
                # Ours when the consumer dead-lettered it itself (with its reason), else the broker's x-death.
                reason = str(headers.get(REASON_HEADER, ""))
                deaths = headers.get("x-death")
                if not reason and isinstance(deaths, list) and deaths and isinstance(deaths[0], dict):
                    reason = str(deaths[0].get("reason", ""))
                # A pack that reached the delivery limit as a whole is shown event by event.
                key = msg.type or msg.routing_key or ""
                out.extend(DeadLetter(d.body, key, reason) for d in _Incoming(msg).deliveries)
            for msg in seen:  # peek only: give them back
                await msg.nack(requeue=True)
            return out[:limit]

    async def replay_dead_letters(self, service: str, limit: int = 100) -> int:
        if self._connection is None:
            raise ConnectionError("bus not started")
        count = 0
        async with self._connection.channel(publisher_confirms=True) as channel:
            dlq = await channel.get_queue(dead_letter_queue_name(service, self.prefix), ensure=True)
            default = channel.default_exchange
            for _ in range(limit):
                msg = await dlq.get(no_ack=False, fail=False)
                if msg is None:
                    break
                # A fresh message: the event gets the whole delivery limit again (no x-sangkien-attempts).
                await default.publish(
                    aio_pika.Message(
                        msg.body,
                        message_id=msg.message_id,
                        type=msg.type,
                        content_type=msg.content_type,
                        correlation_id=msg.correlation_id,
                        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                    ),
                    routing_key=queue_name(service, self.prefix),
                )
                await msg.ack()
                count += 1
        return count

    async def ping(self) -> bool:
        return self._connection is not None and not self._connection.is_closed

    async def stop_consuming(self, timeout_s: float) -> bool:
        """Graceful shutdown: cancel the consumers (the broker sends nothing more), then wait until every
        message already received is handled and settled. True when that happened within ``timeout_s``;
        otherwise ``close`` leaves the rest to the broker, which redelivers it."""
        for _channel, queue, tag in self._consumers:
            with contextlib.suppress(Exception):
                await queue.cancel(tag)
        return await wait_settled(lambda: self._held, self._settled, timeout_s)

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        for channel, queue, tag in self._consumers:
            with contextlib.suppress(Exception):
                await queue.cancel(tag)
            with contextlib.suppress(Exception):
                await channel.close()
        self._consumers.clear()
        self._exchange = None
        self._publish_channel = None
        if self._connection is not None:
            await self._connection.close()
            self._connection = None

    async def delete_topology(self) -> None:
        """Remove every exchange and queue of this prefix (test clean-up)."""
        conn = await aio_pika.connect(self.url)
        async with conn, conn.channel() as channel:
            for service in self.topology:
                for name in (queue_name(service, self.prefix), dead_letter_queue_name(service, self.prefix)):
                    with contextlib.suppress(Exception):
                        await channel.queue_delete(name)
            for name in (self.exchange_name, self.dead_letter_exchange_name):
                with contextlib.suppress(Exception):
                    await channel.exchange_delete(name)


async def _publish_frames(channel: AmqpChannel, exchange: str, frames: Sequence[_Frame]) -> None:
    """Publish with confirms; return once the broker confirmed every frame, raise otherwise.

    aiormq directly, not aio-pika's Exchange.publish: no Message object per frame, and no drain of the
    socket per frame (wait=False); each publish still waits for its own confirm."""
    try:
        pending = []
        for n, frame in enumerate(frames, 1):
            publish = channel.basic_publish(
                frame.body,
                exchange=exchange,
                routing_key=frame.routing_key,
                properties=Basic.Properties(
                    message_id=frame.message_id,
                    message_type=frame.message_type or frame.routing_key,
                    content_type=PACK_CONTENT_TYPE if frame.count > 1 else "application/json",
                    headers=frame.headers,
                    delivery_mode=2,
                ),
                # mandatory=False: an event nobody listens to is not an error.
                mandatory=False,
                timeout=10,
                wait=False,
            )
            pending.append(asyncio.ensure_future(publish))
            if n % PUBLISH_SLICE == 0:
                # Let the loop serve others between slices: a relay in a web process must not hold it for the
                # whole batch (the requests' tail latency).
                await asyncio.sleep(0)
        results = await asyncio.gather(*pending, return_exceptions=True)
    except Exception as exc:  # aiormq channel/connection errors, timeouts, nacks
        raise ConnectionError(f"publish failed: {exc!r}") from exc
    for frame, result in zip(frames, results, strict=True):
        if isinstance(result, BaseException):
            raise ConnectionError(f"publish failed: {result!r}") from result
        if not isinstance(result, Basic.Ack):
            raise ConnectionError(f"broker did not confirm {frame.routing_key} {frame.message_id}: {result!r}")
