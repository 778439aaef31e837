"""Lead time gained by eta() over the plain threshold rule, on real floods (Hub'Eau gauges).

    .venv/bin/python bench/leadtime_hubeau.py --data DIR            # DIR: the hubeau-water-level folder
    .venv/bin/python bench/leadtime_hubeau.py --data DIR --levels q98   # the earlier level choice

The data: 10-minute river heights (mm) of 12 French gauges, 2020-01-07 to 2020-02-06, with
the flood of 22–25 January 2020 (the shared data folder's README says where it is from).

Levels. The data carries no warning level, so each gauge gets one a bureau could set before
the flood: its normal water (the median of its record up to ``--normal-until``, 17 January,
five days before the flood) plus the same rise everywhere (``--rise``, 2 m by default; 1 m and
3 m are printed with ``--rise``). Nothing of the flood is used. ``--levels q98`` restores
the first version's choice, the height exceeded 2 % of the month, which is set knowing the
flood's size: at three gauges it sits within 7 cm of the crest (see bench/README.md).

Rules, each run through the worker's own Pipeline on the same replay:

* plain:      ``last(h) >= station.warning_level_m``: fires at the first reading over the level;
* projection: ``eta(h, station.warning_level_m, W) <= H and count(h, W) >= 4``, and with a
  guard G > 0 also ``rate(h, W) >= G`` (a rise of at least G m/h over the window: a slow
  creep is not projected), and with confirmation C also ``eta(h, station.warning_level_m,
  W/2) <= H``: the newer half of the window must project the crossing too, so a rise that
  is slowing towards its crest raises nothing. Both are written in the rule language as it
  is; neither needs a new option of ``eta()``.

Scoring is per flood event, not per warning: an event is a crossing of the level after at
least ``EVENT_GAP`` below it (re-crossings while the river hovers at the level belong to the
same event, and a warning raised then gains nothing). The lead gained on an event is the
minutes from the earliest projection warning whose first crossing is that event's to the
event (0 when none came ahead: the plain rule is still there). A false alarm is a projection
warning with no crossing within H + 30 min (``backtest.leadtime``); the plain rule has none
by construction, its cost is the lead it lacks.

Tuning: the gauges are split by code in two halves (roughly by basin); W, H, G, C are chosen
on one half, the largest median lead with false alarms at most ``--budget`` per
station-month (fewest false alarms if none qualifies), and reported on the other; then the
halves swap.
"""

from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from yujing.backtest import leadtime
from yujing.backtest.replay import replay
from yujing.durations import format_duration, parse_duration_ms
from yujing.pipeline import Pipeline
from yujing.readings_csv import Readings
from yujing.rules.schema import Rule
from yujing.stations import Registry, Station

WINDOWS = ("30m", "1h", "2h", "3h")
LIMITS = ("1h", "2h", "3h")
GUARDS = (0.0, 0.2)  # m/h; 0.1 and 0.3 were tried too and never chosen
CONFIRM = (False, True)  # the half window's trend must reach the level in time too
EVENT_GAP_MS = 6 * 3_600_000
MONTH_MS = 30 * 86_400_000
STEP_MS = 10 * 60_000  # the gauges' reporting interval


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


def choose_levels(gauges: dict[str, pd.Series], how: str, normal_until_ms: int,
                  rise: float) -> dict[str, float]:
    """Each gauge's warning level: normal water + ``rise`` (``rise``), or the month's 98th
    percentile (``q98``)."""
    if how == "q98":
        return {g: float(s.quantile(0.98)) for g, s in gauges.items()}
    return {g: float(s[s.index < normal_until_ms].median()) + rise for g, s in gauges.items()}


def readings(gauges: dict[str, pd.Series]) -> Readings:
    names = sorted(gauges)
    si = np.concatenate([np.full(gauges[g].size, i, np.uint32) for i, g in enumerate(names)])
    ts = np.concatenate([gauges[g].index.to_numpy(np.int64) for g in names])
    val = np.concatenate([gauges[g].to_numpy() for g in names])
    order = np.argsort(ts, kind="stable")
    return Readings(names, ["h"], si[order], np.zeros(si.size, np.uint32)[order], ts[order],
                    val[order])


