"""Faust's Kafka transport, with a partition that has no committed offset rewound to its
beginning when Faust seeks back to the committed offsets, and the partitions of yujing's
own topics committed strictly (streams/offsets.py).

Faust can take records from aiokafka and then drop them: when a rebalance or the end of
a recovery changes the flow while a batch is being handed out
(faust/transport/consumer.py, ``Consumer.getmany``). aiokafka's position has already moved
past them, so Faust seeks every partition back to its committed offset afterwards
(``perform_seek``) and reads them again. aiokafka's ``seek_to_committed`` leaves a
partition without a committed offset where it is, and for that partition the dropped
records were lost for good. Records of a partition that left Faust's active set while
its batch was handed out are dropped too, and no seek follows: those are read again
right after the batch (``Consumer.read_again``).

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
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from typing import Any

import faust
from faust.transport.drivers import aiokafka as faust_kafka
from faust.types import TP

from yujing.streams.offsets import committable, first_left, read_from, start_of

log = logging.getLogger("yujing.transport")


class ConsumerThread(faust_kafka.AIOKafkaConsumerThread):
    """The aiokafka consumer thread of :class:`Consumer`."""

    async def seek_to_committed(self) -> Mapping[TP, int]:
        committed = await super().seek_to_committed()
        # aiokafka moved the partitions with a committed offset (this method the never
        # committed ones below); a changelog partition without one stays where it was, and
        # records of it Faust fetched and dropped are still to be read again
        # (Consumer.read_again). Noted at once: a fetch may return their records next.
        self.consumer.sought({tp: offset for tp, offset in committed.items()
                              if offset and offset > 0})
        changelogs = self.app.tables.changelog_topics
        never = [tp for tp, offset in committed.items()
                 if (offset is None or offset <= 0) and tp.topic not in changelogs]
        if never:
            log.info("never committed, read from the beginning: %s", ", ".join(
                sorted(f"{tp.topic}[{tp.partition}]" for tp in never)))
            await self.seek_to_beginning(*never)
        strict = [tp for tp in committed if tp.topic in self.app.strict_topics]
        if strict:
            try:
                earliest = await self.earliest_offsets(*strict)
            except Exception as exc:   # 0: a start the commit watch corrects (expired)
                log.warning("first offsets not known (%s): strict commits count from the "
                            "committed offsets, or 0", exc)
                earliest = {tp: 0 for tp in strict}
            self.consumer.note_read_from(committed, earliest)
        self.consumer.sought(never)
        self.consumer.rewound.update(committed)   # Faust reset every read offset
        return committed


class Consumer(faust_kafka.Consumer):
    """Faust's consumer; on :attr:`App.strict_topics` the commit never passes a record no
    agent acknowledged (streams/offsets.py)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.read_from: dict[TP, int] = {}   # where the last assignment read each partition from
        self.rewound: set[TP] = set()        # sought, until a later fetch brings a record
        self.seeks = 0                       # seeks so far; per partition the number of its last
        self.last_seek: dict[TP, int] = {}
        self.targets: dict[TP, int] = {}     # the offset each sought partition was sought to
        self.fetched: Mapping[TP, Any] = {}  # the records of the fetch being handed out
        self.fetched_generation = 0          # ... and the group generation it was made in

    def _new_consumer_thread(self) -> faust_kafka.AIOKafkaConsumerThread:
        return ConsumerThread(self, loop=self.loop, beacon=self.beacon)

    def is_strict(self, tp: TP) -> bool:
        return tp.topic in self.app.strict_topics

    def start_of(self, tp: TP) -> int | None:
        """The first offset of ``tp`` not committed yet (None: not known yet)."""
        return start_of(self._committed_offset[tp], self.read_from.get(tp))

    def note_read_from(self, committed: Mapping[TP, int | None],
                       earliest: Mapping[TP, int]) -> None:
        """At an assignment: each strict partition is read from its committed offset, or
        from its first record when it has none or when retention deleted the records
        before it (those are gone: said, not waited for)."""
        for tp, first in earliest.items():
            start, lost = read_from(committed.get(tp), first)
            if lost:
                log.error("%s[%d]: records %d to %d expired (retention) before this group "
                          "read them; reading on from %d", tp.topic, tp.partition, lost.start,
                          lost.stop - 1, start)
            self.read_from[tp] = start

    def sought(self, partitions: Iterable[TP] | Mapping[TP, int], done: bool = True) -> None:
        """Note a seek of ``partitions`` (with their targets when known), when it starts
        too (``done`` False): one that starts while :meth:`read_again` looks is not undone
        by it. Once done, the read-offset gate opens for their next fetch, or at their
        target's record if that comes first (:meth:`getmany`)."""
        self.seeks += 1
        for tp in partitions:
            self.last_seek[tp] = self.seeks
            if done:
                self.rewound.add(tp)
                if isinstance(partitions, Mapping):
                    self.targets[tp] = partitions[tp]

    async def seek(self, partition: TP, offset: int) -> None:
        self.sought((partition,), done=False)
        await super().seek(partition, offset)
        self.sought({partition: offset})

    async def seek_wait(self, partitions: Mapping[TP, int]) -> None:
        """The recovery's seek of changelog partitions (Faust's ``Recovery._seek_offsets``)."""
        self.sought(partitions, done=False)
        await super().seek_wait(partitions)
        self.sought(partitions)

    async def on_partitions_revoked(self, revoked: set[TP]) -> None:
        """Faust forgets a revoked partition's read offset; so do these (an assignment
        seeks and notes every partition it brings again)."""
        self.rewound.difference_update(revoked)
        for tp in revoked:
            self.read_from.pop(tp, None)
            self.last_seek.pop(tp, None)
            self.targets.pop(tp, None)
        await super().on_partitions_revoked(revoked)

    async def getmany(self, timeout: float) -> AsyncIterator[tuple[TP, Any]]:
        """Faust's records, with its read-offset gate opened for the first record of each
        partition sought before this fetch. The gate (``Consumer._drain_messages``) drops a
        record whose offset is below the last one handed out; a batch fetched before a seek
        and still being handed out moves that mark past the seek's target, so every record
        read again was dropped ("DROPPED MESSAGE ROFF" in Faust's developer log): after a
        worker was killed, the commit watch's re-reads never delivered the head record
        (bench/scale_out.py), and a recovery sought back while a standby batch of the same
        changelog partition was being handed out would wait for records it had dropped.
        A partition sought during this fetch is opened at the next one (its records here
        may be the batch from before the seek), or at the seek's target record if it comes
        first: a fetch issued before the assignment's seek to the committed offsets
        returned the records from the committed one on, and the gate dropped them (seen
        in bench/scale_out.py's worker logs; records the worker had processed, but the
        same would drop records it had not). What is read twice, the pipelines, the book
        and Faust's recovery skip. Records Faust fetched and did not hand on are read
        again (:meth:`read_again`)."""
        armed = set(self.rewound)
        targets = self.targets
        handed: dict[TP, list[int]] = {}
        async for tp, message in super().getmany(timeout):
            if targets and targets.get(tp) == message.offset:
                del targets[tp]
                armed.add(tp)
            if tp in armed:
                armed.discard(tp)
                self.rewound.discard(tp)
                self._read_offset[tp] = None
            handed.setdefault(tp, []).append(message.offset)
            yield tp, message
        if not self.should_stop:
            await self.read_again(handed)

    async def _wait_next_records(self, timeout: float) -> tuple[Any, Any]:
        records, active = await super()._wait_next_records(timeout)
        self.fetched = records or {}
        self.fetched_generation = self.app.consumer_generation_id
        return records, active

    async def read_again(self, handed: Mapping[TP, list[int]]) -> None:
        """Seek each partition whose fetched records Faust did not all hand on back to the
        first of those, if aiokafka's position is still where that fetch left it.

        Faust's ``getmany`` drops fetched records after aiokafka's position passed them:
        those of a partition that left its active set while the batch was handed out (a
        recovery pausing or switching its changelog partitions), the rest of a batch at a
        generation change, and a whole batch that returns while the flow is stopped. For
        the last it seeks back to the committed offsets (``perform_seek``), which does not
        move a changelog partition (it has none): the recovery had sought its changelog
        partitions to 0 and resumed the flow a millisecond after a fetch of their records
        returned, and then waited for records aiokafka had passed, until the recovery
        watch read them again (Faust's developer log on the rebalance test of
        tests/integration/test_durability.py: 4 stalls in 26 runs with this method's
        first version, 0 in 36 with this one).

        Left alone: a partition whose position a seek moved since the fetch (it is no
        longer just past the fetch's last record: an assignment's seek to the committed
        offsets, a recovery's seek), one a seek started on meanwhile, one no longer
        assigned, and all after a generation change (the new assignment's seeks and its
        recovery's place every partition)."""
        fetched, self.fetched = self.fetched, {}
        if self.app.consumer_generation_id != self.fetched_generation:
            return
        begun = self.seeks
        assigned: set[TP] | None = None
        for tp, records in fetched.items():
            got = handed.get(tp, ())
            if len(got) >= len(records):  # the usual batch: all handed on, no list built
                continue
            first = first_left([r.offset for r in records], got)
            if first is None:
                continue
            assigned = self.assignment() if assigned is None else assigned
            if tp not in assigned:
                continue
            at = await self.position(tp)
            if at != records[-1].offset + 1 or self.last_seek.get(tp, 0) > begun:
                continue
            log.info("%s[%d]: %d fetched record(s) not handed on by Faust; read again from "
                     "%d", tp.topic, tp.partition, sum(r.offset >= first for r in records), first)
            await self.seek(tp, first)

    def _new_offset(self, tp: TP) -> int | None:
        if not self.is_strict(tp):
            return super()._new_offset(tp)
        acked = self._acked[tp]
        acked.sort()
        done, offset = committable(acked, self.start_of(tp))
        if done:
            self._acked_index[tp].difference_update(acked[:done])
            del acked[:done]
        return offset

    async def _add_gap(self, tp: TP, offset_from: int, offset_to: int) -> None:
        if not self.is_strict(tp):
            await super()._add_gap(tp, offset_from, offset_to)
            return
        # Faust passes the offset after the last one read and the offset of the record that
        # came instead (faust/transport/consumer.py, ``_drain_messages``). Its last-read
        # offset is also reset by the assignment's seek while records fetched just before
        # it are still with the agents: those are delivered, not missing. Records an
        # earlier assignment took are not known here (Faust forgets them at revocation):
        # they are waited for and read again, which the pipelines and the book skip.
        span = range(offset_from, offset_to)
        delivered = {o for o in self._acked_index[tp] if o in span}
        delivered.update(m.offset for m in list(self._unacked_messages)
                         if m.tp == tp and m.offset in span)
        if len(delivered) < len(span):   # a jump may be long: walk only past the delivered
            first = next(o for o in span if o not in delivered)
            last = next(o for o in reversed(span) if o not in delivered)
            log.warning("%s[%d]: %d record(s) from offset %d to %d skipped in the fetch "
                        "(no agent of this assignment has them); the offset commit waits "
                        "before them, and they are read again if they do not come within "
                        "worker.commit_stall", tp.topic, tp.partition,
                        len(span) - len(delivered), first, last)


class Transport(faust_kafka.Transport):
    Consumer = Consumer


class App(faust.App):
    """faust.App whose consumer uses :class:`Transport` (the producer is Faust's own).

    ``strict_topics``: the delete-policy topics without transactions whose agents must
    see every record (streams/offsets.py); set before the worker starts."""

    strict_topics: frozenset[str] = frozenset()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.early_tasks: list[Callable[[], Awaitable[None]]] = []

    async def on_start(self) -> None:
        """Faust starts timers and tasks only once the first table recovery has completed
        (``App.on_started``); ``early_tasks`` start with the app, so a watch of that
        recovery runs while it does."""
        await super().on_start()
        for task in self.early_tasks:
            self.add_future(task())

    def _new_transport(self) -> Any:
        return Transport(self.conf.broker_consumer, self)
