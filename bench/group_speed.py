"""Readings/s of a group model (neighbours) in the worker, on envelopes of 500 readings.

    PYTHONPATH=. .venv/bin/python bench/group_speed.py                 # 5 groups of 10, 3 runs
    PYTHONPATH=. .venv/bin/python bench/group_speed.py --groups 10 --size 5 --runs 5
    PYTHONPATH=. .venv/bin/python bench/group_speed.py --kind neighbours --kind sensor-faults

Synthetic groups of stations that share the weather (hourly TEMP, DEWP, WSPM: a daily
cycle and a slow walk per group, a per-station offset and gain, sensor noise), one
neighbours model per group trained on 120 days (``--far 0.01``). The live readings go
out in time order, envelopes of ``--envelope`` readings from all groups, as a worker gets
them from the groups' partitions. Timed, each after a warm-up of 30 days through the
same path:

* ``group_rows_readings_per_s``: ``GroupScorer.update`` alone (the detector's streaming
  path), once per group and envelope, on the retained readings the engine would hand it;
* ``group_rules_readings_per_s``: the worker's whole path, ``Pipeline.handle`` with one
  rule per group (``select: {group: [g<k>]}``, the registry naming each station's
  group), ``anomaly(model=g<k>) > 0.5``;
* ``plain_rules_readings_per_s``: the baseline measured in the same run, the same
  pipeline and registry with a threshold rule per group on the same metrics and no
  model; and
  ``group_rules_ratio``: the group rules' rate ÷ the baseline's.

With ``--kind`` (repeatable; default neighbours) each group model kind is trained and
timed in the same run, its lines named by the kind (``sensor-faults``:
yujing/models/sensor_faults.py); the baseline is measured once per run.

With ``--offered R`` (repeatable) the worker's coalescing under an offered load is
simulated on the real pipeline: the live envelopes arrive at R readings/s on a virtual
clock, each engine pass takes every envelope that has arrived (at most
``COALESCE_MAX``, as the readings agent does, streams/app.py) and advances the clock by
its measured time. Printed per kind and rate: the passes, readings per pass (median and
largest), the lag from an envelope's arrival to the end of its pass (median, largest,
the last envelope's) and the engine's busy share of the offered span; a worker keeps up
when the last envelope's lag is not larger than the median's order (a lag that grows
through the run is a backlog). Use ``--live-days 60`` or more so the run spans seconds.

Target (issue 16): 100,000 readings/s or more for every detector.
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

from yujing.envelope import Columns, concat
from yujing.models.group_stream import GroupScorer
from yujing.models.train import train
from yujing.pipeline import Pipeline
from yujing.rules.schema import Rule
from yujing.stations import Registry, Station
from yujing.streams.app import COALESCE_MAX

HOUR = 3_600_000
T0 = 1_735_660_800_000
METRICS = ("DEWP", "TEMP", "WSPM")


def group_readings(group: int, size: int, hours: int, seed: int) -> pd.DataFrame:
    """ts, station, metric, value of one group: shared weather, per-station gain and noise."""
    rng = np.random.default_rng(seed * 1000 + group)
    t = np.arange(hours)
    weather = 8 * np.sin(2 * np.pi * t / 24) + np.cumsum(rng.normal(0, 0.3, hours))
    # the dew point stays below the air temperature (saturation.py: above it is a fault);
    # a free walk of the two drifted across in one group, and sensor-faults paged for it
    damp = weather - 4 - np.abs(2 + np.cumsum(rng.normal(0, 0.2, hours)))
    wind = 3 + np.abs(np.cumsum(rng.normal(0, 0.2, hours))) % 6
    parts = []
    for i in range(size):
        gain = 0.9 + 0.02 * i
        for m, v in (("TEMP", i * 0.3 + gain * weather + rng.normal(0, 0.5, hours)),
                     ("DEWP", gain * damp + rng.normal(0, 0.6, hours)),
                     ("WSPM", wind * gain + rng.normal(0, 0.3, hours))):
            parts.append(pd.DataFrame({"ts": T0 + t * HOUR, "station": f"g{group}s{i:02d}",
                                       "metric": m, "value": v}))
    return pd.concat(parts, ignore_index=True)


def envelopes(frame: pd.DataFrame, size: int) -> list[Columns]:
    frame = frame.sort_values(["ts", "station", "metric"], kind="stable", ignore_index=True)
    out = []
    for a in range(0, len(frame), size):
        part = frame.iloc[a:a + size]
        stations, si = np.unique(part["station"].to_numpy(), return_inverse=True)
        metrics, mi = np.unique(part["metric"].to_numpy(), return_inverse=True)
        out.append(Columns(0, 0, stations.tolist(), metrics.tolist(), si.astype(np.int32),
                           mi.astype(np.int32), part["ts"].to_numpy(np.int64),
                           part["value"].to_numpy(np.float64)))
    return out


class Models:
    def __init__(self, models: dict) -> None:
        self.models = models

    def get(self, name: str):
        return self.models.get(name)


def rule(name: str | None, k: int) -> Rule:
    """Group k's rule (it selects the group's stations): anomaly(model=name), or without a
    name a plain threshold on the same metrics (the baseline)."""
    if name is None:
        grade = " or ".join(f"last({m}) >= 1000" for m in METRICS)
        clear = " and ".join(f"last({m}) < 900" for m in METRICS)
    else:
        grade, clear = f"anomaly(model={name}) > 0.5", f"anomaly(model={name}) <= 0.5"
    return Rule.model_validate({"id": f"r{k}", "name": f"r{k}", "hazard": "test",
                                "select": {"group": [f"g{k}"]},
                                "grades": {"blue": grade}, "clear": clear})


def warmed(models: dict, groups: int, warm: list[Columns], live: list[Columns]) -> Pipeline:
    """The pipeline with one rule per group (``models`` empty: the plain rules), the
    registry naming each station's group, after the warm envelopes."""
    rules = [rule(f"g{k}" if models else None, k) for k in range(groups)]
    stations = sorted({s for env in live for s in env.stations})
    registry = Registry([Station(id=s, name=s, kind="weather", group=s.split("s")[0])
                         for s in stations])
    pipe = Pipeline(rules, registry, models=Models(models))
    for env in warm:
        pipe.handle(env, 0)
    return pipe


