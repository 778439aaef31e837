"""A recovery that waits for changelog records that will not come is reported and read again.

See streams/stall.py for why Faust's recovery can wait forever. Every few seconds, while
Faust recovers, the offsets it has read are compared with the last look; when none moved
for ``stall_s`` and some partition is still behind, the worker logs, per partition, how
far the recovery got, the end it waits for, the consumer's position and whether Faust has
the partition paused, then seeks the partition back to what the recovery has read so
its records are fetched again (re-read records are skipped by the recovery). A partition
the consumer has read past, records the recovery never applied, is read again after
``PASSED_S`` already: a record on its way reaches the recovery in milliseconds, and the
whole worker processes nothing while it waits. (Seen in tests/integration/test_durability.py's
rebalance: the consumer had fetched every record of a changelog partition and the
recovery had applied none; a re-read applies them. The cause found since, a fetch that
came back while Faust's flow was stopped and was dropped without a seek back, is mended
where it happens, streams/transport.py ``Consumer.read_again``: no stall in 36 looped
runs with it. This watch stays as the backstop for records lost in other ways, with the
intervals chosen when it was the only remedy. A look is cheap: offsets copied, a
position asked only for a partition that did not move.)
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import faust

from yujing import clock
from yujing.streams.stall import StallWatch

log = logging.getLogger("yujing.recovery")

LOOK_S = 2.0
PASSED_S = 4.0   # two looks: before transport.read_again, a rebalance's joiner stalled so in ~1 run of 10


def watch_recovery(app: faust.App, stall_s: float = 20.0) -> StallWatch:
    """Look at ``app``'s changelog recovery every :data:`LOOK_S` seconds."""
    watch = StallWatch(stall_s)
    quick = StallWatch(min(stall_s, PASSED_S))

    async def _look() -> None:
        rec = app.tables.recovery
        if not rec.in_recovery:
            watch.reset()
            quick.reset()
            return
        offsets, remaining, now = dict(rec.active_offsets), rec.active_remaining(), clock.monotonic()
        stalled = {tp: (offset, stall_s) for tp, offset in watch.look(offsets, remaining, now).items()}
        for tp, offset in quick.look(offsets, remaining, now).items():
            if tp not in stalled and await _passed(app.consumer, tp, offset):
                stalled[tp] = (offset, quick.stall_s)
        for tp, (offset, waited) in sorted(stalled.items()):
            await _read_again(app, rec, tp, offset, waited)

    async def _every_look() -> None:
        while True:
            await asyncio.sleep(LOOK_S)
            try:
                await _look()
            except Exception:   # a look that fails must not end the watch
                log.exception("recovery watch: look failed")

    # not app.timer: Faust starts timers only after the first recovery, which a restarted
    # worker must get through first (streams/transport.py App.on_start)
    app.early_tasks.append(_every_look)
    return watch


async def _passed(consumer: Any, tp: Any, offset: int) -> bool:
    """Whether the consumer has read ``tp`` past records after ``offset`` (the last one
    the recovery applied): records taken and never applied."""
    try:
        position = await asyncio.wait_for(consumer.position(tp), 5.0)
    except Exception:   # not known now: the slower look decides
        return False
    return isinstance(position, int) and position > offset + 1


async def _read_again(app: faust.App, rec: Any, tp: Any, offset: int, stall_s: float) -> None:
    consumer = app.consumer
    try:
        position = await asyncio.wait_for(consumer.position(tp), 5.0)
    except Exception as exc:   # a diagnosis only: the seek below is what matters
        position = f"unknown ({exc!r})"
    fetcher = getattr(app, "_fetcher", None)
    log.warning("recovery of %s[%d] stalled for %.0fs: read to %d of %s, consumer at %s, "
                "paused by Faust: %s, read offset %s, flow active: %s, fetcher: %s; "
                "reading it again from %d",
                tp.topic, tp.partition, stall_s, offset, rec.active_highwaters.get(tp),
                position, tp in getattr(consumer, "_paused_partitions", ()),
                getattr(consumer, "_read_offset", {}).get(tp),
                getattr(consumer, "flow_active", None),
                getattr(fetcher, "state", None), max(offset, 0))
    try:
        await asyncio.wait_for(consumer.seek(tp, max(offset, 0)), 5.0)
    except Exception:
        log.exception("recovery of %s[%d]: seeking back failed", tp.topic, tp.partition)
