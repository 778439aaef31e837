"""Durations as analysts write them: 10m, 1h, 3h, 1d, 90s, 1h30m."""

from __future__ import annotations

import re

_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}


def parse_duration_ms(text: str | int | float) -> int:
    """Milliseconds in a duration string; raises ValueError with the accepted forms."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        raise ValueError(f"write a duration with a unit, e.g. '{int(text)}s' or '{int(text)}m'")
    s = str(text).strip().replace(" ", "")
    pos, total = 0, 0.0
    for m in _PART.finditer(s):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _UNIT_MS[m.group(2)]
        pos = m.end()
    if pos != len(s) or not s:
        raise ValueError(f"bad duration {text!r}: write e.g. 10m, 3h, 1d or 1h30m "
                         "(units ms, s, m, h, d, w)")
    # round, not int(): 2.01 * 1000 is 2009.9999999999998 in binary floating point.
    return round(total)


def format_duration(ms: int) -> str:
    for unit in ("d", "h", "m", "s"):
        size = _UNIT_MS[unit]
        if ms >= size and ms % size == 0:
            return f"{ms // size}{unit}"
    return f"{ms}ms"
