"""The registry kind sensor-faults against the bench composition it packs, on the fault set.

    PYTHONPATH=. .venv/bin/python bench/sensor_faults_eval.py --data ../shared/data/beijing-hourly \
        --far 0.005 --seed 0 --seed 1 --seed 2 [--stream 24] [--no-latch]

Per seed: the training half and the faults of bench/faults.py; then

* **bench**: bench/models_eval.py's ``--calibrate rows --split 0.5 --hold 1/1`` with the
  detector ``neighbours|stuck|saturation|local.size.ends|local.steps.ends`` and ``--latch
  local.steps.ends:0.0002:0.1:3`` (its functions, called as its command line does);
* **registry**: ``yujing models train --detector sensor-faults --far R`` on the same
  training readings (yujing/models/train.py), published to a scratch registry and loaded
  back signed, then ``yujing models score``'s one pass (labelled.score_readings) over the
  training and test readings, test rows kept;
* with ``--stream N``: the loaded model through the worker's scorer (GroupScorer.update,
  models/group_stream.py) fed N hours of readings at a time.

It prints row F1 and FAR over all fault rows, F1 over the detectable rows, event F1, and
how many test rows' alarm decisions differ from the bench's (0 is the claim).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

import models_eval as me  # noqa: E402
from fault_scores import detectable_f1, events  # noqa: E402
from faults import METRICS, build  # noqa: E402

from yujing.models import ModelKey  # noqa: E402
from yujing.models.group_stream import GroupScorer  # noqa: E402
from yujing.models.labelled import judge, positives, score_readings  # noqa: E402
from yujing.models.registry import ModelRegistry  # noqa: E402
from yujing.models.sensor_faults import DEFAULT_LATCH, PARTS  # noqa: E402
from yujing.models.train import train as train_model  # noqa: E402

KEY = ModelKey.from_text("bench-sensor-faults-" + "0" * 32, "bench")


def bench_rows(train: pd.DataFrame, test: pd.DataFrame, far: float, seed: int, latch: str
               ) -> pd.DataFrame:
    me.LATCHES[:] = [latch] if latch else []
    me.SCREEN["station"] = "follow"  # as the command line of round faults6 (no station model here)
    runs = me.row_calibrated("|".join(PARTS), train, test, far, seed, 0.5, [(1, 1, 0)])
    return runs[(1, 1, 0)]


def registry_model(train: pd.DataFrame, far: float, latch: str, folder: Path):
    fitted = train_model(train, None, "sensor-faults", far=far,
                         hyper={"metrics": list(METRICS), "latch": latch}).model
    reg = ModelRegistry(folder, KEY)
    reg.publish("sensor-faults", fitted)
    return reg.load_latest("sensor-faults")


def streamed(model, frame: pd.DataFrame, hours: int, cut: int) -> pd.DataFrame:
    """Rows at or after ``cut`` as the worker scores them: GroupScorer.update on the
    readings of ``hours`` hours at a time (each call also passes the hour before)."""
    scorer, got = GroupScorer(), {}
    ts = np.sort(frame["ts"].unique())
    by_ts = frame.sort_values(["ts", "station", "metric"], kind="stable")
    t_all = by_ts["ts"].to_numpy(np.int64)
    for a in range(0, ts.size, hours):
        lo, hi = ts[max(0, a - 1)], ts[min(ts.size, a + hours) - 1]
        part = by_ts.iloc[np.searchsorted(t_all, lo):np.searchsorted(t_all, hi, side="right")]
        series = {s: {m: (g["ts"].to_numpy(np.int64), g["value"].to_numpy(np.float64))
                      for m, g in sf.groupby("metric")} for s, sf in part.groupby("station")}
        for station, (rt, sc) in scorer.update(model, series).items():
            got.update(zip(zip([station] * rt.size, rt.tolist()), sc.tolist()))
    rows = pd.DataFrame([(s, t, v) for (s, t), v in got.items()], columns=["station", "ts", "score"])
    rows = rows[rows["ts"] >= cut].sort_values(["station", "ts"], kind="stable", ignore_index=True)
    rows["metric"] = "+".join(METRICS)
    rows["alarm"] = model.alarm(rows["score"].to_numpy())
    return rows


def line(name: str, rows: pd.DataFrame, labels: pd.DataFrame, detectable: pd.Series,
         bench: pd.DataFrame, seconds: float) -> str:
    win = labels[["station", "metric", "start", "end"]]
    j = judge(rows, win)
    dets = detectable_f1(rows, positives(rows, win), detectable)
    both = bench.merge(rows, on=["station", "ts"], how="outer", suffixes=("_b", "_r"))
    differ = int((both["alarm_b"].fillna(-1) != both["alarm_r"].fillna(-1)).sum())
    return (f"| {name} | {j.f1:.3f} | {j.far:.4f} | {dets[0]:.3f} | {events(rows, labels)['f1']:.3f} "
            f"| {len(rows)} | {int(rows['alarm'].sum())} | {differ} | {seconds:.0f} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True, help="the beijing-hourly folder")
    ap.add_argument("--far", type=float, default=0.005)
    ap.add_argument("--seed", type=int, action="append")
    ap.add_argument("--stream", type=int, default=0, help="also the worker's scorer, N hours a call")
    ap.add_argument("--no-latch", action="store_true", help="the composition without its latch")
    a = ap.parse_args()
    latch = "" if a.no_latch else DEFAULT_LATCH
    print("| seed · path | row F1 | FAR | F1 detectable | event F1 | rows | alarms | "
          "decisions unlike the bench's | seconds |")
    for seed in a.seed or [0]:
        train, test, labels = build(a.data, per_kind=5, seed=seed)
        detectable = test["visible"].groupby([test["station"], test["ts"]]).any()
        test = test.drop(columns=["offset_u", "visible"])
        cut = int(test["ts"].min())
        t = time.perf_counter()
        bench = bench_rows(train, test, a.far, seed, latch)
        print(line(f"{seed} · bench", bench, labels, detectable, bench, time.perf_counter() - t),
              flush=True)
        with tempfile.TemporaryDirectory() as tmp:
            t = time.perf_counter()
            model = registry_model(train, a.far, latch, Path(tmp))
            full = pd.concat([train, test], ignore_index=True)
            scored = score_readings(model, full)
            rows = scored[scored["ts"] >= cut].sort_values(["station", "ts"], kind="stable",
                                                           ignore_index=True)
            print(line(f"{seed} · registry", rows, labels, detectable, bench,
                       time.perf_counter() - t), flush=True)
            if a.stream:
                t = time.perf_counter()
                rows = streamed(model, full, a.stream, cut)
                print(line(f"{seed} · worker, {a.stream} h a call", rows, labels, detectable,
                           bench, time.perf_counter() - t), flush=True)


if __name__ == "__main__":
    main()
