"""Sanity checks a parsed reading must pass before it may enter the stream.

Pure: the caller passes ``now_ms`` and the registry lookup. Parsing (parse.py,
lineproto.py, events.py) decides whether an item *is* a reading; this module
decides whether a reading is *believable*: a known station (by policy), a
physically possible value for its metric, a unit that matches the metric's
name, and an event time neither in the future nor hopelessly old.

Each rejection carries a short ``code`` (for metrics labels, low cardinality)
and a ``reason`` a device integrator can act on.
"""

from __future__ import annotations

import math
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from itertools import repeat
from operator import attrgetter

import numpy as np

from yujing.domain import Forecast, Reading

# Physical ranges per metric: values outside are sensor faults or unit mistakes
# (mm sent as 0.1 mm counts, cm sent as m), never weather. Deliberately loose:
# the world record 1-hour rainfall is 305 mm, the strongest measured gust 113 m/s.
# A site adds or narrows ranges in config (gateway.ranges).
DEFAULT_RANGES: dict[str, tuple[float, float]] = {
    "rain_mm": (0.0, 500.0),             # one report's rainfall
    "rain_1h_mm": (0.0, 500.0),
    "water_level_m": (-100.0, 2000.0),   # stage or elevation above a datum
    "flow_m3s": (0.0, 100_000.0),
    "waterlogging_depth_m": (0.0, 10.0),
    "wind_speed_ms": (0.0, 120.0),
    "wind_gust_ms": (0.0, 120.0),
    "wind_dir_deg": (0.0, 360.0),
    "temperature_c": (-60.0, 70.0),
    "humidity_pct": (0.0, 100.0),
    "pressure_hpa": (800.0, 1100.0),
    "visibility_m": (0.0, 100_000.0),
    "dust_inlet_temp_c": (-40.0, 400.0),
    "dust_dp_pa": (-5_000.0, 20_000.0),
    "dust_conc_mgm3": (0.0, 100_000.0),
    "gas_lel_pct": (0.0, 100.0),
    "gas_ppm": (0.0, 1_000_000.0),
    "o2_pct": (0.0, 100.0),
    # discrete events (events.py): confidence 0..1, or 1 per occurrence
    "smoke": (0.0, 1.0),
    "fire": (0.0, 1.0),
    "spark": (0.0, 1_000_000.0),
    "vent_burst": (0.0, 1_000_000.0),
    "airlock_fault": (0.0, 1_000_000.0),
    "extinguisher": (0.0, 1_000_000.0),
}
_PCT = (0.0, 100.0)

# Metric names end in their unit (DESIGN: rain_mm, wind_speed_ms). When a
# device also sends ``unit``, it must be one spelling of that unit.
UNIT_SPELLINGS: dict[str, frozenset[str]] = {
    "mm": frozenset({"mm", "millimetre", "millimeter"}),
    "m": frozenset({"m", "metre", "meter"}),
    "ms": frozenset({"m/s", "ms", "m s-1", "m·s-1", "mps"}),
    "c": frozenset({"c", "°c", "degc", "celsius", "℃"}),
    "pct": frozenset({"%", "pct", "percent", "%rh", "%lel", "%vol"}),
    "pa": frozenset({"pa", "pascal"}),
    "hpa": frozenset({"hpa", "mbar"}),
    "deg": frozenset({"deg", "°", "degree", "degrees"}),
    "m3s": frozenset({"m3/s", "m³/s", "m3s"}),
    "ppm": frozenset({"ppm"}),
    "mgm3": frozenset({"mg/m3", "mg/m³", "mgm3"}),
}


def unit_problem(metric: str, unit: object) -> str | None:
    """Why ``unit`` contradicts the unit in ``metric``'s name, or None when it fits."""
    if not isinstance(unit, str):
        return "unit must be text, e.g. \"mm\""
    suffix = metric.rsplit("_", 1)[-1]
    accepted = UNIT_SPELLINGS.get(suffix)
    if accepted is None or unit.strip().lower() in accepted:
        return None
    return (f"unit {unit!r} does not match metric {metric} (unit {suffix}): convert the value, "
            f"or drop the unit field")


