"""A labelled multivariate fault set built from real sensor series (issue 16).

Each Beijing site of ``beijing-hourly`` (UCI dataset 501) becomes a four-sensor "station":
TEMP (°C), PRES (hPa), DEWP (°C), WSPM (m/s), hourly, 2013-03 to 2017-02; temperature and
dew point are strongly correlated, pressure moves against temperature. The first part of
the range (``--train-share``, default half) is written clean for training; into the rest
this injects six kinds of sensor fault, each on one sensor of one station for a random
duration, never overlapping:

| fault | what the sensor does |
|---|---|
| stuck | repeats its value at the fault's start |
| drift | adds a ramp growing to ``3 u`` at the end |
| spike | 1 to 3 readings ``± 3 u`` off |
| step | an offset of ``± 2 u`` |
| noisy | adds Gaussian noise of ``1 u`` |
| decouple | DEWP follows its own values of 14 days before, shifted to its level at the |
|          | start: plausible alone, no longer tied to TEMP |

``u`` is the sensor's 99th percentile of absolute hourly steps in the data (TEMP about
4.6 °C, PRES 5 hPa, DEWP 5.2 °C, WSPM 2.6 m/s at Aotizhongxin), times ``--scale``
(default 1): a fault is as large as a rare but real change of the weather, so the
faults cannot be found by size alone (half of them by size at all: stuck, decouple and
the start of a drift are inside the normal range).

Labels are windows ``start,end,station,metric,fault`` (epoch ms, inclusive) written beside
the readings. Seeded: the same seed gives the same files.

**Detectable rows** (column ``visible`` of the test frame; a rule of physics fixed before
any F1 was read, not chosen on results). A faulty reading counts as detectable when

- it differs from the true value by at least ``VISIBLE_U`` (1 u): a change as large as
  a rare hourly step of the weather (every spike and step row; a drift from a third of
  its length on; a decouple or stuck value only where it has left the truth by 1 u);
- stuck, also: once the run of identical readings ending at it (readings equal to the
  stuck value just before the fault included) is longer than the longest run of identical
  readings of that station's sensor in the clean training part (``max_runs``; without it,
  only the size rule): no clean reading of that sensor ever repeated so long;
- noisy: every row of the window (the sensor's steps, not its level, carry the fault:
  Gaussian noise of 1 u makes every step of the window about ``√2 u`` wide).

A station row is detectable when one of its faulty readings is. Rows of a fault that are
not detectable are neither positive nor negative in the "detectable rows" figures of
bench/models_eval.py; the figures over all fault rows are always reported beside them.

    .venv/bin/python bench/faults.py --data ../shared/data/beijing-hourly --out /tmp/faults
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

METRICS = ("TEMP", "PRES", "DEWP", "WSPM")
HOUR_MS = 3_600_000
KINDS = ("stuck", "drift", "spike", "step", "noisy", "decouple")
DURATION_H = {"stuck": (12, 48), "drift": (24, 72), "spike": (1, 3), "step": (12, 48),
              "noisy": (12, 48), "decouple": (24, 72)}
GAP_H = 72  # hours of clean readings at least between two faults of a station
VISIBLE_U = 1.0  # a faulty reading this far (in u) from the truth is detectable by size


def load_beijing(folder: Path, sites: int = 4) -> pd.DataFrame:
    """Readings (ts epoch ms, station, metric, value) of the first ``sites`` sites; missing
    values are left out (no reading), as a gateway would not send them."""
    frames = []
    for path in sorted(Path(folder).glob("PRSA_Data_*.csv"))[:sites]:
        raw = pd.read_csv(path)
        local = pd.to_datetime(raw[["year", "month", "day", "hour"]])
        ts = (local - pd.Timedelta(hours=8)).astype("datetime64[ms]").astype("int64").to_numpy()
        for m in METRICS:
            frames.append(pd.DataFrame({"ts": ts, "station": str(raw["station"].iloc[0]),
                                        "metric": m, "value": raw[m].to_numpy(np.float64)}))
    if not frames:
        raise SystemExit(f"{folder}: no PRSA_Data_*.csv files (beijing-hourly)")
    df = pd.concat(frames, ignore_index=True)
    return df[np.isfinite(df["value"].to_numpy())].reset_index(drop=True)


def fault_unit(v: np.ndarray) -> float:
    """The 99th percentile of the absolute steps between readings."""
    d = np.abs(np.diff(v))
    d = d[np.isfinite(d)]
    return float(max(np.percentile(d, 99), 1e-3)) if d.size else 1.0


def max_runs(train: pd.DataFrame) -> dict[tuple[str, str], int]:
    """(station, metric) → the longest run of identical consecutive readings in ``train``
    (the stuck rule of "Detectable rows")."""
    out = {}
    for (station, metric), g in train.groupby(["station", "metric"], sort=True):
        v = g.sort_values("ts")["value"].to_numpy(np.float64)
        out[(str(station), str(metric))] = int(_runs(v).max()) if v.size else 0
    return out


def _runs(v: np.ndarray) -> np.ndarray:
    """Per reading, the number of consecutive readings equal to it ending there."""
    if v.size == 0:
        return np.zeros(0, np.int64)
    changed = np.concatenate(([True], v[1:] != v[:-1]))
    i = np.arange(v.size)
    return i - np.maximum.accumulate(np.where(changed, i, 0)) + 1


def inject(test: pd.DataFrame, per_kind: int, seed: int, scale: float = 1.0,
           runs: dict[tuple[str, str], int] | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Faults injected into ``test`` (per station: ``per_kind`` of each kind) and their labels.
    ``runs``: :func:`max_runs` of the training part, for the stuck rule of ``visible``."""
    rng = np.random.default_rng(seed)
    out = test.copy()
    out["offset_u"] = 0.0  # how far the fault moved the reading, in units u (for the size tables)
    out["visible"] = False  # detectable by the rule of the module's docstring
    labels = []
    for station, g in test.groupby("station", sort=True):
        ts_all = np.unique(g["ts"].to_numpy())
        plan = [k for k in KINDS for _ in range(per_kind)]
        rng.shuffle(plan)
        slot = len(ts_all) // max(len(plan), 1)
        for i, kind in enumerate(plan):
            lo, hi = DURATION_H[kind]
            dur = int(rng.integers(lo, hi + 1))
            first = i * slot + int(rng.integers(GAP_H // 2, max(slot - dur - GAP_H // 2, GAP_H // 2 + 1)))
            start, end = int(ts_all[first]), int(ts_all[first]) + (dur - 1) * HOUR_MS
            metric = "DEWP" if kind == "decouple" else str(rng.choice(METRICS))
            if _apply(out, station, metric, kind, start, end, rng, scale):
                labels.append((start, end, station, metric, kind))
                _mark_visible(out, station, metric, kind, start, end, (runs or {}).get((station, metric)))
    return out, pd.DataFrame(labels, columns=["start", "end", "station", "metric", "fault"])


def _apply(df: pd.DataFrame, station: str, metric: str, kind: str, start: int, end: int,
           rng: np.random.Generator, scale: float) -> bool:
    series = (df["station"] == station) & (df["metric"] == metric)
    sel = series & (df["ts"] >= start) & (df["ts"] <= end)
    idx = df.index[sel]
    if idx.size == 0:
        return False
    v = df.loc[idx, "value"].to_numpy(np.float64)
    u = scale * fault_unit(df.loc[series, "value"].to_numpy())
    sign = float(rng.choice([-1.0, 1.0]))
    if kind == "stuck":
        v = np.full(v.size, v[0])
    elif kind == "drift":
        v = v + sign * 3 * u * np.linspace(1 / v.size, 1, v.size)
    elif kind == "spike":
        v = v + sign * 3 * u
    elif kind == "step":
        v = v + sign * 2 * u
    elif kind == "noisy":
        v = v + rng.normal(0, u, v.size)
    elif kind == "decouple":
        lag = 14 * 24 * HOUR_MS
        past = df[series & (df["ts"] >= start - lag) & (df["ts"] <= end - lag)]
        by_ts = dict(zip(past["ts"].to_numpy() + lag, past["value"].to_numpy()))
        ts = df.loc[idx, "ts"].to_numpy()
        old = np.array([by_ts.get(int(t), np.nan) for t in ts])
        if not np.isfinite(old).any():
            return False
        old = np.where(np.isfinite(old), old, np.nanmean(old))
        v = old - old[0] + v[0]
    df.loc[idx, "offset_u"] = (v - df.loc[idx, "value"].to_numpy(np.float64)) / (u / scale)
    df.loc[idx, "value"] = v
    return True


def _mark_visible(df: pd.DataFrame, station: str, metric: str, kind: str, start: int, end: int,
                  longest: int | None) -> None:
    """Set ``visible`` on the fault's readings by the rule of "Detectable rows"."""
    series = df.index[(df["station"] == station) & (df["metric"] == metric)]
    ts = df.loc[series, "ts"].to_numpy(np.int64)
    order = np.argsort(ts, kind="stable")
    idx, ts = series[order], ts[order]
    inside = (ts >= start) & (ts <= end)
    seen = np.abs(df.loc[idx, "offset_u"].to_numpy(np.float64)) >= VISIBLE_U
    if kind == "noisy":
        seen = np.ones(idx.size, dtype=bool)
    elif kind == "stuck" and longest is not None:
        # runs over the series up to the fault's end: identical readings just before count
        upto = ts <= end
        run = np.zeros(idx.size, np.int64)
        run[upto] = _runs(df.loc[idx[upto], "value"].to_numpy(np.float64))
        seen |= run > longest
    df.loc[idx[inside & seen], "visible"] = True


def neighbour_spread(df: pd.DataFrame) -> dict[str, tuple[float, float]]:
    """metric → (u, 99th percentile of |site − mean of the other sites − its median|) for the
    first site: how closely a sensor follows the same sensor at the neighbouring sites, the
    reference a station model lacks (docs/models.md)."""
    wide = df.pivot_table(index="ts", columns=["metric", "station"], values="value")
    out = {}
    for m in METRICS:
        sites = wide[m]
        first = sites.columns[0]
        dev = (sites[first] - sites.drop(columns=first).mean(axis=1)).dropna()
        own = df[(df["station"] == first) & (df["metric"] == m)].sort_values("ts")["value"]
        out[m] = (fault_unit(own.to_numpy()), float(np.percentile(np.abs(dev - dev.median()), 99)))
    return out


def build(folder: Path, train_share: float = 0.5, per_kind: int = 5, seed: int = 0, sites: int = 4,
          scale: float = 1.0) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(clean training readings, test readings with faults, labels). The test frame has two
    columns besides the readings: ``offset_u``, the injected change in units u (0 outside
    faults), and ``visible``, detectable by the rule of "Detectable rows"."""
    df = load_beijing(folder, sites)
    t0, t1 = int(df["ts"].min()), int(df["ts"].max())
    cut = t0 + int(train_share * (t1 - t0))
    train = df[df["ts"] < cut].reset_index(drop=True)
    test, labels = inject(df[df["ts"] >= cut].reset_index(drop=True), per_kind, seed, scale,
                          runs=max_runs(train))
    return train, test, labels


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True, help="the beijing-hourly folder")
    ap.add_argument("--out", type=Path, required=True, help="folder for train.csv, test.csv, "
                                                            "labels.csv")
    ap.add_argument("--train-share", type=float, default=0.5)
    ap.add_argument("--per-kind", type=int, default=5, help="faults of each kind per station")
    ap.add_argument("--sites", type=int, default=4)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--scale", type=float, default=1.0, help="fault size in units u")
    a = ap.parse_args()
    train, test, labels = build(a.data, a.train_share, a.per_kind, a.seed, a.sites, a.scale)
    a.out.mkdir(parents=True, exist_ok=True)
    train.to_csv(a.out / "train.csv", index=False)
    test.drop(columns=["offset_u", "visible"]).to_csv(a.out / "test.csv", index=False)
    labels.to_csv(a.out / "labels.csv", index=False)
    print(f"{len(train)} training readings, {len(test)} test readings, {len(labels)} faults "
          f"({', '.join(f'{k} {n}' for k, n in labels['fault'].value_counts().items())}) → {a.out}")


if __name__ == "__main__":
    main()
