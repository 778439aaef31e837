"""Scored readings/s per detector on mixed envelopes of 500 readings (median of --runs).

    .venv/bin/python bench/models.py                      # 3 runs, 50 stations
    .venv/bin/python bench/models.py --stations 100 --runs 5 --detector iforest

Synthetic stations (5-minute readings): a water level with a daily tide and noise, and
for the station models (pca, mcd) two more metrics that follow it (a flow) or not (a
temperature). Each detector is trained on two days. Each station's state is then warmed
with the readings that follow (``history`` readings or more: the steady state is what a
worker lives in), and ``--live-days`` more days are streamed through it as the worker
would. Only that streaming is timed:

* ``<kind>_mixed_readings_per_s``: the worker's path: ``Scorer.score_envelope``
  (``StationScorer`` for station models) on envelopes of 500 readings from all stations,
  dictionary-encoded, one streaming state per station, only the new readings scored.
* ``<kind>_reference_readings_per_s``, the baseline measured in the same run, on the
  first ``--reference-envelopes`` envelopes: per-metric models scored station by station
  (``Scorer(batch=False)``, the path every detector but baseline and spike took before;
  iforest and the ensemble walk the flattened forests there too since issue 16);
  station models as the rules scored them before, every station's retained rows (the
  model's look-back and the new readings) from a fresh state at each envelope.
* ``<kind>_ratio``: mixed ÷ reference.
* ``<kind>_single_readings_per_s`` (per-metric models): ``Detector.score`` on envelopes
  of one series.
* ``<kind>_rules_readings_per_s`` (``--rules``): the worker's whole path, a rule
  ``anomaly(model=<kind>) >= 0.95`` (clear below 0.5) run by the engine through
  ``Pipeline.handle`` on the same envelopes (warmed on the same readings), and
  ``<kind>_rules_ratio``: that rate ÷ the detector's own mixed rate in the same run.
  ``rules_plain_readings_per_s`` is the floor the engine sets: a threshold rule on the
  same metrics, no model.

Target (issue 16): 100,000/s or more for every detector on mixed envelopes of 50 stations.
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

from yujing.envelope import Columns
from yujing.models import ALL_KINDS, STATION_KINDS, make_detector
from yujing.models.scoring import Scorer, StationScorer
from yujing.pipeline import Pipeline
from yujing.rules.schema import Rule

STEP = 300_000
T0 = 1_735_660_800_000
DAY = 288


METRICS = ["water_level_m", "flow_m3s", "temp_c"]


def readings(stations: int, days: int, seed: int = 0, metrics: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = DAY * days
    parts = []
    for s in range(stations):
        t = T0 + np.arange(n, dtype=np.int64) * STEP
        v = 2 + s * 0.1 + 0.4 * np.sin(2 * np.pi * (np.arange(n) / DAY + s / stations))
        level = v + rng.normal(0, 0.02, n)
        values = [level, 30 * level + rng.normal(0, 1.0, n), 15 + rng.normal(0, 0.5, n)]
        for name, x in zip(METRICS[:metrics], values):
            parts.append(pd.DataFrame({"ts": t, "station": f"st{s:03d}", "metric": name,
                                       "value": x}))
    return pd.concat(parts, ignore_index=True)


def envelopes(live: pd.DataFrame, size: int) -> list[tuple]:
    live = live.sort_values(["ts", "station", "metric"], kind="stable")
    names = sorted(live["station"].unique())
    code = {n: i for i, n in enumerate(names)}
    mnames = sorted(live["metric"].unique())
    mcode = {n: i for i, n in enumerate(mnames)}
    si = live["station"].map(code).to_numpy(np.int64)
    mi = live["metric"].map(mcode).to_numpy(np.int64)
    ts, v = live["ts"].to_numpy(np.int64), live["value"].to_numpy()
    return [(names, si[a:a + size], mnames, mi[a:a + size], ts[a:a + size], v[a:a + size])
            for a in range(0, ts.size, size)]


def look_back(det) -> int:
    """Readings per series (rows per station) a score looks back on."""
    return int(getattr(det, "lags", 0)) if det.kind in STATION_KINDS else int(det.history)


def warm_states(det, warm: pd.DataFrame) -> Scorer | StationScorer:
    if det.kind in STATION_KINDS:
        sc = StationScorer(det)
        for name, g in warm.groupby("station"):
            sc.states[name] = det.new_state(name)
            series = {m: (x["ts"].to_numpy(np.int64), x["value"].to_numpy())
                      for m, x in g.groupby("metric")}
            det.score_station(series, sc.states[name])
        return sc
    sc = Scorer(det)
    for name, g in warm.groupby("station"):
        sc.states[name] = det.new_state(name)
        det.score(g["ts"].to_numpy(np.int64), g["value"].to_numpy(), sc.states[name])
    return sc


def rate(fn, envs: list[tuple]) -> float:
    t = time.perf_counter()
    n = 0
    for env in envs:
        fn(*env)
        n += env[4].size
    return n / (time.perf_counter() - t)


def rescoring(det, warm: pd.DataFrame):
    """The rules' former station-model path: each envelope, every station's retained
    readings (the look-back rows plus the new readings) scored from a fresh state."""
    keep = max(look_back(det), 1) + 1
    tails = {name: {m: (x["ts"].to_numpy(np.int64)[-keep:], x["value"].to_numpy()[-keep:])
                    for m, x in g.groupby("metric")} for name, g in warm.groupby("station")}

    def score(stations, si, metrics, mi, ts, values):
        for k in np.unique(si).tolist():
            name = stations[k]
            old = tails[name]
            for j, m in enumerate(metrics):
                sel = (si == k) & (mi == j)
                n = keep + int(sel.sum())  # the engine keeps `keep`, plus the new ones
                t = np.concatenate((old[m][0], ts[sel]))[-n:]
                x = np.concatenate((old[m][1], values[sel]))[-n:]
                old[m] = (t, x)
            det.score_station(old, det.new_state(name))
    return score


class Models:
    """The models a pipeline's rules may name (``ModelsView`` without a registry)."""

    def __init__(self, **models) -> None:
        self.models = models

    def get(self, name: str):
        return self.models.get(name)


