"""When the gateway sends a partition's envelope: the batching policy, pure logic (time passed in).

A fixed linger makes every reading wait for a batch: on a quiet night a lone red reading waits
the whole ``linger_ms`` for company that never comes. The adaptive policy works like TCP with
Nagle's algorithm on a per-partition basis, or a Kafka producer's linger with an idle fast path:

* nothing of the partition is in flight → send what is waiting at the end of this event-loop
  turn (everything added in the same turn still shares the envelope);
* an envelope is in flight → keep filling; send when it is acknowledged, when ``max_envelope``
  readings wait, or when the oldest has waited ``linger_ms``, whichever comes first.

So a low rate pays no linger at all, and a high rate, whose sends are always in flight, fills
big envelopes. ``fixed`` keeps the old behaviour (wait ``linger_ms`` or ``max_envelope``): it
is the baseline bench/latency_rate.py measures against, chosen by ``gateway.batching``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Mode = Literal["adaptive", "fixed"]


@dataclass
class Lane:
    """One partition's batching state: readings waiting, since when, envelopes unacknowledged."""

    waiting: int = 0
    first_ms: int | None = None
    in_flight: int = 0


class Batching:
    """Decides, per partition, the time its waiting readings are to be sent.

    The Batcher tells it what happened (:meth:`added`, :meth:`sent`, :meth:`acked`) and
    asks :meth:`due`: ``None`` means nothing to send, a time at or before ``now_ms`` means
    send now, a later time means arm a timer for then.
    """

    def __init__(self, partitions: int, mode: Mode = "adaptive", linger_ms: int = 50,
                 max_envelope: int = 500, max_in_flight: int = 1) -> None:
        if mode not in ("adaptive", "fixed"):
            raise ValueError(f"batching mode {mode!r}: use adaptive or fixed")
        self.mode, self.linger_ms, self.max_envelope = mode, linger_ms, max_envelope
        self.max_in_flight = max_in_flight
        self.lanes = [Lane() for _ in range(partitions)]

    def added(self, p: int, n: int, now_ms: int) -> None:
        lane = self.lanes[p]
        if n and lane.first_ms is None:
            lane.first_ms = now_ms
        lane.waiting += n

    def sent(self, p: int) -> int:
        """The waiting readings left in one envelope (returned: how many); it is in flight."""
        lane = self.lanes[p]
        n, lane.waiting, lane.first_ms = lane.waiting, 0, None
        if n:
            lane.in_flight += 1
        return n

    def acked(self, p: int) -> None:
        """An envelope of ``p`` was acknowledged (or failed): it is no longer in flight."""
        lane = self.lanes[p]
        lane.in_flight = max(0, lane.in_flight - 1)

    def due(self, p: int, now_ms: int) -> int | None:
        lane = self.lanes[p]
        if lane.waiting == 0 or lane.first_ms is None:
            return None
        if lane.waiting >= self.max_envelope:
            return now_ms
        if self.mode == "adaptive" and lane.in_flight < self.max_in_flight:
            return now_ms
        return lane.first_ms + self.linger_ms