@dataclass(frozen=True)
class Limits:
    """What the gateway believes; built once from config (gateway section)."""

    max_future_ms: int = 5 * 60_000
    max_age_ms: int = 7 * 86_400_000
    ranges: dict[str, tuple[float, float]] = field(default_factory=lambda: dict(DEFAULT_RANGES))
    reject_unknown_stations: bool = False

    def range_of(self, metric: str) -> tuple[float, float] | None:
        r = self.ranges.get(metric)
        if r is None and metric.endswith("_pct"):
            return _PCT
        return r


@dataclass(frozen=True)
class Problem:
    code: str
    reason: str


FORECAST_HORIZON_MS = 16 * 86_400_000  # valid times further ahead of their issue: a unit slip


def _forecast_problem(r: Reading) -> tuple[Problem | None, int]:
    """A forecast's own checks, and the time the age checks apply to (its issue time);
    an observation with a forecast's name is refused (it would never reach a rule)."""
    if not isinstance(r, Forecast):
        if r.metric.endswith("_fcst"):
            return Problem("forecast_as_reading", f"{r.metric} is a forecast metric: send it "
                           "with issued and valid to POST /v1/forecasts (MQTT: "
                           "yujing/<source>/<station>/forecast)"), r.ts
        return None, r.ts
    if not r.issued <= r.ts <= r.issued + FORECAST_HORIZON_MS:
        return Problem("valid", f"valid time must lie from the issue time to "
                       f"{FORECAST_HORIZON_MS // 86_400_000} days after it: check both are in "
                       "ms (or ISO 8601 with offset)"), r.issued
    return None, r.issued


def check(r: Reading, now_ms: int, limits: Limits,
          known: Callable[[str], bool] | None = None) -> Problem | None:
    """The first reason ``r`` must not enter the stream, or None.

    ``known`` tells whether a station is in the registry; None means there is
    no registry, so every station is accepted.
    """
    if not math.isfinite(r.value):
        return Problem("not_finite", "value is not finite (NaN or infinity)")
    if limits.reject_unknown_stations and known is not None and not known(r.station):
        return Problem("unknown_station", f"station {r.station!r} is not in the station registry: "
                                          "add it there, or set gateway.unknown_station: accept")
    problem, ts = _forecast_problem(r)
    if problem is not None:
        return problem
    what = "issued" if isinstance(r, Forecast) else "ts"
    if ts > now_ms + limits.max_future_ms:
        ahead = (ts - now_ms) / 60_000
        return Problem("future", f"{what} is {ahead:.1f} min in the future (limit "
                                 f"{limits.max_future_ms // 60_000} min): check the device clock "
                                 "and its time zone (send UTC ms or an ISO time with offset)")
    if ts < now_ms - limits.max_age_ms:
        days = (now_ms - ts) / 86_400_000
        return Problem("too_old", f"{what} is {days:.1f} days old (limit "
                                  f"{limits.max_age_ms / 86_400_000:g} d): backfill older history "
                                  "with the CSV import, not live ingest")
    rng = limits.range_of(r.metric.removesuffix("_fcst"))
    if rng is not None and not rng[0] <= r.value <= rng[1]:
        return Problem("range", f"{r.metric} {r.value:g} is outside its physical range "
                                f"{rng[0]:g}..{rng[1]:g}: check the sensor and the unit "
                                "(or widen gateway.ranges)")
    return None


_station, _metric, _ts, _value = (attrgetter(a) for a in ("station", "metric", "ts", "value"))


