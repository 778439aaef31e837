"""When does a changelog recovery count as stalled. Pure: offsets and time are passed in.

Faust's recovery reads each active changelog partition up to the end offset it measured,
and waits for nothing else: if the consumer's position has moved past records that never
reached the recovery (Faust drops records it has taken from aiokafka when the flow changes
mid-batch, see streams/transport.py), it waits forever and only logs "No event received".
A worker stuck there processes nothing at all. :class:`StallWatch` notices that the
recovery's offsets stopped moving while some partition is still behind, so the worker can
say so with what it knows and read those partitions again (streams/recovery_watch.py).
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping


class StallWatch:
    """Offsets of one recovery, compared from one look to the next."""

    def __init__(self, stall_s: float) -> None:
        self.stall_s = stall_s
        self._seen: dict[Hashable, int] = {}
        self._since = 0.0

    def reset(self) -> None:
        """Not recovering (or recovered): the next recovery starts a fresh count."""
        self._seen = {}

    def look(self, offsets: Mapping[Hashable, int], remaining: Mapping[Hashable, int],
             now_s: float) -> dict[Hashable, int]:
        """The partitions to read again, each with the offset the recovery has read to
        (-1: nothing yet): those still behind when no offset has moved for ``stall_s``
        seconds. Empty while the recovery makes progress; after a stall is reported the
        count starts again, so a partition is read again at most once per ``stall_s``."""
        behind = {tp: offsets.get(tp, -1) for tp, n in remaining.items() if n > 0}
        current = dict(offsets)
        if not behind or current != self._seen:
            self._seen, self._since = current, now_s
            return {}
        if now_s - self._since < self.stall_s:
            return {}
        self._since = now_s
        return behind
