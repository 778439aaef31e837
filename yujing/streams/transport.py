"""Faust's Kafka transport, with a partition that has no committed offset rewound to its
beginning when Faust seeks back to the committed offsets.

Faust can take records from aiokafka and then drop them: when a rebalance or the end of
a recovery changes the flow while a batch is being handed out
(faust/transport/consumer.py, ``Consumer.getmany``). aiokafka's position has already moved
past them, so Faust seeks every partition back to its committed offset afterwards
(``perform_seek``) and reads them again. aiokafka's ``seek_to_committed`` leaves a
partition without a committed offset where it is, and for that partition the dropped
records were lost for good.

That is every partition of a worker killed before its first offset commit: the next
worker took up ``yujing.commands`` and ``yujing.warnings`` after the records written while
no worker ran. An acknowledgement the console had accepted (202) in that gap was never
applied and the B officer was paged for a warning already taken
(tests/integration/test_duty_sigkill.py). Here such a partition is rewound to its first
record, which is what ``auto_offset_reset="earliest"`` promises for a group that has not
committed: records are then read twice at worst (the book and the pipelines skip what they
already applied), never skipped. Changelog partitions are Faust's recovery's own business
and are left alone.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import faust
from faust.transport.drivers import aiokafka as faust_kafka
from faust.types import TP

log = logging.getLogger("yujing.transport")


class ConsumerThread(faust_kafka.AIOKafkaConsumerThread):
    """The aiokafka consumer thread of :class:`Consumer`."""

    async def seek_to_committed(self) -> Mapping[TP, int]:
        committed = await super().seek_to_committed()
        changelogs = self.app.tables.changelog_topics
        never = [tp for tp, offset in committed.items()
                 if (offset is None or offset <= 0) and tp.topic not in changelogs]
        if never:
            log.info("never committed, read from the beginning: %s", ", ".join(
                sorted(f"{tp.topic}[{tp.partition}]" for tp in never)))
            await self.seek_to_beginning(*never)
        return committed


class Consumer(faust_kafka.Consumer):
    def _new_consumer_thread(self) -> faust_kafka.AIOKafkaConsumerThread:
        return ConsumerThread(self, loop=self.loop, beacon=self.beacon)


class Transport(faust_kafka.Transport):
    Consumer = Consumer


class App(faust.App):
    """faust.App whose consumer uses :class:`Transport` (the producer is Faust's own)."""

    def _new_transport(self) -> Any:
        return Transport(self.conf.broker_consumer, self)
