"""Gauges that fall silent in a flood, on real data: what the no-data check raises.

    .venv/bin/python bench/silent_gauge.py --data PATH/hubeau-water-level [--silence 34h]
                                           [--chunk 2000] [--runs 5]

The Hub'Eau 10-minute water heights of 12 French gauges (flood of 22–25 January 2020)
are replayed through the pipeline with the river pack (``river-level``), as the backtest
does (chunks of readings, the event-time no-data check after each). Twice:

* ``as recorded``: the data as it is; its real gaps are listed with what they raise.
* ``taken at the peak``: each gauge's readings from just after its flood peak to
  ``--silence`` later are removed (the flood took the gauge), and the no-data warning of
  each gauge is printed: grade and reason, now and with the open-warning context switched
  off (what the code raised before: blue).

The data has no official levels, so each gauge's levels are fractions of the way from its
month's median to its month's maximum (warning 50 %, guaranteed 75 %, historic maximum
above the maximum; blue margin 10 %): a stand-in that puts every gauge's own flood at
orange, which is what the check needs, not an evaluation of the thresholds.

Timing: the replay with open warnings tracked, against the same replay with the
open-warning context and the reading record switched off (the baseline, measured in the
same run); medians of ``--runs``.
Then the worst case, a storm: ``--storm`` gauges (synthetic, 5-minute readings for 12 h)
all at orange from their first reading, so every envelope carries readings of open
warnings, timed the same way.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from yujing.domain import Grade
from yujing.durations import parse_duration_ms
from yujing.envelope import Columns
from yujing.pipeline import Pipeline
from yujing.rules.loader import load_rules
from yujing.stations import Registry, Station

ROOT = Path(__file__).resolve().parents[1]


def load(folder: Path) -> dict[str, pd.DataFrame]:
    out = {}
    for f in sorted(folder.glob("*_10min.csv")):
        d = pd.read_csv(f, sep=";", usecols=["code_site", "date_obs", "resultat_obs"])
        when = pd.to_datetime(d["date_obs"], utc=True)
        d["ts"] = (when - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(milliseconds=1)
        d["value"] = d["resultat_obs"] / 1000.0  # mm → m
        out[str(d["code_site"].iloc[0])] = d.sort_values("ts")[["ts", "value"]].reset_index(drop=True)
    return out


def registry(series: dict[str, pd.DataFrame]) -> Registry:
    stations = []
    for sid, d in series.items():
        med, top = float(d["value"].median()), float(d["value"].max())
        span = top - med
        stations.append(Station(id=sid, name=sid, kind="river_gauge", town=sid, expected_interval="10m",
                                thresholds={"warning_level_m": med + 0.5 * span,
                                            "guaranteed_level_m": med + 0.75 * span,
                                            "historic_max_m": top + 0.5 * span,
                                            "blue_margin_m": 0.1 * span}))
    return Registry(stations)


def columns(series: dict[str, pd.DataFrame]) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    names = sorted(series)
    si = np.concatenate([np.full(len(series[s]), i, np.uint32) for i, s in enumerate(names)])
    ts = np.concatenate([series[s]["ts"].to_numpy(np.int64) for s in names])
    val = np.concatenate([series[s]["value"].to_numpy(np.float64) for s in names])
    order = np.argsort(ts, kind="stable")
    return names, si[order], ts[order], val[order]


def replay(p: Pipeline, cols: tuple, chunk: int) -> list:
    names, si, ts, val = cols
    mi = np.zeros(ts.size, np.uint32)
    evs = []
    for a in range(0, ts.size, chunk):
        b = min(a + chunk, ts.size)
        c = Columns(0, 0, names, ["water_level_m"], si[a:b], mi[a:b], ts[a:b], val[a:b])
        now = int(ts[b - 1])
        evs += p.handle(c, now).events
        evs += p.check_nodata(now, clock="event")
    return evs


def pipeline(rules, reg: Registry, tracked: bool) -> Pipeline:
    p = Pipeline(rules, reg, tz="Europe/Paris")  # the gauges' own clock, for times in reasons
    if not tracked:  # what the code did before: no open-warning context, nothing recorded
        p.held.context = lambda station, since: None
        p.held.record = lambda cols: None
    return p


def taken_at_peak(series: dict[str, pd.DataFrame], silence_ms: int
                  ) -> tuple[dict[str, pd.DataFrame], dict[str, tuple[int, int]]]:
    """Each gauge without its readings from just after its peak to ``silence_ms`` later, and
    per gauge (peak, first reading after the silence)."""
    out, when = {}, {}
    for sid, d in series.items():
        peak = int(d["ts"][d["value"].idxmax()])
        out[sid] = d[(d["ts"] <= peak) | (d["ts"] > peak + silence_ms)].reset_index(drop=True)
        later = out[sid]["ts"][out[sid]["ts"] > peak]
        when[sid] = (peak, int(later.iloc[0]) if len(later) else 0)
    return out, when


def stamp(ms: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.gmtime(ms / 1000)) + "Z"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, required=True, help="the hubeau-water-level folder")
    ap.add_argument("--silence", default="34h")
    ap.add_argument("--chunk", type=int, default=2000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--storm", type=int, default=2000, help="gauges in the storm case")
    args = ap.parse_args()
    series = load(args.data)
    reg = registry(series)
    rules = [r for r in load_rules(ROOT / "rules") if r.id.startswith("river-")]

    print("## as recorded")
    for e in replay(pipeline(rules, reg, True), columns(series), args.chunk):
        if e.rule == "nodata":
            print(f"{e.station} {e.kind.value} {Grade(e.grade).label} at {stamp(e.ts)}: {e.reason_zh}")

    print(f"## taken at the peak (silent {args.silence})")
    taken, when = taken_at_peak(series, parse_duration_ms(args.silence))
    cut = columns(taken)
    everything = replay(pipeline(rules, reg, True), cut, args.chunk)
    now = [e for e in everything if e.rule == "nodata" and e.kind.value == "raised"]
    before = {(e.station, e.ts): e for e in replay(pipeline(rules, reg, False), cut, args.chunk)
              if e.rule == "nodata" and e.kind.value == "raised"}
    held_through = 0
    for e in now:
        old = before.get((e.station, e.ts))
        print(f"{e.station} at {stamp(e.ts)}: now {Grade(e.grade).label} 「{e.reason_zh}」; "
              f"before {Grade(old.grade).label if old else '-'} 「{old.reason_zh if old else ''}」")
        peak, back = when[e.station]
        if not peak < e.ts <= back:
            continue
        level = [x for x in everything if x.rule == "river-level" and x.station == e.station
                 and x.ts > peak]
        during = [x for x in level if x.ts < back]
        held_through += not during
        nxt = (f"{level[0].kind.value} {Grade(level[0].grade).label} at {stamp(level[0].ts)}"
               if level else "none")
        print(f"  river-level while silent: {len(during)} events; data back {stamp(back)}; next: {nxt}")
    print(f"open_warnings_held_through_silence: {held_through}")
    graded = sum(1 for e in now if e.grade > Grade.BLUE)
    print(f"nodata_raised: {len(now)}")
    print(f"nodata_above_blue_now: {graded}")
    print(f"nodata_above_blue_before: {sum(1 for e in before.values() if e.grade > Grade.BLUE)}")

    timed("hubeau", rules, reg, columns(series), args)
    storm = {f"S{i:05d}": pd.DataFrame({"ts": 1_580_000_000_000 + np.arange(144) * 300_000,
                                        "value": 9.0 + 0.001 * np.arange(144)})
             for i in range(args.storm)}
    levels = {"warning_level_m": 7.0, "guaranteed_level_m": 8.0, "historic_max_m": 12.0,
              "blue_margin_m": 0.5}
    storm_reg = Registry([Station(id=sid, name=sid, kind="river_gauge", town=sid[:3],
                                  expected_interval="5m", thresholds=levels) for sid in storm])
    timed("storm", rules, storm_reg, columns(storm), args)


def timed(name: str, rules, reg: Registry, cols: tuple, args) -> None:
    times: dict[bool, list[float]] = {True: [], False: []}
    for _ in range(args.runs):
        for tracked in (False, True):
            t0 = time.perf_counter()
            replay(pipeline(rules, reg, tracked), cols, args.chunk)
            times[tracked].append(time.perf_counter() - t0)
    n = cols[2].size
    base, mine = statistics.median(times[False]), statistics.median(times[True])
    print(f"{name}_readings: {n}")
    print(f"{name}_replay_s_median_baseline: {base:.3f}")
    print(f"{name}_replay_s_median_tracked: {mine:.3f}")
    print(f"{name}_readings_per_s_tracked: {n / mine:.0f}")
    print(f"{name}_ratio_tracked_to_baseline: {mine / base:.3f}")


if __name__ == "__main__":
    main()
