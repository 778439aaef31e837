"""Scored readings/s per detector on envelopes of 500 readings (median of --runs).

    .venv/bin/python bench/models.py                      # 3 runs, 50 stations
    .venv/bin/python bench/models.py --stations 100 --runs 5

Synthetic water levels (daily tide + noise, 5-minute readings). Each detector is
trained on two days. Each station's state is then warmed with the readings that
follow (``history`` readings or more, one call per station: the steady state is what
a worker lives in), and ``--live-days`` more days are streamed through it as the
worker would. Only that streaming is timed:

* ``<kind>_mixed_readings_per_s``: ``Scorer.score_envelope`` on envelopes of 500
  readings from all stations (dictionary-encoded columns, one state per station;
  the baseline and spike detectors score the whole envelope in one numpy pass).
* ``<kind>_single_readings_per_s``: ``Detector.score`` on envelopes of 500 readings
  of one series (the cheapest case: one call per envelope).

Target (issue 6): 100,000/s or more for baseline and spike; IsolationForest and the
ensemble reported.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from yujing.models import KINDS, make_detector
from yujing.models.scoring import Scorer

STEP = 300_000
T0 = 1_735_660_800_000
DAY = 288


def readings(stations: int, days: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = DAY * days
    parts = []
    for s in range(stations):
        t = T0 + np.arange(n, dtype=np.int64) * STEP
        v = 2 + s * 0.1 + 0.4 * np.sin(2 * np.pi * (np.arange(n) / DAY + s / stations))
        parts.append(pd.DataFrame({"ts": t, "station": f"st{s:03d}", "metric": "water_level_m",
                                   "value": v + rng.normal(0, 0.02, n)}))
    return pd.concat(parts, ignore_index=True)


def envelopes(live: pd.DataFrame, size: int) -> list[tuple]:
    live = live.sort_values(["ts", "station"], kind="stable")
    names = sorted(live["station"].unique())
    code = {n: i for i, n in enumerate(names)}
    si = live["station"].map(code).to_numpy(np.int64)
    ts, v = live["ts"].to_numpy(np.int64), live["value"].to_numpy()
    mi = np.zeros(ts.size, np.int64)
    return [(names, si[a:a + size], ["water_level_m"], mi[a:a + size], ts[a:a + size],
             v[a:a + size]) for a in range(0, ts.size, size)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--stations", type=int, default=50)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--envelope", type=int, default=500)
    ap.add_argument("--live-days", type=int, default=1, help="days streamed and timed")
    ap.add_argument("--detector", action="append", choices=sorted(KINDS))
    args = ap.parse_args()
    kinds = args.detector or sorted(KINDS)
    train = readings(args.stations, 2)
    models = {kind: make_detector(kind) for kind in kinds}
    warm_days = {k: math.ceil((m.history + 1) / DAY) if m.history else 0
                 for k, m in models.items()}
    data = readings(args.stations, 2 + max(warm_days.values()) + args.live_days, seed=1)
    print(f"stations: {args.stations}")
    print(f"envelope_readings: {args.envelope}")
    print(f"live_readings: {args.stations * DAY * args.live_days}")
    for kind in kinds:
        t = time.perf_counter()
        det = models[kind].fit(train)
        print(f"{kind}_fit_s: {time.perf_counter() - t:.2f}")
        a = T0 + 2 * DAY * STEP
        b = a + warm_days[kind] * DAY * STEP
        warm = data[(data["ts"] >= a) & (data["ts"] < b)]
        live = data[(data["ts"] >= b) & (data["ts"] < b + args.live_days * DAY * STEP)]
        envs = envelopes(live, args.envelope)
        one = live[live["station"] == "st000"]
        one_ts, one_v = one["ts"].to_numpy(np.int64), one["value"].to_numpy()
        mixed, single = [], []
        for _ in range(args.runs):
            sc = Scorer(det)
            for name, g in warm.groupby("station"):
                sc.states[name] = det.new_state(name)
                det.score(g["ts"].to_numpy(np.int64), g["value"].to_numpy(), sc.states[name])
            t = time.perf_counter()
            n = 0
            for env in envs:
                sc.score_envelope(*env)
                n += env[4].size
            mixed.append(n / (time.perf_counter() - t))
            state = det.new_state("st000")
            reps = max(1, 20_000 // one_ts.size)
            t = time.perf_counter()
            n = 0
            for r in range(reps):
                shift = r * one_ts.size * STEP  # keep time moving forward across repeats
                for a in range(0, one_ts.size, args.envelope):
                    det.score(one_ts[a:a + args.envelope] + shift, one_v[a:a + args.envelope],
                              state)
                    n += min(args.envelope, one_ts.size - a)
            single.append(n / (time.perf_counter() - t))
        print(f"{kind}_mixed_readings_per_s: {statistics.median(mixed):,.0f}")
        print(f"{kind}_single_readings_per_s: {statistics.median(single):,.0f}")


if __name__ == "__main__":
    main()
