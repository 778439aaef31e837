"""What the console needs from Kafka, and nothing more.

The console sends duty commands to ``yujing.commands``, declares the topics it
uses, and follows ``yujing.incidents``, ``yujing.readings`` and
``yujing.deadletter``. It does not open Kafka connections itself: the process
that serves it (``yujing gateway``, see yujing/cli/serve.py) passes in an
object with these methods (yujing/connectors/bus.py: the gateway's producer and
consumers without a consumer group). So the console and the ingest connectors
never import each other, and a test can hand the console a bus in memory.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Protocol

Handler = Callable[[bytes | None, bytes | None], object]
"""Called with each record's key and value, in order."""


class Bus(Protocol):
    async def ensure_topics(self, names: list[str]) -> None:
        """Create the topics that do not exist yet (one partition count for all)."""

    async def send(self, topic: str, value: bytes, partition: int) -> None:
        """Produce one record to a partition and wait for Kafka's acknowledgement."""

    async def follow(self, topic: str, handle: Handler, caught_up: asyncio.Event) -> None:
        """Read ``topic`` from its beginning, then follow it until cancelled; set
        ``caught_up`` whenever a poll finds nothing new."""

    async def tail(self, topic: str, back: int, handle: Handler) -> None:
        """Read ``topic`` from ``back`` records before each partition's end, then follow
        it until cancelled, reconnecting when Kafka goes away."""
