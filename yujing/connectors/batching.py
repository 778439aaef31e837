"""When the gateway sends a partition's envelope: the batching policy, pure logic (time passed in).

A fixed linger makes every reading wait for a batch: on a quiet night a lone red reading waits
the whole ``linger_ms`` for company that never comes. The adaptive policy is a Kafka producer's
linger with an idle fast path, per partition:

* the partition sent nothing in the last ``linger_ms`` → what waits goes at the end of this
  event-loop turn (everything added in the same turn still shares the envelope);
* it did → keep filling until ``linger_ms`` after its last envelope (or ``max_envelope``).

So a low rate pays no linger at all, and a high rate fills the same big envelopes as the fixed
linger: a partition never sends more than one envelope per ``linger_ms`` besides full ones.
That bound matters more than it looks: the worker's cost per envelope is several ms whatever
its size (bench/latency_rate.py prints it), so sending on every broker acknowledgement (Nagle's
rule, tried first) made envelopes of ~25 readings at 5,000/s and the worker fell seconds behind.
``fixed`` keeps the old behaviour (every reading waits ``linger_ms`` or ``max_envelope``): it is
the baseline bench/latency_rate.py measures against, chosen by ``gateway.batching``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Mode = Literal["adaptive", "fixed"]


@dataclass
class Lane:
    """One partition's batching state: readings waiting, since when, and its last envelope."""

    waiting: int = 0
    first_ms: int | None = None
    last_sent_ms: int | None = None


class Batching:
    """Decides, per partition, the time its waiting readings are to be sent.

    The Batcher tells it what happened (:meth:`added`, :meth:`sent`) and asks :meth:`due`:
    ``None`` means nothing to send, a time at or before ``now_ms`` means send now, a later
    time means arm a timer for then.
    """

    def __init__(self, partitions: int, mode: Mode = "adaptive", linger_ms: int = 50,
                 max_envelope: int = 500) -> None:
        if mode not in ("adaptive", "fixed"):
            raise ValueError(f"batching mode {mode!r}: use adaptive or fixed")
        self.mode, self.linger_ms, self.max_envelope = mode, linger_ms, max_envelope
        self.lanes = [Lane() for _ in range(partitions)]

    def added(self, p: int, n: int, now_ms: int) -> None:
        lane = self.lanes[p]
        if n and lane.first_ms is None:
            lane.first_ms = now_ms
        lane.waiting += n

    def sent(self, p: int, now_ms: int) -> int:
        """The waiting readings left in one envelope at ``now_ms``; returns how many."""
        lane = self.lanes[p]
        n, lane.waiting, lane.first_ms = lane.waiting, 0, None
        if n:
            lane.last_sent_ms = now_ms
        return n

    def due(self, p: int, now_ms: int) -> int | None:
        lane = self.lanes[p]
        if lane.waiting == 0 or lane.first_ms is None:
            return None
        if lane.waiting >= self.max_envelope:
            return now_ms
        if self.mode == "fixed":
            return lane.first_ms + self.linger_ms
        if lane.last_sent_ms is None:
            return lane.first_ms
        return max(lane.first_ms, lane.last_sent_ms + self.linger_ms)
