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

from yujing.envelope import Columns
from yujing.models.group_stream import GroupScorer
from yujing.models.train import train
from yujing.pipeline import Pipeline
from yujing.rules.schema import Rule
from yujing.stations import Registry, Station

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


def pipeline_rate(models: dict, groups: int, warm: list[Columns], live: list[Columns]
                  ) -> tuple[float, int]:
    """Readings/s of ``Pipeline.handle``, one rule per group (``models`` empty: the plain
    rules), the registry naming each station's group."""
    rules = [rule(f"g{k}" if models else None, k) for k in range(groups)]
    stations = sorted({s for env in live for s in env.stations})
    registry = Registry([Station(id=s, name=s, kind="weather", group=s.split("s")[0])
                         for s in stations])
    pipe = Pipeline(rules, registry, models=Models(models))
    for env in warm:
        pipe.handle(env, 0)
    n = events = 0
    t = time.perf_counter()
    for env in live:
        events += len(pipe.handle(env, 0).events)
        n += env.ts.size
    return n / (time.perf_counter() - t), events


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


if __name__ == "__main__":
    main()
