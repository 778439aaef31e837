"""Throughput of the station models (pca, mcd, residual) on mixed envelopes, streaming.

Each of ``--stations`` stations has four sensors driven by one load factor; the models are
fitted on a week of 10-minute readings, every station's state is warmed on a day, and the
next ``--live-days`` are cut into envelopes of ``--envelope`` readings mixed across the
stations (time order, as the gateway batches them). Per envelope and station the new
readings go to ``score_station`` with that station's state, as a worker would. Printed:
readings per second, median of ``--runs``, and each model's ratio to pca measured in the
same run (pca is a single matrix product per row: the floor of what a station model costs).

    .venv/bin/python bench/station_speed.py [--stations 50] [--envelope 500]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import pandas as pd

from yujing.models import make_detector
from yujing.models.scoring import StationScorer

STEP = 600_000
T0 = 1_735_660_800_000
METRICS = ("temp_c", "dp_kpa", "flow_m3h", "humidity_pct")


def readings(stations: int, rows: int, start: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    ts = start + np.arange(rows, dtype=np.int64) * STEP
    parts = []
    for s in range(stations):
        load = np.cumsum(rng.normal(0, 0.2, rows)) * 0.3
        for k, m in enumerate(METRICS):
            v = 10 * (k + 1) + (k + 1) * load + rng.normal(0, 0.3, rows)
            parts.append(pd.DataFrame({"ts": ts, "station": f"st-{s:03d}", "metric": m, "value": v}))
    return pd.concat(parts, ignore_index=True).sort_values(["ts", "station", "metric"],
                                                         kind="stable", ignore_index=True)


def run_once(model, warm: pd.DataFrame, live: pd.DataFrame, envelope: int) -> float:
    states = {st: model.new_state(st) for st in warm["station"].unique()}
    for st, g in warm.groupby("station"):
        model.score_station({m: (x["ts"].to_numpy(), x["value"].to_numpy())
                             for m, x in g.groupby("metric")}, states[st])
    ts, st, me, v = (live[c].to_numpy() for c in ("ts", "station", "metric", "value"))
    t = time.perf_counter()
    for a in range(0, len(live), envelope):
        sl = slice(a, a + envelope)
        order = np.lexsort((ts[sl], me[sl], st[sl]))
        e_ts, e_st, e_me, e_v = ts[sl][order], st[sl][order], me[sl][order], v[sl][order]
        cuts = np.flatnonzero(e_st[1:] != e_st[:-1]) + 1
        for part in np.split(np.arange(e_ts.size), cuts):
            series = {}
            for m in METRICS:
                sel = part[e_me[part] == m]
                series[m] = (e_ts[sel], e_v[sel])
            model.score_station(series, states[e_st[part[0]]])
    return len(live) / (time.perf_counter() - t)


def run_envelopes(model, warm: pd.DataFrame, live: pd.DataFrame, envelope: int) -> float:
    scorer = StationScorer(model)
    for st, g in warm.groupby("station"):
        scorer.states[st] = model.new_state(st)
        model.score_station({m: (x["ts"].to_numpy(), x["value"].to_numpy())
                             for m, x in g.groupby("metric")}, scorer.states[st])
    names, metrics = sorted(live["station"].unique()), list(METRICS)
    si = live["station"].map({n: i for i, n in enumerate(names)}).to_numpy()
    mi = live["metric"].map({m: i for i, m in enumerate(metrics)}).to_numpy()
    ts, v = live["ts"].to_numpy(np.int64), live["value"].to_numpy()
    t = time.perf_counter()
    for a in range(0, len(live), envelope):
        sl = slice(a, a + envelope)
        scorer.score_envelope(names, si[sl], metrics, mi[sl], ts[sl], v[sl])
    return len(live) / (time.perf_counter() - t)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--stations", type=int, default=50)
    ap.add_argument("--envelope", type=int, default=500)
    ap.add_argument("--live-days", type=int, default=1)
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()
    day = 144
    train = readings(a.stations, 7 * day, T0, 1)
    warm = readings(a.stations, day, T0 + 7 * day * STEP, 2)
    live = readings(a.stations, a.live_days * day, T0 + 8 * day * STEP, 3)
    rates, together = {}, {}
    for kind in ("pca", "mcd", "residual"):
        model = make_detector(kind, metrics=list(METRICS)).fit(train)
        rates[kind] = statistics.median(run_once(model, warm, live, a.envelope)
                                        for _ in range(a.runs))
        together[kind] = statistics.median(run_envelopes(model, warm, live, a.envelope)
                                           for _ in range(a.runs))
    print(f"{a.stations} stations × {len(METRICS)} sensors, envelopes of {a.envelope} readings, "
          f"{len(live)} live readings, median of {a.runs}")
    print("| model | station by station: readings/s | ratio to pca | all stations at once: "
          "readings/s | ratio to pca |\n|---|---:|---:|---:|---:|")
    for kind, r in rates.items():
        print(f"| {kind} | {r:,.0f} | {r / rates['pca']:.2f} | {together[kind]:,.0f} | "
              f"{together[kind] / together['pca']:.2f} |")


if __name__ == "__main__":
    main()
