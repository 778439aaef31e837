"""When does a partition's offset commit count as stuck. Pure: offsets and time are passed in.

Faust commits a partition up to the first gap in the offsets its agents acknowledged, and
not at all while the lowest acknowledged offset is more than one above the committed one
(faust/transport/consumer.py, ``Consumer._new_offset``): it waits for the records in
between. When Faust dropped those records after taking them from aiokafka (a flow change
mid-batch, see streams/transport.py) and no seek back followed, they never come: the
partition is never committed again, its lag never falls, its list of acknowledged offsets
grows without end, and the next owner re-reads everything since the stale commit. Seen
after a worker was killed under load (bench/scale_out.py).

For ``yujing.readings`` nothing was lost for the rules: the pipeline notices the hole in
the envelope offsets and re-processes it itself (streams/runner.py, catch-up). But Faust
never learns, and other topics have no such catch-up. :class:`CommitWatch` notices a head
gap that stays put, so the worker can seek the partition back to its committed offset and
let the missing records be delivered and acknowledged (records read twice are skipped by
the pipelines and the book).

A lost record with nothing acknowledged after it leaves no gap among the acknowledgements:
the partition's last record, or the last before a quiet spell. Seen on Tansu after a
partition moved back to a worker that had held it before: the envelope written just after
the move was fetched (the consumer's position passed it) and never reached the agent, so
the 3 h rain sum never fell and the orange warning was never cleared
(tests/integration/test_durability.py, the rebalance test, about one run in four).
:func:`unacknowledged_tails` names such partitions: records stand in the partition after
the first uncommitted offset and no agent acknowledged any of them. The worker reads them
again only when none of them can still be on its way (streams/commit_watch.py).
"""

from __future__ import annotations

from collections.abc import Collection, Hashable, Mapping


class CommitWatch:
    """Per partition, since when the same head gap has been seen."""

    def __init__(self, stuck_s: float) -> None:
        self.stuck_s = stuck_s
        self._gaps: dict[Hashable, tuple[int, int, float]] = {}   # tp → (committed, lowest, since)

    def look(self, committed: Mapping[Hashable, int | None], lowest_acked: Mapping[Hashable, int],
             now_s: float, strict: Collection[Hashable] = ()) -> dict[Hashable, int]:
        """The partitions to read again from their committed offset: those whose lowest
        acknowledged offset has stood above the committed offset, unchanged, for
        ``stuck_s`` seconds. A gap that closes or moves starts the count again; after a
        partition is named, its count starts again too (read again at most once per period).

        A partition in ``strict`` is committed by streams/offsets.py: any offset missing at
        the head is a gap, and 0 is a known committed offset. The others follow Faust's own
        test: a gap is more than one offset, and a committed offset of 0 or None is unknown."""
        out: dict[Hashable, int] = {}
        gaps: dict[Hashable, tuple[int, int, float]] = {}
        for tp, low in lowest_acked.items():
            c = committed.get(tp)
            if tp in strict:
                if c is None or low <= c:
                    continue
            elif not c or low - c <= 1:       # Faust's own test: no head gap, it commits
                continue
            was = self._gaps.get(tp)
            since = was[2] if was is not None and was[:2] == (c, low) else now_s
            if now_s - since >= self.stuck_s:
                out[tp], since = c, now_s
            gaps[tp] = (c, low, since)
        self._gaps = gaps
        return out


def unacknowledged_tails(starts: Mapping[Hashable, int | None],
                         ends: Mapping[Hashable, int | None],
                         acked: Collection[Hashable]) -> dict[Hashable, int]:
    """Per strict partition with no acknowledged offset waiting (not in ``acked``), whose
    first uncommitted offset (``starts``) is known and below the partition's end (``ends``:
    the offset after its last record, None while not known): that end. Such a partition's
    records after the commit were read by nobody, or lost on the way; passed to
    :meth:`CommitWatch.look` as its lowest acknowledged offset, the gap counts as stuck
    when it stays put."""
    out: dict[Hashable, int] = {}
    for tp, start in starts.items():
        end = ends.get(tp)
        if tp not in acked and start is not None and end is not None and end > start:
            out[tp] = end
    return out
