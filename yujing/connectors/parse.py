"""Turn untrusted JSON from devices into Readings, item by item, with reasons.

Pure: no I/O. A bad item never spoils the rest of its batch: the caller gets
the valid readings and, for each rejected item, its index and a reason a
gateway's developer can act on.

Three payload forms, alone or mixed in a list (DESIGN, MQTT):
- one reading ``{"station", "metric", "ts", "value"}``;
- a list of readings;
- one station's multi-metric record ``{"ts": …, "rain_mm": 1.2, "wind_speed_ms": 3}``:
  every key other than ts/station/quality/seq is a metric. The station comes from
  the record or the topic ``yujing/<source>/<station>/<kind>``.

A station given by the topic (``defaults``) is binding: an item naming another one is
refused (code ``topic_mismatch``), or a device could write any station by naming it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from yujing.connectors.validate import unit_problem
from yujing.domain import Reading

# Matched whole (fullmatch): with re.match, "$" also matches before a trailing newline, and an id
# "DG-HM-R01\n" would pass, match a DG-HM-* scope and break the sink's line protocol.
METRIC = re.compile(r"[a-z][a-z0-9_]{0,63}")
STATION = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}")
_KEYS = {"station", "metric", "ts", "value", "quality", "seq", "unit"}
# keys of a multi-metric record that are not metrics
_RECORD_KEYS = {"station", "ts", "quality", "seq"}
# Event times before 2000 or after 2100 are unit mistakes (seconds vs ms), not data.
MIN_TS, MAX_TS = 946_684_800_000, 4_102_444_800_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Rejected:
    index: int | None
    reason: str
    raw: Any
    code: str = "invalid"  # short, for metrics labels: invalid, json, not_finite, unit, ...


class TopicMismatch(ValueError):
    """An item names a station other than the one its MQTT topic binds it to."""


def check_bound(item: dict, defaults: dict[str, str] | None) -> None:
    bound = (defaults or {}).get("station")
    named = item.get("station")
    # not a string: the usual check ("station must be …") refuses it, without a repr of
    # whatever nesting it holds
    if bound is None or not isinstance(named, str) or named == bound:
        return
    own = f"yujing/<source>/{named}/<kind>" if STATION.fullmatch(named) else "its own station's topic"
    raise TopicMismatch(f"station {named[:64]!r} in the payload differs from {bound!r} in the "
                        f"topic: publish it on {own}, or leave station out of the payload")


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
    if not MIN_TS <= ts <= MAX_TS:
        hint = " (looks like seconds: send milliseconds)" if ts < MIN_TS and ts * 1000 >= MIN_TS else ""
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
        check_bound(item, defaults)
        item = {**defaults, **item}
    for key in ("station", "metric", "ts", "value"):
        if key not in item:
            raise ValueError(f"missing field '{key}'")
    station, metric, value = item["station"], item["metric"], item["value"]
    if not isinstance(station, str) or not STATION.fullmatch(station):
        raise ValueError("station must be 1-64 letters, digits, '_', '-', '.', ':'")
    if not isinstance(metric, str) or not METRIC.fullmatch(metric):
        raise ValueError("metric must be snake_case with its unit, e.g. rain_mm, water_level_m")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError("value must be a number")
    if not math.isfinite(value):
        raise ValueError("value is not finite (NaN or infinity)")
    if "unit" in item:
        problem = unit_problem(metric, item["unit"])
        if problem:
            raise ValueError(problem)
    return Reading(station, metric, parse_ts(item["ts"]), float(value))


def is_record(item: Any) -> bool:
    """A multi-metric record has no ``value`` and no ``metric`` key."""
    return isinstance(item, dict) and "value" not in item and "metric" not in item


def readings_from_record(item: dict, defaults: dict[str, str] | None = None
                         ) -> tuple[list[Reading], list[str]]:
    """Readings of one station's multi-metric record, and a reason per bad metric.

    A record-level fault (no station, bad ts, no metric at all) raises
    ValueError: nothing of it can be kept. A bad metric spoils only itself.
    """
    check_bound(item, defaults)
    station = item.get("station", (defaults or {}).get("station"))
    if station is None:
        raise ValueError("missing field 'station': put it in the record or publish to "
                         "yujing/<source>/<station>/<kind>")
    if not isinstance(station, str) or not STATION.fullmatch(station):
        raise ValueError("station must be 1-64 letters, digits, '_', '-', '.', ':'")
    if "ts" not in item:
        raise ValueError("missing field 'ts'")
    ts = parse_ts(item["ts"])
    metrics = [k for k in item if k not in _RECORD_KEYS]
    if not metrics:
        raise ValueError("a record needs at least one metric, e.g. {\"ts\": …, \"rain_mm\": 1.2}")
    out: list[Reading] = []
    bad: list[str] = []
    for key in metrics:
        value = item[key]
        if not METRIC.fullmatch(key):
            bad.append(f"{key!r} is not a metric name: snake_case with its unit, e.g. rain_mm")
        elif isinstance(value, bool) or not isinstance(value, (int, float)):
            bad.append(f"{key}: value must be a number")
        elif not math.isfinite(value):
            bad.append(f"{key}: value is not finite (NaN or infinity)")
        else:
            out.append(Reading(station, key, ts, float(value)))
    return out, bad


def parse_payload(raw: bytes, defaults: dict[str, str] | None = None
                  ) -> tuple[list[Reading], list[Rejected]]:
    """Readings from a JSON payload: one reading, one record, or a list of either."""
    ok, bad = parse_payload_indexed(raw, defaults)
    return [r for _, r in ok], bad


def too_many(n: int, limit: int, what: str = "items") -> str:
    return (f"too many {what}: {n} in one request or message, the limit is {limit}; send "
            "smaller batches")


def load_items(raw: bytes, max_items: int | None = None) -> tuple[list[Any], bool, Rejected | None]:
    """A JSON body's items (one item or a list), whether it was a list, or why not.

    More than ``max_items`` items refuse the whole body (code ``too_many``) before any of
    them is looked at: checking two million junk items one by one is the flood."""
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        return [], False, Rejected(None, f"body is not valid JSON: {exc}", raw, "json")
    items = doc if isinstance(doc, list) else [doc]
    if max_items is not None and len(items) > max_items:
        return [], False, Rejected(None, too_many(len(items), max_items), None, "too_many")
    return items, isinstance(doc, list), None


def parse_payload_indexed(raw: bytes, defaults: dict[str, str] | None = None,
                          max_items: int | None = None
                          ) -> tuple[list[tuple[int | None, Reading]], list[Rejected]]:
    """As :func:`parse_payload`, each reading with the index of the item it came from.

    The index lets a later check (range, scope) name the item in the reply.
    """
    return split_items(raw, defaults, max_items, is_record, readings_from_record, reading_from)


def split_items(raw: bytes, defaults: dict[str, str] | None, max_items: int | None,
                is_many: Callable[[Any], bool],
                many: Callable[[Any, dict[str, str] | None], tuple[list[Any], list[str]]],
                one: Callable[[Any, dict[str, str] | None], Any]
                ) -> tuple[list[tuple[int | None, Any]], list[Rejected]]:
    """Items of a JSON body (one or a list) into values with their item's index, and the
    rejected items with their reasons: an item ``is_many`` gives several values (a station's
    record, a forecast issue's steps) and the reasons of its bad parts, another gives one.
    Shared by readings and forecasts so both refuse alike."""
    items, is_list, refused = load_items(raw, max_items)
    if refused is not None:
        return [], [refused]
    ok: list[tuple[int | None, Any]] = []
    bad: list[Rejected] = []
    for i, item in enumerate(items):
        index = i if is_list else None
        try:
            if is_many(item):
                values, problems = many(item, defaults)
                ok.extend((index, v) for v in values)
                bad.extend(Rejected(index, p, item, reason_code(p)) for p in problems)
            else:
                ok.append((index, one(item, defaults)))
        except ValueError as exc:
            code = "topic_mismatch" if isinstance(exc, TopicMismatch) else reason_code(str(exc))
            bad.append(Rejected(index, str(exc), item, code))
    return ok, bad


def reason_code(reason: str) -> str:
    """The machine code of a refusal's reason (the dead letter's and the reply's ``code``)."""
    if "not finite" in reason:
        return "not_finite"
    if reason.startswith("unit "):
        return "unit"
    return "invalid"