def all_pass(readings: Sequence[Reading], now_ms: int, limits: Limits,
             known: Callable[[str], bool] | None = None) -> bool:
    """True when :func:`check` finds nothing wrong with any of ``readings``; False when one
    of them may be wrong, and then :func:`check` must look at each for its reason.

    The same checks as :func:`check`, done per batch: each distinct station and metric
    once, times and values as columns. Forecasts are left to :func:`check`.
    """
    if not readings or set(map(type, readings)) != {Reading}:
        return False
    values = list(map(_value, readings))
    if not all(map(math.isfinite, values)):
        return False
    if limits.reject_unknown_stations and known is not None and not all(
            map(known, set(map(_station, readings)))):
        return False
    metrics = list(map(_metric, readings))
    distinct = set(metrics)
    if any(m.endswith("_fcst") for m in distinct):   # forecast_as_reading
        return False
    ts = list(map(_ts, readings))
    if max(ts) > now_ms + limits.max_future_ms or min(ts) < now_ms - limits.max_age_ms:
        return False
    ranges = {m: r for m in distinct if (r := limits.range_of(m)) is not None}
    if not ranges:
        return True
    if len(distinct) == 1:
        lo, hi = ranges[metrics[0]]
        return lo <= min(values) and max(values) <= hi
    names = list(ranges)
    code = {m: i for i, m in enumerate(names)}
    unranged = len(names)   # metrics without a range compare with ±inf
    lo = np.array([ranges[m][0] for m in names] + [-math.inf])
    hi = np.array([ranges[m][1] for m in names] + [math.inf])
    rows = np.array([code.get(m, unranged) for m in metrics])
    v = np.array(values)
    return bool(((lo[rows] <= v) & (v <= hi[rows])).all())


class Deduper:
    """Remembers recently accepted (station, metric, ts) keys, bounded.

    Devices resend after a timeout and MQTT QoS 1 redelivers after a
    reconnect; an exact repeat is dropped here so it costs the stream
    nothing. A repeat with a *different* value is a correction and goes on:
    the engine's series keep the newest value per timestamp and InfluxDB
    overwrites a point with the same series and time, so "last write wins"
    holds everywhere. The memory is per gateway process and bounded, so a
    repeat through another gateway, or much later, still reaches Kafka; there
    the engine's slots keyed by event time make it harmless (DESIGN:
    idempotent replay).

    Keys are remembered when offered and forgotten again when storing them
    failed, so a client that retries after a 503 is not told "duplicate".
    """

    def __init__(self, capacity: int = 200_000) -> None:
        self.capacity = capacity
        self._seen: OrderedDict[tuple, float] = OrderedDict()

    def __len__(self) -> int:
        return len(self._seen)

    def offer(self, r: Reading) -> str:
        """'new' (remembered now), 'repeat' (same value seen: drop) or 'correction'."""
        if self.capacity <= 0:
            return "new"
        key = _key(r)
        old = self._seen.get(key)
        if old is not None and old == r.value:
            return "repeat"
        self._seen[key] = r.value
        self._seen.move_to_end(key)
        if len(self._seen) > self.capacity:
            self._seen.popitem(last=False)
        return "new" if old is None else "correction"

    def offer_all_new(self, readings: Sequence[Reading]) -> bool:
        """Remember every reading at once when none was seen before, nor twice among them:
        :meth:`offer` would call each of them "new". False, with nothing remembered, when one
        may be a repeat or a correction (then :meth:`offer` takes them one by one)."""
        if self.capacity <= 0:
            return True
        if len(readings) > self.capacity:
            return False
        if set(map(type, readings)) == {Reading}:
            keys = list(zip(map(_station, readings), map(_metric, readings), map(_ts, readings)))
        else:
            keys = list(map(_key, readings))
        seen = self._seen
        fresh = dict(zip(keys, map(_value, readings)))
        if len(fresh) != len(keys) or not seen.keys().isdisjoint(fresh):
            return False
        seen.update(fresh)
        # the oldest go, as offer() evicts them (a deque of length 0 runs the pops in C)
        deque(map(seen.popitem, repeat(False, len(seen) - self.capacity)), 0)
        return True

    def forget(self, readings: Iterable[Reading]) -> None:
        for r in readings:
            self._seen.pop(_key(r), None)


def _key(r: Reading) -> tuple:
    """A forecast is one value per issue and valid time: a new issue is no repeat."""
    if isinstance(r, Forecast):
        return (r.station, r.metric, r.ts, r.issued)
    return (r.station, r.metric, r.ts)
