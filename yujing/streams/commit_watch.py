"""A partition whose offset commit is stuck behind records that never came is read again.

See streams/commit_stall.py for how Faust's commits can stop for good. Every few seconds the
worker compares, per assigned partition, Faust's committed offset with the lowest offset its
agents acknowledged since; when a gap between them stays for ``stuck_s``, it logs the
partition, both offsets and how many acknowledgements wait behind the gap, then seeks the
partition back to the committed offset so the missing records are delivered again. On
yujing's own topics (streams/offsets.py) any missing offset at the head is such a gap;
records that retention deleted before they were read are not waited for. A strict
partition whose records after the commit were acknowledged by no agent at all (a lost last
record, commit_stall.py) is read again the same way, once none of its records is with an
agent or in an agent's queue: a busy worker's backlog is not a loss.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import faust
from faust.types import TP

from yujing import clock
from yujing.streams.commit_stall import CommitWatch, unacknowledged_tails

log = logging.getLogger("yujing.commits")

LOOK_S = 5.0
TAIL_S = 10.0   # two looks: a record on its way is with an agent or queued within ms


def watch_commits(app: faust.App, stuck_s: float = 30.0) -> CommitWatch:
    """Look at ``app``'s consumer's commit bookkeeping every :data:`LOOK_S` seconds.

    Reads Faust's private ``_committed_offset`` and ``_acked`` (faust-streaming is pinned
    below its next minor version; a missing attribute makes the look a no-op). Records
    nobody acknowledged, none of them on their way, are read again after ``TAIL_S`` (or
    ``stuck_s`` when shorter): no re-read of already handled records can cause that state,
    and a lost raise or clear is a warning late by that much."""
    watch = CommitWatch(stuck_s)
    tail_s = min(stuck_s, TAIL_S)
    tail_watch = CommitWatch(tail_s)

    @app.timer(LOOK_S, name="yujing.commit_watch")
    async def _look() -> None:
        consumer = app.consumer
        acked = getattr(consumer, "_acked", None)
        committed = getattr(consumer, "_committed_offset", None)
        if acked is None or committed is None or app.tables.recovery.in_recovery:
            return
        lowest = {tp: min(offsets) for tp, offsets in list(acked.items()) if offsets}
        is_strict = getattr(consumer, "is_strict", lambda tp: False)
        strict = {tp for tp in lowest if is_strict(tp)}
        start = {tp: consumer.start_of(tp) if tp in strict else committed.get(tp)
                 for tp in lowest}
        firsts = {tp: consumer.start_of(tp) for tp in consumer.assignment() if is_strict(tp)}
        tails = unacknowledged_tails(firsts, {tp: end_of(consumer, tp) for tp in firsts}, lowest)
        now = clock.monotonic()
        stuck = watch.look(start, lowest, now, strict)
        stuck.update(tail_watch.look({tp: firsts[tp] for tp in tails}, tails, now, tails.keys()))
        for tp, offset in sorted(stuck.items()):
            if tp in tails and on_its_way(app, consumer, tp):
                continue
            if (tp in strict or tp in tails) and await expired(consumer, tp, offset):
                continue
            if tp in tails:
                log.warning("commits of %s[%d] stuck for %.0fs at %d: the partition holds "
                            "records up to offset %d, no agent acknowledged any of them and "
                            "none is with an agent; reading it again from %d", tp.topic,
                            tp.partition, tail_s, offset, tails[tp] - 1, offset)
            else:
                log.warning("commits of %s[%d] stuck for %.0fs at %d: the lowest acknowledged "
                            "offset is %d (%d acknowledgements wait behind the gap); reading "
                            "it again from %d", tp.topic, tp.partition, stuck_s, offset,
                            lowest[tp], len(acked.get(tp, ())), offset)
            try:
                await asyncio.wait_for(consumer.seek(tp, offset), 5.0)
            except Exception:
                log.exception("commits of %s[%d]: seeking back failed", tp.topic, tp.partition)

    return watch


def end_of(consumer: Any, tp: TP) -> int | None:
    """The offset after ``tp``'s last record, as the consumer's last fetch saw it (None
    while not known, or while the partition is being reassigned)."""
    try:
        return consumer.highwater(tp)
    except Exception:   # aiokafka asserts the partition is assigned: a rebalance began
        return None


def on_its_way(app: faust.App, consumer: Any, tp: TP) -> bool:
    """Whether a record of ``tp`` may still reach an agent's acknowledgement: taken by an
    agent and not acknowledged yet (a long pass, a coalesced batch), or in the queue of an
    agent reading its topic (a backlog)."""
    if any(m.tp == tp for m in list(getattr(consumer, "_unacked_messages", ()))):
        return True
    channels = getattr(app.topics, "_topic_name_index", {}).get(tp.topic, ())
    return any(q is not None and not q.empty()
               for q in (getattr(c, "_queue", None) for c in list(channels)))


async def expired(consumer: Any, tp: TP, offset: int) -> bool:
    """Whether retention deleted the records from ``offset`` on before they were read
    (the consumer then reads on from the first record left, and the strict commit must
    start there too: streams/transport.py ``note_read_from``, which says so)."""
    try:
        first = (await asyncio.wait_for(consumer.earliest_offsets(tp), 5.0)).get(tp)
    except Exception:
        log.exception("commits of %s[%d]: the first offset left is not known", tp.topic,
                      tp.partition)
        return False
    if first is None or first <= offset:
        return False
    consumer.note_read_from({tp: offset}, {tp: first})
    return True