def pipeline_rate(models: dict, groups: int, warm: list[Columns], live: list[Columns]
                  ) -> tuple[float, int]:
    """Readings/s of ``Pipeline.handle`` on each envelope (see :func:`warmed`)."""
    pipe = warmed(models, groups, warm, live)
    n = events = 0
    t = time.perf_counter()
    for env in live:
        events += len(pipe.handle(env, 0).events)
        n += env.ts.size
    return n / (time.perf_counter() - t), events


def offered_load(models: dict, groups: int, warm: list[Columns], live: list[Columns],
                 rate: float) -> dict[str, float]:
    """The readings agent's coalescing under ``rate`` readings/s offered (module doc):
    the live envelopes arrive on a virtual clock; a pass takes every arrived envelope, at
    most COALESCE_MAX, and costs its measured time."""
    pipe = warmed(models, groups, warm, live)
    sizes = np.array([env.ts.size for env in live])
    arrive = np.cumsum(sizes) / rate  # an envelope is there once its last reading is
    clock, busy, i = 0.0, 0.0, 0
    per_pass, lags = [], []
    while i < len(live):
        clock = max(clock, float(arrive[i]))
        j = i + 1
        while j < len(live) and j - i < COALESCE_MAX and arrive[j] <= clock:
            j += 1
        cols = concat(live[i:j])
        t = time.perf_counter()
        pipe.handle(cols, 0)
        spent = time.perf_counter() - t
        clock += spent
        busy += spent
        per_pass.append(int(sizes[i:j].sum()))
        lags.extend(clock - arrive[i:j])
        i = j
    return {"passes": len(per_pass), "per_pass": float(np.median(per_pass)),
            "largest_pass": float(max(per_pass)), "lag_median": float(np.median(lags)),
            "lag_max": float(max(lags)), "lag_last": float(lags[-1]),
            "busy": busy / (clock - float(arrive[0]) + 1e-12)}


