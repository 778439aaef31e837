"""The one place that reads the wall clock.

Pure code (rules, lifecycle, escalation) takes ``now`` as a parameter; the
edges call :func:`now_ms` and pass the value in. Tests substitute
:class:`FakeClock` where an edge needs a controllable clock.
"""

from __future__ import annotations

import time


def now_ms() -> int:
    """Wall-clock time in epoch milliseconds (UTC)."""
    return time.time_ns() // 1_000_000


def monotonic() -> float:
    """Seconds from an arbitrary origin, for measuring intervals."""
    return time.monotonic()


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self, start_ms: int = 0) -> None:
        self.t = start_ms

    def now_ms(self) -> int:
        return self.t

    def advance(self, ms: int) -> int:
        self.t += ms
        return self.t
