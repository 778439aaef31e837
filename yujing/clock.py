"""The one place that reads the wall clock.

Pure code (rules, lifecycle, escalation) takes ``now`` as a parameter; the
edges call :func:`now_ms` and pass the value in. Tests substitute
:class:`FakeClock` where an edge needs a controllable clock.

:func:`local_time` lives here because it is the one formatter of instants for
people; it reads no clock (the instant is its argument).
"""

from __future__ import annotations

import time
from datetime import datetime
from zoneinfo import ZoneInfo

DEFAULT_ZONE = "Asia/Shanghai"


def now_ms() -> int:
    """Wall-clock time in epoch milliseconds (UTC)."""
    return time.time_ns() // 1_000_000


def monotonic() -> float:
    """Seconds from an arbitrary origin, for measuring intervals."""
    return time.monotonic()


def thread_cpu() -> float:
    """CPU seconds this thread has used: what a pass cost, apart from the time it waited
    for a core or the GIL."""
    return time.thread_time()


def local_time(ts_ms: int, zone: str = DEFAULT_ZONE) -> str:
    """``ts_ms`` (epoch ms, UTC) as wall time in ``zone`` (an IANA name), for duty officers.

    Pure: formats the instant it is given. Whole seconds are floored first, as
    ``time.gmtime`` did in the UTC+8 arithmetic this replaces; Asia/Shanghai has
    kept UTC+8 without daylight saving since 1991, so from then on the text is
    the same as that arithmetic gave.
    """
    return datetime.fromtimestamp(ts_ms // 1000, ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M")


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self, start_ms: int = 0) -> None:
        self.t = start_ms

    def now_ms(self) -> int:
        return self.t

    def advance(self, ms: int) -> int:
        self.t += ms
        return self.t