def anomaly_rule(kind: str | None, metrics: list[str]) -> Rule:
    """anomaly(model=kind) as a duty rule; without a kind a plain threshold on the metrics."""
    if kind is None:
        grade = " or ".join(f"last({m}) >= 1000" for m in metrics)
        clear = " and ".join(f"last({m}) < 900" for m in metrics)
    else:
        grade, clear = f"anomaly(model={kind}) >= 0.95", f"anomaly(model={kind}) < 0.5"
    return Rule.model_validate({"id": "bench", "name": "bench", "hazard": "test",
                                "grades": {"yellow": grade}, "clear": clear})


def rules_rate(det, warm: pd.DataFrame, envs: list[tuple]) -> float:
    """Readings/s of ``Pipeline.handle`` on the envelopes, after the warm readings went
    through the same pipeline (the models' streaming state and the retained windows)."""
    metrics = list(det.metrics) if det is not None and det.kind in STATION_KINDS else \
        [METRICS[0]] if det is not None else sorted(warm["metric"].unique())
    models = Models(**({det.kind: det} if det is not None else {}))
    pipe = Pipeline([anomaly_rule(det.kind if det is not None else None, metrics)],
                    models=models)
    for env in envelopes(warm, 5000):
        pipe.handle(columns(env), 0)
    t = time.perf_counter()
    n = events = 0
    for env in envs:
        events += len(pipe.handle(columns(env), 0).events)
        n += env[4].size
    rate = n / (time.perf_counter() - t)
    if det is not None:
        print(f"{det.kind}_rules_warning_events: {events}")
    return rate


def columns(env: tuple) -> Columns:
    stations, si, metrics, mi, ts, v = env
    return Columns(0, 0, stations, metrics, si.astype(np.int32), mi.astype(np.int32), ts, v)


