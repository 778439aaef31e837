"""How far a partition of yujing's own topics may be committed: never past a record that
no agent acknowledged. Pure: offsets are passed in.

Faust commits a partition up to the end of the first run of consecutive acknowledged
offsets (faust/transport/consumer.py, ``Consumer._new_offset``), and passes over a missing
record in three cases, each made for topics where an offset need not be a record
(compacted topics, transaction markers):

1. it does not know the committed offset yet (before the assignment's seek, or a
   partition never committed): the run starts wherever the acknowledgements start;
2. one missing record at the head: it waits only while the lowest acknowledged offset
   is more than one above the committed one;
3. a jump in the offsets it fetched is noted as a gap (``_add_gap``) and counted as
   acknowledged.

yujing's agents read ``yujing.readings``, ``yujing.warnings`` and ``yujing.commands``:
delete-policy topics written without transactions, where every offset is a record. A
missing one there is a record Faust took from aiokafka and dropped (a flow change
mid-batch, a paused partition's buffered fetch), and committing over it loses it for
good: a warning never routed, an acknowledgement never applied. On those topics
(streams/transport.py) the commit stops at the first missing offset, counted from the
offset the partition was read from. The transport reads a fetch's records that Faust
did not hand on again at once (streams/transport.py, ``Consumer.read_again``); the
commit watch (streams/commit_watch.py) reads the partition again from the first missing
offset when one stays missing (a record an agent lost, a dropped record the transport
could not see).
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Sequence


def start_of(committed: int | None, read_from: int | None) -> int | None:
    """The first offset not yet committed: Faust's committed offset, or the offset the
    assignment read the partition from when that is higher (records that expired before
    they were read) or Faust's is unknown (None: a partition never committed, or 0, which
    Faust keeps as None). None while neither is known."""
    if read_from is None:
        return committed
    return read_from if committed is None else max(committed, read_from)


def read_from(committed: int | None, first: int) -> tuple[int, range]:
    """Where an assignment reads a partition from, given the group's committed offset
    (None or 0: never committed; Faust and Kafka treat both so) and the partition's first
    record left: the committed offset, or the first record when there is none or when
    retention deleted the records before it. Also the offsets that expired unread (empty
    when none did)."""
    c = committed if committed is not None and committed > 0 else None
    if c is None:
        return first, range(0)
    return max(c, first), range(c, max(c, first))


def committable(acked: Sequence[int], start: int | None) -> tuple[int, int | None]:
    """For the sorted, distinct acknowledged offsets ``acked`` of a partition whose first
    uncommitted offset is ``start``: how many entries at the head are done with (already
    committed, or now committed) and the offset to commit (None: nothing new).

    The commit goes to the end of the run ``start, start + 1, ...``; a missing offset
    stops it, however small the hole. Nothing is committed while ``start`` is unknown."""
    if start is None or not acked:
        return 0, None
    i = bisect_left(acked, start)              # below start: committed before
    # In a run of consecutive distinct offsets, offset − index is constant.
    end = bisect_right(range(i, len(acked)), start - i, key=lambda j: acked[j] - j) + i
    return end, (start + end - i if end > i else None)


def first_left(fetched: Sequence[int], handed: Sequence[int]) -> int | None:
    """The first offset of a fetch (``fetched``, ascending) that was not handed on
    (``handed``); None when all were. Usually the handed offsets are a head of the fetch;
    a partition that left Faust's active set and came back mid-batch leaves a hole."""
    if list(fetched[:len(handed)]) == list(handed):
        return fetched[len(handed)] if len(handed) < len(fetched) else None
    done = set(handed)
    return next((o for o in fetched if o not in done), None)
