"""Durations as analysts write them: 10m, 1h, 3h, 1d, 90s, 1h30m."""

from __future__ import annotations

import re

from pydantic_core import core_schema

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


def duration_zh(ms: int) -> str:
    """A duration as a duty officer reads it: 15分钟, 1小时30分钟."""
    parts, rest = [], int(ms)
    for size, name in ((86_400_000, "天"), (3_600_000, "小时"), (60_000, "分钟"), (1000, "秒")):
        if rest >= size:
            parts.append(f"{rest // size}{name}")
            rest %= size
    return "".join(parts) or "0分钟"


def duration_en(ms: int) -> str:
    """The English twin of :func:`duration_zh`: 15 min, 1 h 30 min."""
    parts, rest = [], int(ms)
    for size, name in ((86_400_000, "d"), (3_600_000, "h"), (60_000, "min"), (1000, "s")):
        if rest >= size:
            parts.append(f"{rest // size} {name}")
            rest %= size
    return " ".join(parts) or "0 min"


class Duration:
    """A duration from config, parsed once at load: ``.ms`` and ``.s`` for the code,
    ``str()`` gives back what the analyst wrote ("10m").

    Use it as a pydantic field type; a bad value is a located config error at load,
    never a crash deep inside a running worker.
    """

    __slots__ = ("text", "ms")

    def __init__(self, text: str | Duration) -> None:
        if isinstance(text, Duration):
            text = text.text
        self.ms: int = parse_duration_ms(text)
        self.text: str = str(text).strip()

    @property
    def s(self) -> float:
        return self.ms / 1000

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return f"Duration({self.text!r})"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Duration):
            return self.ms == other.ms
        if isinstance(other, str):
            return self.text == other
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.ms)

    @classmethod
    def __get_pydantic_core_schema__(cls, source, handler):
        def build(v: str | Duration) -> Duration:
            return v if isinstance(v, Duration) else cls(v)

        return core_schema.no_info_plain_validator_function(
            build, json_schema_input_schema=core_schema.str_schema(),
            serialization=core_schema.plain_serializer_function_ser_schema(str))