def projection(window: str, limit: str, guard: float, confirm: bool) -> Rule:
    """The projection rule; ``confirm``: the trend of the window's newer half must reach
    the level within the limit too (a rise that is slowing towards its crest is not)."""
    cond = f"eta(h, station.warning_level_m, {window}) <= {limit}"
    need = min(4, parse_duration_ms(window) // STEP_MS)  # 3 of a 30 min window's readings
    grade = f"{cond} and count(h, {window}) >= {need}"
    if guard > 0:
        grade += f" and rate(h, {window}) >= {guard}"
    if confirm:
        half = format_duration(parse_duration_ms(window) // 2)
        grade += f" and eta(h, station.warning_level_m, {half}) <= {limit}"
    ident = f"eta-{window}-{limit}-{round(guard * 100)}-{int(confirm)}"
    return Rule.model_validate({"id": ident, "name": "projection",
                                "hazard": "flood", "grades": {"yellow": grade},
                                "clear": {"when": f"not ({cond})", "for": "30m"}})


def plain() -> Rule:
    cond = "last(h) >= station.warning_level_m"
    return Rule.model_validate({"id": "plain", "name": "plain", "hazard": "flood",
                                "grades": {"yellow": cond},
                                "clear": {"when": f"not ({cond})", "for": "30m"}})


def crossings(ts: np.ndarray, over: np.ndarray, gap_ms: int) -> np.ndarray:
    """Times (ms) a condition became true after at least ``gap_ms`` false (a record that
    starts true has no crossing there)."""
    up = np.flatnonzero(over & ~np.concatenate([[False], over[:-1]]))
    never = -(1 << 62)  # true nowhere yet
    last_over = np.maximum.accumulate(np.where(over, ts, never))
    before = np.concatenate([[never], last_over[:-1]])
    return ts[up[(up > 0) & (ts[up] - before[up] >= gap_ms)]]


def events(s: pd.Series, level: float) -> np.ndarray:
    """Times (ms) the series crossed ``level`` after at least EVENT_GAP_MS below it."""
    return crossings(s.index.to_numpy(np.int64), s.to_numpy() >= level, EVENT_GAP_MS)


def evaluate(gauges: dict[str, pd.Series], levels: dict[str, float], rule: Rule) -> dict:
    """The projection rule and the plain rule on one replay of ``gauges``: per-event lead,
    false alarms and warnings per station-month."""
    data = readings(gauges)
    registry = Registry([Station(id=g, name=g, kind="river_gauge",
                                 thresholds={"warning_level_m": levels[g]}) for g in gauges])
    proj, base = replay([Pipeline([rule], registry), Pipeline([plain()], registry)], data, 20_000)
    rows = leadtime.lead_times(proj.events, data)
    crossed = rows[rows["outcome"] == "crossed"]
    best = crossed.groupby(["station", "crossed_ms"])["lead_min"].max().to_dict()
    leads = [best.get((g, int(t)), 0.0) for g in sorted(gauges)
             for t in events(gauges[g], levels[g])]
    months = sum((s.index[-1] - s.index[0]) for s in gauges.values()) / MONTH_MS
    raised = sum(1 for e in base.events if str(getattr(e.kind, "value", e.kind)) == "raised")
    return {"events": len(leads), "ahead": int(sum(x > 0 for x in leads)),
            "leads": np.array(leads, dtype=np.float64),
            "false_per_sm": float((rows["outcome"] == "false alarm").sum() / months),
            "warn_per_sm": len(rows) / months, "plain_warn_per_sm": raised / months}


def tune(gauges: dict[str, pd.Series], levels: dict[str, float], budget: float,
         show: bool) -> tuple[str, str, float, bool]:
    """W, H, G, C with the largest median lead within the false-alarm budget on ``gauges``
    (then the fewest false alarms, then the simplest rule)."""
    scores = []
    for w, h, g, c in itertools.product(WINDOWS, LIMITS, GUARDS, CONFIRM):
        r = evaluate(gauges, levels, projection(w, h, g, c))
        med = float(np.median(r["leads"])) if r["leads"].size else 0.0
        scores.append((r["false_per_sm"] > budget, -med if r["false_per_sm"] <= budget else 0.0,
                       r["false_per_sm"], g, c, w, h))
        if show:
            print(f"  tune W={w} H={h} G={g} C={c}: median lead {med:.0f} min, "
                  f"false/station-month {r['false_per_sm']:.2f}")
    *_, g, c, w, h = min(scores)
    return w, h, g, c


def line(label: str, r: dict) -> str:
    q = np.percentile(r["leads"], [50, 25, 75, 100]) if r["leads"].size else [np.nan] * 4
    return (f"{label}: events {r['events']}, warned ahead {r['ahead']}, lead median {q[0]:.0f} "
            f"min (p25 {q[1]:.0f}, p75 {q[2]:.0f}, max {q[3]:.0f}), false alarms/station-month "
            f"{r['false_per_sm']:.2f}, warnings/station-month {r['warn_per_sm']:.2f} "
            f"(plain rule: lead 0, false 0, warnings/station-month {r['plain_warn_per_sm']:.2f})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, required=True, help="the hubeau-water-level folder")
    ap.add_argument("--levels", choices=("rise", "q98"), default="rise")
    ap.add_argument("--rise", type=float, default=2.0, help="metres over normal water")
    ap.add_argument("--normal-until", default="2020-01-17", help="normal water: record before")
    ap.add_argument("--budget", type=float, default=0.5, help="false alarms per station-month")
    ap.add_argument("--grid", action="store_true", help="print every tuning setting")
    args = ap.parse_args()
    gauges = load(args.data)
    until = int(pd.Timestamp(args.normal_until).value // 1_000_000)
    levels = choose_levels(gauges, args.levels, until, args.rise)
    names = sorted(gauges)
    print(f"levels ({args.levels}{'' if args.levels == 'q98' else f' +{args.rise} m'}): "
          + ", ".join(f"{g}={levels[g]:.2f} (crest {gauges[g].max():.2f})" for g in names))
    halves = (names[:6], names[6:])
    for fold, (tune_on, test_on) in enumerate((halves, halves[::-1]), 1):
        part = {g: gauges[g] for g in tune_on}
        best = tune(part, levels, args.budget, args.grid)
        print(f"fold {fold}: tuned on {','.join(tune_on)}: W={best[0]} H={best[1]} G={best[2]} "
              f"C={best[3]}")
        print("  " + line("tuning gauges", evaluate(part, levels, projection(*best))))
        held = evaluate({k: gauges[k] for k in test_on}, levels, projection(*best))
        print("  " + line("held-out gauges", held))
        print(f"  held-out leads (min): {', '.join(f'{x:.0f}' for x in held['leads'])}")


if __name__ == "__main__":
    main()