def rows_rate(models: dict, warm: pd.DataFrame, live: pd.DataFrame, envelope: int) -> float:
    """GroupScorer.update per group and envelope, on each station's newest readings: the
    envelope's and 4 before them (the engine keeps ``history`` + 1 per series besides the
    pass's; an envelope of more than one row per series hands them all on)."""
    scorer = GroupScorer()
    series = live["station"].nunique() * len(METRICS)
    keep = 4 + -(-envelope // series)
    both = pd.concat([warm, live], ignore_index=True).sort_values(
        ["ts", "station", "metric"], kind="stable", ignore_index=True)
    start, back = len(warm), 4 * series
    n, spent = 0, 0.0
    for a in range(0, len(both), envelope):
        upto = both.iloc[max(0, a - back):a + envelope]
        series_of = {}
        for (station, metric), g in upto.groupby(["station", "metric"], sort=False):
            series_of.setdefault(station, {})[metric] = (g["ts"].to_numpy(np.int64)[-keep:],
                                                         g["value"].to_numpy(np.float64)[-keep:])
        t = time.perf_counter()
        for model in models.values():
            scorer.update(model, {s: series_of[s] for s in model.stations if s in series_of})
        if a >= start:
            spent += time.perf_counter() - t
            n += min(envelope, len(both) - a)
    return n / spent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--groups", type=int, default=5)
    ap.add_argument("--size", type=int, default=10, help="stations per group")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--envelope", type=int, default=500)
    ap.add_argument("--live-days", type=int, default=10)
    ap.add_argument("--kind", action="append", help="group model kind (repeatable; default "
                    "neighbours)")
    ap.add_argument("--offered", type=float, action="append", default=[],
                    help="readings/s offered to the simulated agent (repeatable; module doc)")
    args = ap.parse_args()
    kinds = args.kind or ["neighbours"]
    train_h, warm_h, live_h = 120 * 24, 30 * 24, args.live_days * 24
    data = [group_readings(g, args.size, train_h + warm_h + live_h, 0) for g in range(args.groups)]
    by_kind: dict[str, dict] = {kind: {} for kind in kinds}
    for g, frame in enumerate(data):
        hist = frame[frame["ts"] < T0 + train_h * HOUR]
        for kind in kinds:
            by_kind[kind][f"g{g}"] = train(hist, None, kind, far=0.01).model
    both = pd.concat(data, ignore_index=True)
    warm = both[both["ts"].between(T0 + train_h * HOUR, T0 + (train_h + warm_h) * HOUR - 1)]
    live = both[both["ts"] >= T0 + (train_h + warm_h) * HOUR]
    warm_env, live_env = envelopes(warm, args.envelope), envelopes(live, args.envelope)
    print(f"stations: {args.groups * args.size} in {args.groups} groups, metrics: "
          f"{len(METRICS)}, live readings: {len(live)}, envelopes: {len(live_env)}")
    rows = {k: [] for k in kinds}
    group = {k: [] for k in kinds}
    events = dict.fromkeys(kinds, 0)
    plain = []
    for _ in range(args.runs):
        for kind, models in by_kind.items():
            rows[kind].append(rows_rate(models, warm, live, args.envelope))
            g, events[kind] = pipeline_rate(models, args.groups, warm_env, live_env)
            group[kind].append(g)
        plain.append(pipeline_rate({}, args.groups, warm_env, live_env)[0])
    med = statistics.median

    def runs(xs: list[float]) -> str:
        return f"{med(xs):,.0f} (runs {', '.join(f'{x:,.0f}' for x in xs)})"

    for kind in kinds:
        tag = "" if kinds == ["neighbours"] else f" [{kind}]"
        print(f"group_rows_readings_per_s{tag}: {runs(rows[kind])}")
        print(f"group_rules_readings_per_s{tag}: {runs(group[kind])}")
        print(f"group_rules_ratio{tag}: {med(group[kind]) / med(plain):.3f}")
        print(f"group_rules_warning_events (last run){tag}: {events[kind]}")
    print(f"plain_rules_readings_per_s: {runs(plain)}")
    for kind, models in by_kind.items():
        for rate in args.offered:
            got = offered_load(models, args.groups, warm_env, live_env, rate)
            print(f"offered [{kind}] {rate:,.0f} readings/s: {got['passes']} passes, "
                  f"readings per pass {got['per_pass']:,.0f} (largest {got['largest_pass']:,.0f}); "
                  f"lag median {got['lag_median'] * 1e3:,.0f} ms, largest "
                  f"{got['lag_max'] * 1e3:,.0f} ms, last envelope {got['lag_last'] * 1e3:,.0f} ms; "
                  f"engine busy {got['busy']:.0%} of the span")


if __name__ == "__main__":
    main()
