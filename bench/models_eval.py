"""Detectors on the injected-fault set (bench/faults.py): F1, false- and missed-alarm rates, AUC.

Every detector is trained on the clean first part only, with its alarm threshold calibrated
on the last 30 % of that part for the target false-alarm rate (``--far``; alarm.py): nothing
is tuned on the labels. It then scores the faulty rest in streaming order (states warmed on
the training part). Judged per station row (one row per hour and site):

- per-metric detectors (baseline, spike, iforest, ensemble with plain scores): one model per
  sensor, Šidák-corrected for the four sensors, combined by "any sensor" (the row alarms
  when one sensor does; the row's score is the largest sensor score, for the AUC);
- station models: pca (T² + Q) and mcd (robust Mahalanobis over lagged rows).

The table also gives, per fault kind, the share of faults with at least one alarm.

    .venv/bin/python bench/models_eval.py --data ../shared/data/beijing-hourly [--far 0.01]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/faults.py beside this file

from faults import METRICS, build  # noqa: E402

from yujing.models import STATION_KINDS  # noqa: E402
from yujing.models.alarm import fit_calibrated  # noqa: E402
from yujing.models.labelled import judge, positives  # noqa: E402

ROW_METRIC = "+".join(METRICS)
HYPER: dict[str, dict] = {"ensemble": {"record": 0}, "iforest": {}}


def station_rows(kind: str, train: pd.DataFrame, test: pd.DataFrame, far: float, seed: int
                 ) -> pd.DataFrame:
    """ts, station, metric (a+b+c+d), score, alarm for every test row of every station."""
    full = pd.concat([train, test], ignore_index=True)
    cut = int(test["ts"].min())
    if kind in STATION_KINDS:
        det = fit_calibrated(train, kind, far, seed=seed,  # every metric: the four sensors
                             hyper=HYPER.get(kind))
        rows = []
        for station, (ts, s) in det.score_frame(full).items():
            keep = ts >= cut
            rows.append(pd.DataFrame({"ts": ts[keep], "station": station, "score": s[keep],
                                      "alarm": det.alarm(s[keep])}))
        out = pd.concat(rows, ignore_index=True)
    else:
        per = []
        for m in METRICS:
            det = fit_calibrated(train, kind, far, m, series=len(METRICS), seed=seed,
                                 hyper=HYPER.get(kind))
            sub = full[full["metric"] == m]
            for station, g in sub.groupby("station", sort=True):
                g = g.sort_values("ts")
                ts = g["ts"].to_numpy(np.int64)
                s = det.score(ts, g["value"].to_numpy(), det.new_state(str(station)))
                keep = ts >= cut
                per.append(pd.DataFrame({"ts": ts[keep], "station": station, "score": s[keep],
                                         "alarm": det.alarm(s[keep])}))
        out = (pd.concat(per, ignore_index=True).groupby(["station", "ts"], as_index=False)
               .agg(score=("score", "max"), alarm=("alarm", "any")))
    out["metric"] = ROW_METRIC
    return out.sort_values(["station", "ts"], kind="stable").reset_index(drop=True)


def found_per_fault(rows: pd.DataFrame, labels: pd.DataFrame) -> dict[str, float]:
    """Per fault kind: the share of faults with at least one alarm inside their window."""
    out = {}
    for kind, g in labels.groupby("fault", sort=True):
        hit = []
        for w in g.itertuples(index=False):
            sel = (rows["station"] == w.station) & (rows["ts"] >= w.start) & (rows["ts"] <= w.end)
            hit.append(bool(rows.loc[sel, "alarm"].any()))
        out[kind] = float(np.mean(hit))
    return out


def events(rows: pd.DataFrame, labels: pd.DataFrame) -> tuple[float, float, float, int]:
    """Event level, as a duty officer counts: a fault is found when any of its rows alarms;
    a false alarm is a run of consecutive alarmed rows outside every fault.
    (precision, recall, F1, false alarm runs)."""
    pos = positives(rows, labels[["station", "metric", "start", "end"]])
    alarm = rows["alarm"].to_numpy(bool)
    outside = alarm & ~pos
    same = (rows["station"].to_numpy()[1:] == rows["station"].to_numpy()[:-1])
    runs = int(outside[0]) + int((outside[1:] & ~(outside[:-1] & same)).sum()) if len(rows) else 0
    found = sum(found_per_fault(rows, labels).get(k, 0.0) * n
                for k, n in labels["fault"].value_counts().items())
    precision = found / (found + runs) if found + runs else float("nan")
    recall = found / len(labels) if len(labels) else float("nan")
    f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    return precision, recall, f1, runs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True, help="the beijing-hourly folder")
    ap.add_argument("--far", type=float, action="append", help="target false-alarm rate "
                    "(repeatable; default 0.01)")
    ap.add_argument("--detector", action="append", help="default: baseline spike iforest "
                    "ensemble pca mcd")
    ap.add_argument("--per-kind", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--scale", type=float, default=1.0, help="fault size (bench/faults.py)")
    ap.add_argument("--mcd-support", type=float, help="MinCovDet support_fraction (default: "
                    "scikit-learn's, about half the rows)")
    a = ap.parse_args()
    if a.mcd_support:
        HYPER["mcd"] = {"support": a.mcd_support}
    train, test, labels = build(a.data, per_kind=a.per_kind, seed=a.seed, scale=a.scale)
    print(f"train {len(train)} readings, test {len(test)} readings, {len(labels)} faults, "
          f"seed {a.seed}, fault scale {a.scale:g}")
    kinds = a.detector or ["baseline", "spike", "iforest", "ensemble", "pca", "mcd"]
    print("| detector | target FAR | F1 | precision | recall | FAR | missed | AUC | event F1 | "
          "event precision | false alarm runs | "
          + " | ".join(sorted(labels["fault"].unique())) + " | seconds |")
    for far in a.far or [0.01]:
        for kind in kinds:
            t = time.perf_counter()
            rows = station_rows(kind, train, test, far, a.seed)
            j = judge(rows, labels[["station", "metric", "start", "end"]])
            found = found_per_fault(rows, labels)
            ep, _, ef1, runs = events(rows, labels)
            name = kind if kind in STATION_KINDS else f"{kind} (any sensor)"
            print(f"| {name} | {far:g} | {j.f1:.3f} | {j.precision:.3f} | {j.recall:.3f} | "
                  f"{j.far:.4f} | {j.missed:.3f} | {j.auc:.3f} | {ef1:.3f} | {ep:.3f} | {runs} | "
                  + " | ".join(f"{found[k]:.2f}" for k in sorted(found))
                  + f" | {time.perf_counter() - t:.0f} |", flush=True)


if __name__ == "__main__":
    main()
