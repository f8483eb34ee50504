"""RabbitMQ transport (aio-pika).

One durable topic exchange; per consuming service one durable quorum queue with a delivery
limit and a dead-letter exchange; publisher confirms; manual acknowledgement after the
handler's transaction commits; a prefetch window the batches are drawn from.

Acknowledgements of a batch are sent as one ``basic.ack`` with ``multiple`` once the batch handler
returns: ``Delivery.ack`` only marks the message, and each consumer loop handles its batches one
after another on its own channel, so every earlier delivery tag of that channel is settled by then.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping, Sequence

import aio_pika
from aio_pika.abc import (
    AbstractChannel,
    AbstractExchange,
    AbstractIncomingMessage,
    AbstractQueue,
    AbstractRobustConnection,
)
from aio_pika.exceptions import ChannelInvalidStateError
from pamqp.commands import Basic

from shared.bus.base import BatchHandler, DeadLetter, Delivery, OutgoingMessage, collect_batch
from shared.envelope import Envelope
from shared.topology import DEAD_LETTER_EXCHANGE, EXCHANGE, QUEUES, dead_letter_queue_name, queue_name

PUBLISH_SLICE = 32
log = logging.getLogger("shared.bus.rabbitmq")


class _RabbitDelivery:
    def __init__(self, message: AbstractIncomingMessage) -> None:
        self.message = message
        self.body = message.body
        headers = message.headers or {}
        # Quorum queues count earlier deliveries in x-delivery-count (absent on the first one).
        self.delivery_count = int(headers.get("x-delivery-count", 0) or 0) + 1  # type: ignore[call-overload]
        self.acked = False  # marked by ack(); the batch's acknowledgement goes out in one frame afterwards
        self.settled = False  # retried or dead-lettered (sent at once)
        try:
            self.envelope: Envelope | None = Envelope.from_bytes(message.body)
        except ValueError:
            self.envelope = None

    async def ack(self) -> None:
        self.acked = True

    async def retry(self) -> None:
        # The quorum queue's x-delivery-limit dead-letters it once the limit is passed.
        self.settled = True
        await self.message.nack(requeue=True)

    async def dead_letter(self) -> None:
        self.settled = True
        await self.message.reject(requeue=False)


async def _settle_batch(deliveries: Sequence[Delivery]) -> None:
    """Give back what the handler left unsettled, then acknowledge the acked ones in one frame.

    ``multiple`` acknowledges every unsettled tag up to the highest: the earlier batches of this channel
    are all settled, the messages still waiting in the local queue have higher tags, and this batch's
    other messages were just retried, dead-lettered or acked."""
    batch = [d for d in deliveries if isinstance(d, _RabbitDelivery)]
    for d in batch:
        if not d.acked and not d.settled:
            with contextlib.suppress(Exception):
                await d.retry()
    # Per AMQP channel: after a reconnection a batch may hold deliveries of the old channel (whose tags
    # mean nothing on the new one, and whose acknowledgement is moot: the broker redelivers them).
    last: dict[int, _RabbitDelivery] = {}
    for d in batch:
        if not d.acked:
            continue
        try:
            channel = d.message.channel
        except ChannelInvalidStateError:
            continue
        held = last.get(id(channel))
        if held is None or (d.message.delivery_tag or 0) > (held.message.delivery_tag or 0):
            last[id(channel)] = d
    for d in last.values():
        await d.message.ack(multiple=True)


class RabbitMQBus:
    def __init__(
        self,
        url: str,
        *,
        prefix: str = "",
        prefetch: int = 200,
        delivery_limit: int = 5,
        topology: Mapping[str, Sequence[str]] | None = None,
    ) -> None:
        self.url = url
        self.prefix = prefix
        self.prefetch = prefetch
        self.delivery_limit = delivery_limit
        self.topology = dict(topology or QUEUES)
        self._connection: AbstractRobustConnection | None = None
        self._publish_channel: AbstractChannel | None = None
        self._exchange: AbstractExchange | None = None
        self._consumers: list[tuple[AbstractChannel, AbstractQueue, str]] = []
        self._tasks: list[asyncio.Task[None]] = []

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
        return exchange

    async def publish(self, envelopes: Sequence[Envelope]) -> None:
        await self.publish_raw([OutgoingMessage(e.id, e.routing_key, e.to_bytes()) for e in envelopes])

    async def publish_raw(self, messages: Sequence[OutgoingMessage]) -> None:
        if self._exchange is None or self._publish_channel is None:
            raise ConnectionError("bus not started")
        exchange = self._exchange.name
        try:
            # aiormq directly, not aio-pika's Exchange.publish: no Message object per event, and no
            # drain of the socket per message (wait=False); each publish still waits for its confirm.
            # On a robust connection this is the channel as restored after a reconnection.
            channel = await self._publish_channel.get_underlay_channel()
            pending = []
            for n, msg in enumerate(messages, 1):
                publish = channel.basic_publish(
                    msg.body,
                    exchange=exchange,
                    routing_key=msg.routing_key,
                    properties=Basic.Properties(
                        message_id=msg.event_id,
                        message_type=msg.routing_key,
                        content_type="application/json",
                        delivery_mode=2,
                    ),
                    # mandatory=False: an event nobody listens to is not an error.
                    mandatory=False,
                    timeout=10,
                    wait=False,
                )
                pending.append(asyncio.ensure_future(publish))
                if n % PUBLISH_SLICE == 0:
                    # Let the loop serve others between slices: a relay in a web process must not hold
                    # it for the whole batch (the requests' tail latency).
                    await asyncio.sleep(0)
            results = await asyncio.gather(*pending, return_exceptions=True)
        except Exception as exc:  # aiormq channel/connection errors, timeouts, nacks
            raise ConnectionError(f"publish failed: {exc!r}") from exc
        for msg, result in zip(messages, results, strict=True):
            if isinstance(result, BaseException):
                raise ConnectionError(f"publish failed: {result!r}") from result
            if not isinstance(result, Basic.Ack):
                raise ConnectionError(f"broker did not confirm {msg.routing_key} {msg.event_id}: {result!r}")

    async def consume(self, service: str, handler: BatchHandler, *, batch_size: int, batch_wait_s: float) -> None:
        if self._connection is None:
            raise ConnectionError("bus not started")
        channel = await self._connection.channel()
        await channel.set_qos(prefetch_count=max(self.prefetch, batch_size))
        queue = await channel.get_queue(queue_name(service, self.prefix), ensure=True)
        inbox: asyncio.Queue[Delivery] = asyncio.Queue()

        async def on_message(message: AbstractIncomingMessage) -> None:
            inbox.put_nowait(_RabbitDelivery(message))

        tag = await queue.consume(on_message, no_ack=False)
        self._consumers.append((channel, queue, tag))

        async def loop() -> None:
            while True:
                batch = await collect_batch(inbox, batch_size, batch_wait_s)
                try:
                    await handler(batch)
                except Exception:
                    log.exception("batch handler crashed; messages go back for redelivery")
                try:
                    await _settle_batch(batch)
                except Exception:
                    # The channel is gone: the broker redelivers whatever was not acknowledged.
                    log.exception("could not acknowledge a batch; its messages will be redelivered")

        self._tasks.append(asyncio.create_task(loop(), name=f"consume:{service}"))

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
                reason = ""
                deaths = (msg.headers or {}).get("x-death")
                if isinstance(deaths, list) and deaths and isinstance(deaths[0], dict):
                    reason = str(deaths[0].get("reason", ""))
                out.append(DeadLetter(msg.body, msg.routing_key or "", reason))
            for msg in seen:  # peek only: give them back
                await msg.nack(requeue=True)
            return out

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
