"""The storm view (暴雨专题): rain gauges ranked by accumulation, waterlogging depths. Pure.

Every rain gauge's 1 h / 3 h / 24 h rain sum, coloured by the grade it reaches
under the rules that are loaded (the rainstorm pack's ``sum(rain_mm, 3h) >= 50``
orange and ``>= 100`` red, the short-duration heavy-rain notice's ``sum(rain_mm,
1h) >= 16`` blue, …), so the view and the warnings never disagree about a
threshold. No default rule grades a 24 h sum; that column carries STANDARDS.md's
rainstorm day (≥ 50 mm in 24 h) as a mark, not as a warning colour.

The sums end at ``as_of``: the newest rain reading the console has seen, or now
if that is earlier (a storm replayed in accelerated event time is judged at its
own clock, as the worker judges it). A sum whose window reaches back before the
oldest reading kept for that gauge (less one reporting interval) is flagged ``partial`` (the console keeps
``console.readings_window`` of readings), never shown as if it were whole.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from yujing.console import thresholds as th
from yujing.console.plans import plan_view
from yujing.durations import parse_duration_ms

RAIN = "rain_mm"
DEPTH = "waterlogging_depth_m"
WINDOWS = ("1h", "3h", "24h")
RAINSTORM_DAY_MM = 50.0          # STANDARDS.md "Rainstorm": a rainstorm day, >= 50 mm in 24 h (M)
_OPS = {">=": np.greater_equal, ">": np.greater}


@dataclass(frozen=True)
class Band:
    """A constant threshold a rule puts on one aggregate: ``sum(rain_mm, 3h) >= 50`` is orange."""

    window: str
    grade: int
    op: str
    value: float
    rule: str

    def holds(self, x: float) -> bool:
        return bool(_OPS[self.op](x, self.value))


def _enabled(rules: Iterable[Any]) -> list[Any]:
    """Enabled hazard rules: a data-quality rule's range (``sum(rain_mm, 1h) > 200`` is a
    broken gauge) is no rain grade."""
    return [r for r in rules if getattr(r, "enabled", True)
            and getattr(r, "category", "hazard") != "quality"]


def rain_bands(rules: Iterable[Any]) -> list[Band]:
    """The constant thresholds of the enabled rules on ``sum(rain_mm, W)`` for W in WINDOWS
    (a rule's window spelled 60m counts as 1h), lowest first."""
    by_ms = {parse_duration_ms(w): w for w in WINDOWS}
    out = []
    for rule in _enabled(rules):
        for ln in th.lines_for(rule, None):
            if (ln["metric"] == RAIN and ln["agg"] == "sum" and ln["op"] in _OPS
                    and not ln["source"] and ln["window"]
                    and parse_duration_ms(ln["window"]) in by_ms):
                out.append(Band(by_ms[parse_duration_ms(ln["window"])], ln["grade"], ln["op"],
                                ln["value"], rule.id))
    return sorted(set(out), key=lambda b: (b.window, b.value, b.grade))


def grade_of(x: float, bands: Iterable[Band]) -> int:
    """The highest grade whose threshold ``x`` reaches; 0 for none."""
    return max((b.grade for b in bands if b.holds(x)), default=0)


def sums(ts: np.ndarray, val: np.ndarray, as_of: int) -> dict[str, float]:
    """Rain in each window ``(as_of - W, as_of]``, as the engine sums a window."""
    out = {}
    for w in WINDOWS:
        keep = (ts > as_of - parse_duration_ms(w)) & (ts <= as_of)
        out[w] = round(float(val[keep].sum()), 1)
    return out


def as_of_time(series: Mapping[str, tuple[np.ndarray, np.ndarray]], now_ms: int) -> int:
    """The end of the windows: the newest reading seen, not later than now."""
    newest = max((int(ts[-1]) for ts, _ in series.values() if ts.size), default=now_ms)
    return min(newest, now_ms)


def rain_table(series: Mapping[str, tuple[np.ndarray, np.ndarray]], gauges: Mapping[str, Any],
               rules: Iterable[Any], as_of: int) -> list[dict[str, Any]]:
    """One row per gauge (every registered gauge, reporting or not, and any other station
    with rain readings), worst first: by grade, then the 3 h, 1 h and 24 h sums; a gauge
    without readings has no sums (None) and comes after every one that reported."""
    bands = rain_bands(rules)
    empty = (np.empty(0, np.int64), np.empty(0))
    rows = []
    for sid in sorted(set(gauges) | set(series)):
        ts, val = series.get(sid, empty)
        st = gauges.get(sid)
        if not ts.size:   # a silent gauge: no figure, never "0 mm" (missing data is no all-clear)
            rows.append({"station": sid, "name": getattr(st, "name", "") or sid,
                         "town": getattr(st, "town", ""), "sums": dict.fromkeys(WINDOWS),
                         "grades": dict.fromkeys(WINDOWS, 0), "grade": 0,
                         "partial": dict.fromkeys(WINDOWS, True), "rainstorm_day": False,
                         "last_ts": None, "since": None})
            continue
        s = sums(ts, val, as_of)
        grades = {w: grade_of(s[w], [b for b in bands if b.window == w]) for w in WINDOWS}
        since = int(ts[0])
        # the first reading of a whole window lies up to one reporting interval after its start
        slack = parse_duration_ms(st.expected_interval) if getattr(st, "expected_interval", None) else 0
        rows.append({
            "station": sid, "name": getattr(st, "name", "") or sid, "town": getattr(st, "town", ""),
            "sums": s, "grades": grades, "grade": max(grades.values()),
            "partial": {w: since - slack > as_of - parse_duration_ms(w) for w in WINDOWS},
            "rainstorm_day": s["24h"] >= RAINSTORM_DAY_MM, "last_ts": int(ts[-1]), "since": since})

    def amount(r: dict, w: str) -> float:
        return r["sums"][w] if r["sums"][w] is not None else -1.0
    rows.sort(key=lambda r: (-r["grade"], -amount(r, "3h"), -amount(r, "1h"), -amount(r, "24h"),
                             r["station"]))
    for i, r in enumerate(rows):
        r["rank"] = i + 1
    return rows


def depth_bands(rules: Iterable[Any], station: Any) -> list[Band]:
    """The depth thresholds that apply at a waterlogging point: per grade the point's own
    (``station.depth_*_m``) where it states one, else the rule's default."""
    own: dict[int, Band] = {}
    default: dict[int, Band] = {}
    for rule in _enabled(rules):
        for ln in th.lines_for(rule, station):
            if ln["metric"] == DEPTH and ln["agg"] == "last" and ln["op"] in _OPS:
                band = Band("", ln["grade"], ln["op"], ln["value"], rule.id)
                (own if ln["source"] else default).setdefault(ln["grade"], band)
    return sorted({**default, **own}.values(), key=lambda b: b.grade)


def depth_table(points: Iterable[Any], series: Mapping[str, tuple[np.ndarray, np.ndarray]],
                rules: Iterable[Any]) -> list[dict[str, Any]]:
    """One row per waterlogging point: latest depth, the grade it reaches, the thresholds
    and the response plan; deepest trouble first."""
    rules = list(rules)
    rows = []
    for st in points:
        ts, val = series.get(st.id, (np.empty(0, np.int64), np.empty(0)))
        depth = float(val[-1]) if val.size else None
        bands = depth_bands(rules, st)
        rows.append({
            "station": st.id, "name": st.name, "town": st.town,
            "depth": depth, "ts": int(ts[-1]) if ts.size else None,
            "grade": grade_of(depth, bands) if depth is not None else 0,
            "bands": [{"grade": b.grade, "op": b.op, "value": b.value} for b in bands],
            "plan": plan_view(st.plan)})
    rows.sort(key=lambda r: (-r["grade"], -(r["depth"] if r["depth"] is not None else -1.0),
                             r["station"]))
    return rows


def storm_hazards(rules: Iterable[Any]) -> list[str]:
    """Hazards of the rules that read rain or waterlogging depth: the view's warnings."""
    return sorted({r.hazard for r in _enabled(rules) if {RAIN, DEPTH} & set(th.metrics_of(r))})
