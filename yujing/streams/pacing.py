"""When the readings agent waits a moment for more envelopes before an engine pass. Pure:
time is passed in.

The engine's cost is mostly per pass and per series touched (bench/README.md, "Inside the
worker"): taken from a backlog, seven envelopes of a partition in one pass cost a quarter
of seven passes. A worker that keeps up never has a backlog, so it pays the full price per
envelope exactly when it is busiest. :class:`Pacer` measures how busy the engine has been
(an exponentially weighted share of the recent wall time spent inside engine passes,
half-life ``half_life_s``); above ``busy_share`` the agent waits ``wait_s`` once before a
pass, for the envelopes already on their way. A quiet worker never waits: at 5,000
readings/s the passes take about a quarter of its time, under the default share of 0.4.
Only the engine's own time counts, not the awaited sends of a pass's warnings and dead
letters: a slow broker must not make a lightly loaded worker wait.
"""

from __future__ import annotations

import math


class Pacer:
    def __init__(self, wait_s: float, busy_share: float = 0.4, half_life_s: float = 0.5,
                 now_s: float = 0.0) -> None:
        self.wait_s, self.busy_share = wait_s, busy_share
        self.rate = math.log(2) / half_life_s
        self.busy = 0.0    # pass seconds, weighted by their age
        self.span = 0.0    # wall seconds, weighted the same way
        self.t = now_s

    def _age(self, now_s: float) -> None:
        dt = max(now_s - self.t, 0.0)
        if dt:
            keep = math.exp(-self.rate * dt)
            self.busy *= keep
            self.span = self.span * keep + (1 - keep) / self.rate
            self.t = now_s

    def share(self, now_s: float) -> float:
        """The weighted share of recent wall time spent in passes."""
        self._age(now_s)
        return self.busy / self.span if self.span > 0 else 0.0

    def spent(self, busy_s: float, now_s: float) -> None:
        """The engine has just spent ``busy_s`` seconds in a pass that ended at ``now_s``."""
        self._age(now_s)
        d = max(busy_s, 0.0)
        self.busy += (1 - math.exp(-self.rate * d)) / self.rate   # weighted as the span is

    def hold(self, now_s: float) -> float:
        """Seconds to wait for more envelopes before the next pass (0: go now)."""
        if self.wait_s <= 0:
            return 0.0
        return self.wait_s if self.share(now_s) > self.busy_share else 0.0