def single_rate(det, live: pd.DataFrame, envelope: int) -> float:
    one = live[live["station"] == "st000"]
    one_ts, one_v = one["ts"].to_numpy(np.int64), one["value"].to_numpy()
    state = det.new_state("st000")
    reps = max(1, 20_000 // one_ts.size)
    t = time.perf_counter()
    n = 0
    for r in range(reps):
        shift = r * one_ts.size * STEP  # keep time moving forward across repeats
        for a in range(0, one_ts.size, envelope):
            det.score(one_ts[a:a + envelope] + shift, one_v[a:a + envelope], state)
            n += min(envelope, one_ts.size - a)
    return n / (time.perf_counter() - t)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--stations", type=int, default=50)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--envelope", type=int, default=500)
    ap.add_argument("--live-days", type=int, default=1, help="days streamed and timed")
    ap.add_argument("--reference-envelopes", type=int, default=6,
                    help="envelopes the (slow) reference path is timed on")
    ap.add_argument("--detector", action="append", choices=sorted(ALL_KINDS))
    ap.add_argument("--rules", action="store_true",
                    help="also time anomaly() in a rule through the engine (Pipeline)")
    ap.add_argument("--no-reference", action="store_true",
                    help="skip the (slow) station-by-station reference")
    args = ap.parse_args()
    kinds = args.detector or sorted(ALL_KINDS)
    print(f"stations: {args.stations}")
    print(f"envelope_readings: {args.envelope}")
    for kind in kinds:
        width = len(METRICS) if kind in STATION_KINDS else 1
        det = make_detector(kind, metrics=METRICS) if kind in STATION_KINDS else \
            make_detector(kind)
        t = time.perf_counter()
        det.fit(readings(args.stations, 2, metrics=width))
        print(f"{kind}_fit_s: {time.perf_counter() - t:.2f}")
        t = time.perf_counter()
        if hasattr(det, "prepare"):  # what the worker does where it loads a model
            det.prepare()
        print(f"{kind}_prepare_s: {time.perf_counter() - t:.2f}")
        warm_days = math.ceil((look_back(det) + 1) / DAY)  # at least a day: a warm state
        data = readings(args.stations, 2 + warm_days + args.live_days, seed=1, metrics=width)
        a = T0 + 2 * DAY * STEP
        b = a + warm_days * DAY * STEP
        warm = data[(data["ts"] >= a) & (data["ts"] < b)]
        live = data[(data["ts"] >= b) & (data["ts"] < b + args.live_days * DAY * STEP)]
        envs = envelopes(live, args.envelope)
        ref_envs = envs[:args.reference_envelopes]
        mixed, reference, single, rules, plain = [], [], [], [], []
        for _ in range(args.runs):
            mixed.append(rate(warm_states(det, warm).score_envelope, envs))
            if args.rules:
                rules.append(rules_rate(det, warm, envs))
                plain.append(rules_rate(None, warm, envs))
            if args.no_reference:
                continue
            if kind in STATION_KINDS:
                reference.append(rate(rescoring(det, warm), ref_envs))
            else:
                each = warm_states(det, warm)
                each.batch = False
                reference.append(rate(each.score_envelope, ref_envs))
                single.append(single_rate(det, live, args.envelope))
        print(f"{kind}_live_readings: {len(live)}")
        print(f"{kind}_mixed_readings_per_s: {statistics.median(mixed):,.0f}")
        if reference:
            print(f"{kind}_reference_readings_per_s: {statistics.median(reference):,.0f}")
            print(f"{kind}_ratio: {statistics.median(mixed) / statistics.median(reference):.1f}")
        if rules:
            print(f"{kind}_rules_readings_per_s: {statistics.median(rules):,.0f}")
            print(f"{kind}_rules_ratio: {statistics.median(rules) / statistics.median(mixed):.2f}")
            print(f"{kind}_rules_plain_readings_per_s: {statistics.median(plain):,.0f}")
        if single:
            print(f"{kind}_single_readings_per_s: {statistics.median(single):,.0f}")


if __name__ == "__main__":
    main()
