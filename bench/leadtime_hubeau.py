"""Lead time gained by eta() over the plain threshold rule, on real floods (Hub'Eau gauges).

    .venv/bin/python bench/leadtime_hubeau.py --data DIR   # DIR: the hubeau-water-level folder

The data: 10-minute river heights (mm) of 12 French gauges, 2020-01-07 to 2020-02-06, with
the flood of 22–25 January 2020 (the shared data folder's README says where it is from).

Thresholds: these gauges have no warning level we can cite, so each gets an empirical one,
the height it exceeded 2 % of the month (its 98th percentile): a frequency-based alert level,
crossed by the flood at every gauge. (The flood is inside that month, so the level is set
knowing the flood happened; it says nothing of when.)

Rules, run through the worker's own Pipeline and ``backtest.leadtime``:

* plain:      ``last(h) >= station.warning_level_m`` fires at the first reading over the level,
  so its lead time is 0 by construction;
* projection: ``eta(h, station.warning_level_m, W) <= H and count(h, W) >= 4``.

Its lead time is the minutes from the projection warning to the first reading over the level
(what the plain rule would have raised on); a false alarm is a projection warning with no
crossing within H + 30 min. W and H are tuned on the first six gauges (by code): the fewest
false alarms per station-month, then the longest median lead; the figures printed for the
other six are the evaluation.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from yujing.backtest import leadtime
from yujing.backtest.replay import replay
from yujing.pipeline import Pipeline
from yujing.readings_csv import Readings
from yujing.rules.schema import Rule
from yujing.stations import Registry, Station

WINDOWS = ("1h", "2h", "3h")
LIMITS = ("1h", "2h", "3h")


def load(folder: Path) -> dict[str, pd.Series]:
    """Gauge → heights in metres indexed by UTC epoch ms, sorted, duplicates dropped."""
    out = {}
    for path in sorted(folder.glob("*_10min.csv")):
        df = pd.read_csv(path, sep=";", usecols=["date_obs", "resultat_obs"])
        when = pd.to_datetime(df["date_obs"], utc=True).dt.tz_localize(None)
        ts = when.to_numpy().astype("datetime64[ms]").astype(np.int64)
        s = pd.Series(df["resultat_obs"].to_numpy(np.float64) / 1000.0, index=ts)
        out[path.name.split("_")[0]] = s[~s.index.duplicated()].sort_index()
    return out


def readings(gauges: dict[str, pd.Series]) -> Readings:
    names = sorted(gauges)
    si = np.concatenate([np.full(gauges[g].size, i, np.uint32) for i, g in enumerate(names)])
    ts = np.concatenate([gauges[g].index.to_numpy(np.int64) for g in names])
    val = np.concatenate([gauges[g].to_numpy() for g in names])
    order = np.argsort(ts, kind="stable")
    return Readings(names, ["h"], si[order], np.zeros(si.size, np.uint32)[order], ts[order],
                    val[order])


def rule(window: str, limit: str) -> Rule:
    cond = f"eta(h, station.warning_level_m, {window}) <= {limit}"
    return Rule.model_validate({"id": f"eta-{window}-{limit}", "name": "projection",
                                "hazard": "flood",
                                "grades": {"yellow": f"{cond} and count(h, {window}) >= 4"},
                                "clear": {"when": f"not ({cond})", "for": "30m"}})


def evaluate(gauges: dict[str, pd.Series], levels: dict[str, float], window: str,
             limit: str) -> dict[str, float]:
    data = readings(gauges)
    registry = Registry([Station(id=g, name=g, kind="river_gauge",
                                 thresholds={"warning_level_m": levels[g]}) for g in gauges])
    [res] = replay([Pipeline([rule(window, limit)], registry)], data, 20_000)
    rows = leadtime.lead_times(res.events, data)
    months = sum((s.index[-1] - s.index[0]) for s in gauges.values()) / (30 * 86_400_000)
    lead = rows.loc[rows["outcome"] == "crossed", "lead_min"]
    return {"warnings": len(rows), "crossed": int(lead.size),
            "false_per_station_month": float((rows["outcome"] == "false alarm").sum() / months),
            "lead_median_min": float(lead.median()) if lead.size else float("nan"),
            "lead_p25_min": float(lead.quantile(0.25)) if lead.size else float("nan"),
            "lead_p75_min": float(lead.quantile(0.75)) if lead.size else float("nan"),
            "gauges_warned_ahead": int(rows.loc[rows["outcome"] == "crossed", "station"].nunique())}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, required=True, help="the hubeau-water-level folder")
    args = ap.parse_args()
    gauges = load(args.data)
    levels = {g: float(s.quantile(0.98)) for g, s in gauges.items()}
    names = sorted(gauges)
    tune, test = names[:6], names[6:]
    print(f"gauges: {len(names)}; tune on {','.join(tune)}; report on {','.join(test)}")
    print("levels (98th percentile, m): " + ", ".join(f"{g}={levels[g]:.2f}" for g in names))
    scores = []
    for w in WINDOWS:
        for h in LIMITS:
            r = evaluate({g: gauges[g] for g in tune}, levels, w, h)
            scores.append((r["false_per_station_month"], -np.nan_to_num(r["lead_median_min"]), w, h))
            print(f"tune W={w} H={h}: " + ", ".join(f"{k}={v:.4g}" for k, v in r.items()))
    _, _, w, h = min(scores)
    print(f"chosen: W={w} H={h}")
    for label, part in (("tune", tune), ("test", test)):
        r = evaluate({g: gauges[g] for g in part}, levels, w, h)
        print(f"{label}_gauges: {len(part)}")
        for k, v in r.items():
            print(f"{label}_{k}: {v:.4g}")
    print("plain_rule_lead_min: 0 (it fires at the first reading over the level)")


if __name__ == "__main__":
    main()
