"""The message bus: Kafka in production, an in-process log in the embedded demo; one interface."""

from smartbus.bus.base import Consumer, Producer, Record

__all__ = ["Consumer", "Producer", "Record"]
