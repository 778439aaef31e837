"""Flood caps on ingest: how fast one token may write, and how much of a bad request is kept.

One request used to be able to cost the gateway seconds of parsing on its event loop, a
reply of 150 MB and two million dead letters (a 4 MB body of ``[0,0,…]``). The caps here
bound each of those: the items per request or message (``http.max_items``,
``mqtt.max_items``: more is refused whole), the rejections listed in a reply
(``http.max_listed``: the rest are counted) and dead-lettered one by one
(``gateway.deadletters_per_request``: the rest go in one summary letter), and the items per
token per period (``http.rate_limit``, e.g. ``1000000/minute``: 429 with Retry-After).

The rate is counted in items, not requests: a gateway that batches well is not punished, and
one that floods with many tiny requests is counted the same as with one large one.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

import limits
from limits.storage import MemoryStorage
from limits.strategies import SlidingWindowCounterRateLimiter

from yujing import clock
from yujing.connectors.parse import Rejected


class RateLimit:
    """Items per token per period, as a sliding window (the ``limits`` library, which keeps
    its windows on the wall clock: so is the Retry-After computed here)."""

    def __init__(self, spec: str | None) -> None:
        self.item = limits.parse(spec) if spec else None
        self.limiter = SlidingWindowCounterRateLimiter(MemoryStorage())

    def wait_s(self, who: str) -> int | None:
        """Seconds until ``who`` may write again, or None when it may write now."""
        if self.item is None:
            return None
        stats = self.limiter.get_window_stats(self.item, who)
        if stats.remaining > 0:
            return None
        return max(1, math.ceil(stats.reset_time - clock.now_ms() / 1000))

    def take(self, who: str, cost: int) -> int | None:
        """Count ``cost`` items against ``who``; seconds to wait when that is over the rate
        (and then nothing is counted), None when admitted."""
        if self.item is None or cost <= 0:
            return None
        if self.limiter.hit(self.item, who, cost=cost):
            return None
        stats = self.limiter.get_window_stats(self.item, who)
        return max(1, math.ceil(stats.reset_time - clock.now_ms() / 1000))


def summary(rejected: Sequence[Rejected]) -> str:
    """One line for the rejections that are not dead-lettered one by one."""
    codes = Counter(r.code for r in rejected)
    parts = ", ".join(f"{code} ×{n}" for code, n in codes.most_common())
    return (f"{len(rejected)} more item(s) of this request rejected ({parts}); the first ones "
            "have dead letters of their own")

