"""Local hour and month of event times in an IANA time zone, as array work.

``hour()`` and ``month()`` in the rule language read the evaluation time on the
local clock (default Asia/Shanghai, where the bureau's rules were written). A
zone's UTC offsets are read once from the tz database into a table of
transitions, so millions of points convert with one ``searchsorted``; a zone
without transitions in the table's span (China, Japan, India since 2000) takes
a fixed-offset fast path.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np

from yujing.clock import DEFAULT_ZONE

_DAY_S = 86_400
# The table covers 2000 (gateways reject older event times) to 2100; a time outside it is
# converted one by one (never in practice, and still correct).
_SPAN_S = (946_684_800, 4_102_444_800)


def zone(name: str) -> ZoneInfo:
    """The IANA zone ``name``; a ValueError that says what to write if there is none."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise ValueError(f"unknown time zone {name!r}: use an IANA name such as "
                         "Asia/Shanghai or Europe/Berlin") from None


def _offset_s(tz: ZoneInfo, t: int) -> int:
    off = datetime.fromtimestamp(t, UTC).astimezone(tz).utcoffset()
    return int(off.total_seconds()) if off is not None else 0


@lru_cache(maxsize=16)
def transitions(name: str) -> tuple[np.ndarray, np.ndarray]:
    """(starts, offsets), both in seconds: from ``starts[i]`` on (UTC) the zone is
    ``offsets[i]`` ahead of UTC; ``starts[0]`` is the start of the table's span.

    The zone is sampled daily and each change found to the second by bisection: no
    zone has changed its offset twice within one day.
    """
    tz = zone(name)
    lo, hi = _SPAN_S
    days = np.arange(lo, hi, _DAY_S, dtype=np.int64)
    offs = np.fromiter((_offset_s(tz, int(t)) for t in days), np.int64, days.size)
    starts, offsets = [lo], [int(offs[0])]
    for i in np.flatnonzero(np.diff(offs)).tolist():
        a, b = int(days[i]), int(days[i + 1])  # offset(a) != offset(b): find the first second
        while b - a > 1:
            mid = (a + b) // 2
            if _offset_s(tz, mid) == offs[i]:
                a = mid
            else:
                b = mid
        starts.append(b)
        offsets.append(int(offs[i + 1]))
    return np.asarray(starts, np.int64), np.asarray(offsets, np.int64)


def offsets_s(ts_ms: np.ndarray, name: str) -> np.ndarray | int:
    """UTC offset in seconds at each time (epoch ms); one int when the zone is fixed."""
    starts, offsets = transitions(name)
    if offsets.size == 1:
        inside = ts_ms.size == 0 or (int(ts_ms.min()) >= _SPAN_S[0] * 1000
                                     and int(ts_ms.max()) < _SPAN_S[1] * 1000)
        if inside:
            return int(offsets[0])
    out = offsets[np.clip(np.searchsorted(starts, ts_ms // 1000, side="right") - 1, 0, None)]
    outside = (ts_ms < _SPAN_S[0] * 1000) | (ts_ms >= _SPAN_S[1] * 1000)
    if outside.any():
        tz = zone(name)
        out = out.copy()
        out[outside] = [_offset_s(tz, int(t) // 1000) for t in ts_ms[outside].tolist()]
    return out


def hour(ts_ms: np.ndarray, name: str = DEFAULT_ZONE) -> np.ndarray:
    """Local hour 0..23 at each time (epoch ms)."""
    return ((ts_ms // 1000 + offsets_s(ts_ms, name)) // 3600 % 24).astype(np.float64)


def month(ts_ms: np.ndarray, name: str = DEFAULT_ZONE) -> np.ndarray:
    """Local month 1..12 at each time (epoch ms)."""
    local = (ts_ms + offsets_s(ts_ms, name) * 1000).astype("datetime64[ms]")
    return (local.astype("datetime64[M]").astype(np.int64) % 12 + 1).astype(np.float64)
