"""Turn untrusted JSON from devices into Readings, item by item, with reasons.

Pure: no I/O. A bad item never spoils the rest of its batch: the caller gets
the valid readings and, for each rejected item, its index and a reason a
gateway's developer can act on.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import orjson

from ..domain import Reading

_METRIC = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_STATION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")
_KEYS = {"station", "metric", "ts", "value", "quality", "seq", "unit"}
# Event times before 2000 or after 2100 are unit mistakes (seconds vs ms), not data.
_MIN_TS, _MAX_TS = 946_684_800_000, 4_102_444_800_000
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


@dataclass(frozen=True)
class Rejected:
    index: int | None
    reason: str
    raw: Any


def parse_ts(value: Any) -> int:
    """Epoch milliseconds from an int/float (ms) or an ISO 8601 string with offset."""
    if isinstance(value, bool):
        raise ValueError("ts must be epoch milliseconds or an ISO 8601 time, not a boolean")
    if isinstance(value, (int, float)):
        if not math.isfinite(value):
            raise ValueError("ts is not finite")
        ts = int(value)
    elif isinstance(value, str):
        try:
            dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"ts {value[:40]!r} is not ISO 8601, e.g. 2025-06-01T08:00:00+08:00") from None
        if dt.tzinfo is None:
            raise ValueError("ts has no UTC offset: add one, e.g. +08:00 or Z")
        # Integer arithmetic: dt.timestamp() * 1000 is a float and loses a millisecond
        # for some times (2038-05-07T04:44:29.364Z gave ...363).
        ts = (dt - _EPOCH) // timedelta(milliseconds=1)
    else:
        raise ValueError("ts must be epoch milliseconds or an ISO 8601 time")
    if not _MIN_TS <= ts <= _MAX_TS:
        hint = " (looks like seconds: send milliseconds)" if ts < _MIN_TS and ts * 1000 >= _MIN_TS else ""
        raise ValueError(f"ts {ts} is outside 2000..2100{hint}")
    return ts


def reading_from(item: Any, defaults: dict[str, str] | None = None) -> Reading:
    """One reading from a JSON object; raises ValueError naming the bad field."""
    if not isinstance(item, dict):
        raise ValueError(f"a reading must be a JSON object, got {type(item).__name__}")
    unknown = set(item) - _KEYS
    if unknown:
        raise ValueError(f"unknown field(s) {sorted(unknown)}: a reading has station, metric, ts, value")
    if defaults:
        item = {**defaults, **item}
    for key in ("station", "metric", "ts", "value"):
        if key not in item:
            raise ValueError(f"missing field '{key}'")
    station, metric, value = item["station"], item["metric"], item["value"]
    if not isinstance(station, str) or not _STATION.match(station):
        raise ValueError("station must be 1-64 letters, digits, '_', '-', '.', ':'")
    if not isinstance(metric, str) or not _METRIC.match(metric):
        raise ValueError("metric must be snake_case with its unit, e.g. rain_mm, water_level_m")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError("value must be a number")
    if not math.isfinite(value):
        raise ValueError("value is not finite (NaN or infinity)")
    return Reading(station, metric, parse_ts(item["ts"]), float(value))


def parse_payload(raw: bytes, defaults: dict[str, str] | None = None
                  ) -> tuple[list[Reading], list[Rejected]]:
    """Readings from a JSON payload holding one reading or a list of them."""
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        return [], [Rejected(None, f"body is not valid JSON: {exc}", raw)]
    items = doc if isinstance(doc, list) else [doc]
    ok: list[Reading] = []
    bad: list[Rejected] = []
    for i, item in enumerate(items):
        try:
            ok.append(reading_from(item, defaults))
        except ValueError as exc:
            bad.append(Rejected(i if isinstance(doc, list) else None, str(exc), item))
    return ok, bad
