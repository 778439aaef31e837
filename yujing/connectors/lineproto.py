"""InfluxDB line protocol → Readings, so anything that writes to InfluxDB can push here.

Pure: no I/O. Parsing of one line is done by the maintained C parser of
``line-protocol-parser``; this module maps the parsed point to readings:

- the ``station`` tag names the station (required);
- each numeric field is one reading, the field key is the metric
  (``rain_gauge,station=DG-HM-R01 rain_mm=1.5,wind_speed_ms=3.2``);
- the generic form ``<measurement>,station=S,metric=M value=V`` (a ``metric`` tag
  and a ``value`` field) gives one reading of metric M;
- integer fields (``3i``) become floats, booleans 1.0 / 0.0; string fields are not
  readings and are skipped (a Telegraf ``status="ok"`` field is not an error);
- the measurement name is not used: a station's kind comes from the registry;
- a point without a timestamp takes the gateway's receive time, as InfluxDB does;
  timestamps follow the request's ``precision`` (ns by default, like InfluxDB).

Each bad line is rejected with its 1-based line number; the rest is kept.
"""

from __future__ import annotations

import math
from typing import Any

from line_protocol_parser import LineFormatError, parse_line

from yujing.connectors.parse import METRIC, STATION, Rejected, parse_ts
from yujing.domain import Reading

# divisor to epoch ms (negative: multiplier)
PRECISIONS = {"ns": 1_000_000, "us": 1_000, "ms": 1, "s": -1_000}


def to_ms(t: int, precision: str) -> int:
    div = PRECISIONS[precision]
    return t // div if div > 0 else t * -div


def parse_lines(body: bytes, precision: str = "ns", now_ms: int = 0
                ) -> tuple[list[Reading], list[Rejected]]:
    """Readings from a line-protocol body; one Rejected per bad line or field."""
    ok, bad = parse_lines_indexed(body, precision, now_ms)
    return [r for _, r in ok], bad


def parse_lines_indexed(body: bytes, precision: str = "ns", now_ms: int = 0
                        ) -> tuple[list[tuple[int | None, Reading]], list[Rejected]]:
    """As :func:`parse_lines`, each reading with its 1-based line number."""
    if precision not in PRECISIONS:
        return [], [Rejected(None, f"precision {precision!r} is not one of ns, us, ms, s",
                             body[:200], "invalid")]
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        return [], [Rejected(None, f"body is not UTF-8: {exc}", body, "invalid")]
    ok: list[tuple[int | None, Reading]] = []
    bad: list[Rejected] = []
    for n, line in enumerate(text.split("\n"), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        try:
            point = parse_line(line)
        except LineFormatError as exc:
            bad.append(Rejected(n, f"line {n}: not line protocol ({exc})", line, "invalid"))
            continue
        except Exception as exc:
            bad.append(Rejected(n, f"line {n}: cannot parse ({type(exc).__name__}: {exc})",
                                line, "invalid"))
            continue
        readings, problems = readings_from_point(point, precision, now_ms)
        ok.extend((n, r) for r in readings)
        bad.extend(Rejected(n, f"line {n}: {p}", line, code) for code, p in problems)
    return ok, bad


def readings_from_point(point: dict[str, Any], precision: str, now_ms: int
                        ) -> tuple[list[Reading], list[tuple[str, str]]]:
    """Readings of one parsed point and (code, reason) per problem."""
    tags, fields = point.get("tags") or {}, point.get("fields") or {}
    station = tags.get("station")
    if station is None:
        return [], [("invalid", "no 'station' tag: write e.g. rain_gauge,station=DG-HM-R01 rain_mm=1.5")]
    if not STATION.fullmatch(station):
        return [], [("invalid", "station must be 1-64 letters, digits, '_', '-', '.', ':'")]
    t = point.get("time")
    try:
        ts = now_ms if t is None else parse_ts(to_ms(int(t), precision))
    except ValueError as exc:
        hint = "" if precision != "ns" else " (the default precision is ns: add ?precision=ms)"
        return [], [("invalid", f"{exc}{hint}")]
    if "metric" in tags:
        metric = tags["metric"]
        if "value" not in fields:
            return [], [("invalid", "a point with a 'metric' tag needs a 'value' field")]
        fields = {metric: fields["value"]}
    out: list[Reading] = []
    problems: list[tuple[str, str]] = []
    for key, value in fields.items():
        if isinstance(value, str):
            continue  # text fields are annotations, not readings
        if not METRIC.fullmatch(key):
            problems.append(("invalid", f"field {key!r} is not a metric name: snake_case with its "
                                        "unit, e.g. rain_mm"))
            continue
        v = float(value)  # bool → 1.0 / 0.0, int → float
        if not math.isfinite(v):
            problems.append(("not_finite", f"{key}: value is not finite"))
            continue
        out.append(Reading(station, key, ts, v))
    return out, problems
