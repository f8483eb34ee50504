"""The event bus: one interface, two transports (RabbitMQ via aio-pika; in-process for embedded mode)."""

from shared.bus.base import BatchHandler, DeadLetter, Delivery, EventBus
from shared.bus.memory import InMemoryBroker, InMemoryBus

__all__ = ["BatchHandler", "DeadLetter", "Delivery", "EventBus", "InMemoryBroker", "InMemoryBus"]
