"""Detectors on the injected-fault set (bench/faults.py): F1, false- and missed-alarm rates, AUC.

Every detector is trained on the clean first part only, with its alarm threshold calibrated
on the last 30 % of that part for the target false-alarm rate (``--far``; alarm.py): nothing
is tuned on the labels. It then scores the faulty rest in streaming order (states warmed on
the training part). Judged per station row (one row per hour and site):

- per-metric detectors (baseline, spike, iforest, ensemble with plain scores): one model per
  sensor, Šidák-corrected for the four sensors, combined by "any sensor" (the row alarms
  when one sensor does; the row's score is the largest sensor score, for the AUC);
- station models: pca (T² + Q), mcd (robust Mahalanobis over lagged rows) and residual
  (each sensor predicted from the others, stuck and noisy checks; residual.py);
- neighbours (``--detector neighbours``): each sensor predicted from the same sensor at
  the other sites, the four sites fitted together (yujing/models/neighbours.py).
  ``--screen`` says how it treats a metric whose calibration part is much wider than
  its fitted part (the Beijing pressure of 2014-11 to 2015-02): left out whole
  (``metric``, the default) or only its 30-day blocks that are (``blocks``).

``--calibrate rows`` (docs/models.md "Calibrating the row") fits the detectors of
``a|b|c`` as before, then sets one threshold on the row, over their tail ranks, for the
target rate on the held-out training rows (yujing/models/holdoff.py), with a hold-off
``--hold K/N`` or ``auto`` (chosen on faults injected into the calibration part of
training). Parts: pca, mcd, residual, neighbours, ``stuck`` (yujing/models/stuck.py) and
``local`` (yujing/models/local.py: the neighbour residual in the units of its last two weeks,
pressure included) and ``saturation`` (yujing/models/saturation.py: a dew point above the
temperature), ``local.size`` (``local``'s views level and held), ``local.steps``,
``local.level``, ``local.held`` (views of ``local`` ranked as parts of their own) and
``limits`` (yujing/models/limits.py: a negative wind speed); a ``.ends`` after a
``local.`` part (``local.size.ends``) gates held and steps on the row itself (round "faults5").
``--latch PART:START:KEEP[:PATIENCE]`` adds a hysteresis on one part (yujing/models/latch.py,
round "faults6"), calibrated with the row threshold on the same held-out training rows.
``--station-screen follow`` leaves out of the station models the metrics the neighbours'
screen left out at every station. The event columns: docs/models.md "Event scoring".

The first table also gives, per fault kind, the share of faults with at least one alarm,
and "F1 at test FAR", the row F1 when the threshold is set so that the test's false-alarm
rate equals the target: it reads the labels, so it is no deployable figure, only a way to
tell a calibration that missed its rate from a detector that cannot rank. The second table
(``--per-kind``) gives, per detector and fault kind: the share found, the median delay from
the fault's start to its first alarm (hours), the share of the fault's rows alarmed, and the
same share over the detectable rows (bench/faults.py "Detectable rows": moved by at least
1 u from the true value, a stuck run longer than any of the sensor's clean training runs,
or a noisy window). The first table gives row F1, precision and recall twice: over all
fault rows, and over the detectable rows only (a fault row that is not detectable then
counts neither as positive nor as negative). Both are reported; neither replaces the other.

    .venv/bin/python bench/models_eval.py --data ../shared/data/beijing-hourly [--far 0.01]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/faults.py beside this file

from fault_scores import detectable_f1, events, f1_at_test_far, found_per_fault, per_kind  # noqa: E402
from faults import METRICS, build, inject, neighbour_spread  # noqa: E402

from yujing.models import STATION_KINDS  # noqa: E402
from yujing.models.alarm import fit_calibrated, sidak  # noqa: E402
from yujing.models.holdoff import RowAlarm  # noqa: E402
from yujing.models.labelled import judge, positives  # noqa: E402
from yujing.models.latch import LatchedAlarm, LatchRule  # noqa: E402
from yujing.models.limits import LimitsCheck  # noqa: E402
from yujing.models.local import LocalResidual  # noqa: E402
from yujing.models.neighbours import NeighbourDetector  # noqa: E402
from yujing.models.saturation import SaturationCheck  # noqa: E402
from yujing.models.stuck import StuckCheck  # noqa: E402

ROW_METRIC = "+".join(METRICS)
HYPER: dict[str, dict] = {"ensemble": {"record": 0}, "iforest": {}}
SCREEN = {"neighbours": "metric", "station": "all"}  # --screen, --station-screen
# --hold auto: the hold-offs tried (k of n rows, ending within m rows of the evidence, 0: not)
HOLDS = [(1, 1, 0), (2, 3, 0), (3, 6, 0), (6, 12, 0), (3, 6, 2), (6, 12, 2)]
SYN_PER_KIND, SYN_SEED = 2, 1000  # --hold auto: faults injected into the calibration part
LEFT_OUT: list[str] = []  # metrics the neighbours' screen left out at every station
LATCHES: list[str] = []  # --latch PART:START:KEEP[:PATIENCE] (yujing/models/latch.py)


def station_rows(kind: str, train: pd.DataFrame, test: pd.DataFrame, far: float, seed: int,
                 split: float = 0.7) -> pd.DataFrame:
    """ts, station, metric (a+b+c+d), score, alarm for every test row of every station.

    ``a|b`` runs both detectors, each calibrated for its Šidák share of ``far`` (two
    alarm streams), and alarms when either does; the row's score is the larger."""
    if "|" in kind:
        parts = kind.split("|")
        share = sidak(far, len(parts))
        each = [station_rows(k, train, test, share, seed, split) for k in parts]
        out = each[0].copy()
        for other in each[1:]:
            merged = out.merge(other, on=["station", "ts"], how="outer", suffixes=("", "_o"))
            merged["score"] = merged[["score", "score_o"]].max(axis=1)
            merged["alarm"] = merged["alarm"].fillna(False).astype(bool) | merged["alarm_o"].fillna(
                False).astype(bool)
            out = merged[["ts", "station", "score", "alarm", "metric"]].assign(metric=ROW_METRIC)
        return out.sort_values(["station", "ts"], kind="stable").reset_index(drop=True)
    full = pd.concat([train, test], ignore_index=True)
    cut = int(test["ts"].min())
    if kind == "neighbours":
        out = neighbour_rows(train, full, cut, far, split)
    elif kind in STATION_KINDS:
        det = fit_calibrated(train, kind, far, seed=seed,  # every metric: the four sensors
                             hyper=HYPER.get(kind), split=split)
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
                                 hyper=HYPER.get(kind), split=split)
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


def wide(frame: pd.DataFrame) -> tuple[np.ndarray, list[str], dict[str, np.ndarray]]:
    """(timestamps, stations, metric → rows × stations with NaN for a missing reading)."""
    table = frame.pivot_table(index="ts", columns=["metric", "station"], values="value",
                              aggfunc="last")
    stations = sorted(frame["station"].unique())
    cols = pd.MultiIndex.from_product([list(METRICS), stations])
    table = table.reindex(columns=cols)
    return (table.index.to_numpy(np.int64), stations,
            {m: table[m].to_numpy(np.float64) for m in METRICS})


def neighbour_rows(train: pd.DataFrame, full: pd.DataFrame, cut: int, far: float,
                   split: float) -> pd.DataFrame:
    """Rows of the neighbours detector (yujing/models/neighbours.py): fitted and calibrated
    on the training readings, scoring the whole range in streaming order (state warmed on
    training); a row for each station and hour at which the station has any reading."""
    return neighbour_scored(fit_neighbours(train, far, split), full, cut)


def fit_neighbours(train: pd.DataFrame, far: float, split: float) -> NeighbourDetector:
    ts, stations, values = wide(train)
    det = NeighbourDetector(stations, METRICS, screen=SCREEN["neighbours"]).fit(ts, values, far, split)
    print(f"  neighbours: EWMA spans {det.meta['spans']}, left out {det.meta['dropped'] or 'none'}",
          flush=True)
    return det


def neighbour_scored(det: NeighbourDetector, full: pd.DataFrame, cut: int) -> pd.DataFrame:
    """Rows at or after ``cut`` of ``full`` scored from its start (ts, station, score, alarm)."""
    ts, stations, values = wide(full)
    scores = det.score(values)
    have = np.any([np.isfinite(values[m]) for m in METRICS], axis=0)
    keep = (ts >= cut)[:, None] & have
    r, c = np.nonzero(keep)
    return pd.DataFrame({"ts": ts[r], "station": np.array(stations)[c], "score": scores[r, c],
                         "alarm": det.alarm(scores[r, c])})


def fit_part(kind: str, train: pd.DataFrame, far: float, seed: int, split: float
             ) -> tuple[Callable[[pd.DataFrame], pd.DataFrame], int]:
    """(a scorer: readings → ts, station, score of every row, in streaming order from the
    first reading; the start of the detector's calibration part)."""
    if kind == "neighbours":
        det = fit_neighbours(train, far, split)
        by_metric = pd.Series([d.split("/")[1] for d in det.meta["dropped"]]).value_counts()
        LEFT_OUT[:] = [m for m, n in by_metric.items() if n == len(det.stations)]
        return (lambda f: neighbour_scored(det, f, int(f["ts"].min())),
                int(det.meta["calibration_from_ms"]))
    if kind in GROUP_CHECKS:
        return fit_group_check(train, split, GROUP_CHECKS[kind])
    if kind not in STATION_KINDS:
        raise SystemExit(f"--calibrate rows: {kind} is no station model (use pca, mcd, residual, "
                         "neighbours, stuck, local, local.size, local.steps, local.level, local.held, "
                         "each with .ends, saturation, limits)")
    hyper = dict(HYPER.get(kind) or {})
    if SCREEN["station"] == "follow" and LEFT_OUT:
        hyper["metrics"] = [m for m in METRICS if m not in LEFT_OUT]
        print(f"  {kind}: metrics {'+'.join(hyper['metrics'])} (the neighbours' screen left "
              f"out {'+'.join(LEFT_OUT)})", flush=True)
    det = fit_calibrated(train, kind, far, seed=seed, hyper=hyper, split=split)

    def score(frame: pd.DataFrame) -> pd.DataFrame:
        return pd.concat([pd.DataFrame({"ts": ts, "station": station, "score": s})
                          for station, (ts, s) in det.score_frame(frame).items()], ignore_index=True)

    return score, int(det.meta["alarm"]["calibration_from_ms"])


def fit_group_check(train: pd.DataFrame, split: float, make: Callable) -> tuple[Callable, int]:
    """A group check fitted on the first ``split`` of the training range (``make(values)``
    → an object with ``statistic(values)``, rows × stations), scoring every station row:
    stuck (yujing/models/stuck.py), local (local.py), saturation (saturation.py)."""
    ts, _, values = wide(train)
    start = int(ts.min()) + int(split * (int(ts.max()) - int(ts.min())))
    check = make({m: v[ts < start] for m, v in values.items()})

    def score(frame: pd.DataFrame) -> pd.DataFrame:
        t, stations, vals = wide(frame)
        stat = check.statistic(vals)
        r, c = np.nonzero(np.isfinite(stat))
        return pd.DataFrame({"ts": t[r], "station": np.array(stations)[c], "score": stat[r, c]})

    return score, start


GROUP_CHECKS: dict[str, Callable] = {
    "stuck": lambda v: StuckCheck(METRICS).fit(v),
    "local": lambda v: LocalResidual(range(v[METRICS[0]].shape[1]), METRICS).fit(v),
    "saturation": lambda v: SaturationCheck().fit(v),
    "limits": lambda v: LimitsCheck().fit(v),
}


ENDS = ("held", "steps")  # local.*.ends: gates that need this row (LocalResidual's ``ends``)


class _SomeViews:
    """``local.size`` (views level and held), ``local.level``, ``local.held``,
    ``local.steps``: views of ``local`` as a part of their own (their own tail rank in the
    row alarm; LocalResidual.statistic). With ``.ends`` (``local.size.ends``, …) the
    gates of held and steps need the row itself (LocalResidual's ``ends``: the row after a
    fault is not alarmed for the fault's last rows)."""

    def __init__(self, values: dict, view: tuple[str, ...], ends: tuple[str, ...] = ()) -> None:
        self.model = LocalResidual(range(values[METRICS[0]].shape[1]), METRICS, ends).fit(values)
        self.view = view

    def statistic(self, values: dict) -> np.ndarray:
        return self.model.statistic(values, view=self.view)


for _name, _views in {"size": ("level", "held"), "level": ("level",), "held": ("held",),
                      "steps": ("steps",)}.items():
    GROUP_CHECKS[f"local.{_name}"] = (lambda views: lambda v: _SomeViews(v, views))(_views)
    GROUP_CHECKS[f"local.{_name}.ends"] = (lambda views: lambda v: _SomeViews(v, views, ENDS))(_views)


def merged_scores(scorers: list, frame: pd.DataFrame, start: int) -> pd.DataFrame:
    """ts, station, s0, s1, …: every detector's score per station row from ``start`` on,
    sorted by station, then time (a row one detector lacks: NaN, ranked lowest)."""
    merged = None
    for i, score in enumerate(scorers):
        f = score(frame)[["ts", "station", "score"]].rename(columns={"score": f"s{i}"})
        merged = f if merged is None else merged.merge(f, on=["station", "ts"], how="outer")
    merged = merged.sort_values(["station", "ts"], kind="stable")
    return merged[merged["ts"] >= start].reset_index(drop=True)


def hold_name(k: int, n: int, m: int = 0) -> str:
    """"k/n", or "k/n/m" when the alarm ends within m rows of its evidence (holdoff.py)."""
    return f"{k}/{n}" + (f"/{m}" if m else "")


def latch_name() -> str:
    """" latch A+B" for the table's detector column ("" without ``--latch``)."""
    return f" latch {'+'.join(LATCHES)}" if LATCHES else ""


def choose_hold(scorers: list, train: pd.DataFrame, start: int, clean: pd.DataFrame,
                far: float, seed: int) -> tuple[int, int]:
    """``--hold auto``: the hold-off chosen on training data only. Faults (bench/faults.py,
    ``SYN_PER_KIND`` of each kind per station, seed ``SYN_SEED + seed``) are injected into
    the calibration part of training; each candidate of ``HOLDS``, calibrated on the clean
    part, alarms on the faulty copy; the best row F1 + event F1 wins."""
    cal = train[train["ts"] >= start].reset_index(drop=True)
    syn, syn_labels = inject(cal, SYN_PER_KIND, SYN_SEED + seed)
    frame = pd.concat([train[train["ts"] < start], syn.drop(columns=["offset_u", "visible"])],
                      ignore_index=True)
    faulty = merged_scores(scorers, frame, start)
    cols = [c for c in clean.columns if c.startswith("s") and c != "station"]
    win = syn_labels[["station", "metric", "start", "end"]]
    best, best_score = HOLDS[0], -1.0
    for k, n, m in HOLDS:
        ra = RowAlarm.fit([clean[c].to_numpy(np.float64) for c in cols],
                          clean["station"].to_numpy(), far, k, n, ends=m)
        rows = faulty[["ts", "station"]].assign(metric=ROW_METRIC)
        rows["alarm"] = ra.alarm([faulty[c].to_numpy(np.float64) for c in cols],
                                 faulty["station"].to_numpy())
        rows["score"] = rows["alarm"].astype(float)
        both = judge(rows, win).f1 + events(rows, syn_labels)["f1"]
        print(f"  hold {hold_name(k, n, m)} on training faults: row F1 + event F1 {both:.3f}", flush=True)
        if both > best_score:
            best, best_score = (k, n, m), both
    return best


def row_calibrated(kind: str, train: pd.DataFrame, test: pd.DataFrame, far: float, seed: int,
                   split: float, holds: list[tuple[int, int, int]] | None
                   ) -> dict[tuple[int, int, int], pd.DataFrame]:
    """``--calibrate rows``: the detectors of ``a|b`` fitted as before, then one row alarm
    over them (yujing/models/holdoff.py) calibrated on the held-out training part for
    ``far``, per hold-off (k, n, m) (None: chosen by :func:`choose_hold`). Test rows: ts,
    station, metric, score (combined rank), alarm."""
    cut = int(test["ts"].min())
    scorers, starts = [], []
    # neighbours first: with --station-screen follow, its screen names the metrics to leave out
    parts = sorted(kind.split("|"), key=lambda k: k != "neighbours")
    for k in parts:
        score, start = fit_part(k, train, far, seed, split)
        scorers.append(score)
        starts.append(start)
    merged = merged_scores(scorers, pd.concat([train, test], ignore_index=True), max(starts))
    names = [c for c in merged.columns if c.startswith("s") and c != "station"]
    cols = [merged[c].to_numpy(np.float64) for c in names]
    group = merged["station"].to_numpy()
    cal = merged["ts"].to_numpy(np.int64) < cut
    keep = ~cal
    if holds is None:
        holds = [choose_hold(scorers, train, max(starts), merged[cal], far, seed)]
    out = {}
    if LATCHES:  # a latch replaces the hold-off (1/1 only)
        if holds != [(1, 1, 0)]:
            raise SystemExit("--latch: with --hold 1/1 only (a latch is its own hold)")
        rules = [LatchRule.parse(t, parts) for t in LATCHES]
        la = LatchedAlarm.fit([c[cal] for c in cols], group[cal], far, rules)
        row, latched = la.parts(cols, group)
        print(f"  rows 1/1 with latch {', '.join(LATCHES)}: threshold rank {la.threshold:.5f}, "
              f"latch levels {la.levels}, calibration rate {la.calibration_rate:.4f}, latched "
              f"test rows {int(latched[keep].sum())} ({int((latched & ~row)[keep].sum())} of them "
              "below the row threshold)", flush=True)
        out[(1, 1, 0)] = pd.DataFrame({"ts": merged["ts"].to_numpy()[keep], "station": group[keep],
                                       "metric": ROW_METRIC,
                                       "score": RowAlarm.combined(la.references, [c[keep] for c in cols]),
                                       "alarm": (row | latched)[keep]})
        return out
    for k, n, m in holds:
        ra = RowAlarm.fit([c[cal] for c in cols], group[cal], far, k, n, ends=m)
        alarm = ra.alarm(cols, group)
        print(f"  rows {hold_name(k, n, m)}: threshold rank {ra.threshold:.5f}, single {ra.single:.5f}, "
              f"calibration rate {ra.calibration_rate:.4f} ({int(cal.sum())} rows)", flush=True)
        out[(k, n, m)] = pd.DataFrame({"ts": merged["ts"].to_numpy()[keep], "station": group[keep],
                                    "metric": ROW_METRIC,
                                    "score": RowAlarm.combined(ra.references, [c[keep] for c in cols]),
                                    "alarm": alarm[keep]})
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True, help="the beijing-hourly folder")
    ap.add_argument("--far", type=float, action="append", help="target false-alarm rate "
                    "(repeatable; default 0.01)")
    ap.add_argument("--detector", action="append", help="default: baseline spike iforest "
                    "ensemble pca mcd residual (also: neighbours); a|b runs both and alarms when either does")
    ap.add_argument("--per-kind", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--scale", type=float, default=1.0, help="fault size (bench/faults.py)")
    ap.add_argument("--split", type=float, default=0.7, help="share of the training range the "
                    "detector is fitted on; the rest calibrates the alarm threshold (alarm.py)")
    ap.add_argument("--mcd-support", type=float, help="MinCovDet support_fraction (default: "
                    "scikit-learn's, about half the rows)")
    ap.add_argument("--screen", choices=["metric", "blocks"], default="metric",
                    help="neighbours: a metric whose calibration part is much wider than its "
                    "fitted part is left out whole (metric), or only its 30-day blocks that are")
    ap.add_argument("--calibrate", choices=["parts", "rows"], default="parts",
                    help="parts: each detector (and metric) for its Sidak share of the rate; "
                    "rows: one threshold on the combined row (yujing/models/holdoff.py)")
    ap.add_argument("--hold", action="append", help="with --calibrate rows: alarm when K of "
                    "the last N rows of a station are above the threshold, as K/N, or K/N/M: and "
                    "one of the last M (the alarm ends with its evidence) (repeatable; "
                    "default 1/1), or auto: chosen on faults injected into training")
    ap.add_argument("--station-screen", choices=["all", "follow"], default="all",
                    help="--calibrate rows: station models on every metric (all), or without "
                    "the metrics the neighbours' screen left out at every station (follow)")
    ap.add_argument("--latch", action="append", help="with --calibrate rows and --hold 1/1: "
                    "PART:START:KEEP[:PATIENCE], once PART's rank is above the level normal "
                    "rows pass at rate START, keep alarming while it is above the one of rate "
                    "KEEP in one of the last PATIENCE rows (yujing/models/latch.py; repeatable)")
    a = ap.parse_args()
    LATCHES[:] = a.latch or []
    SCREEN["neighbours"] = a.screen
    SCREEN["station"] = a.station_screen
    if a.mcd_support:
        HYPER["mcd"] = {"support": a.mcd_support}
    train, test, labels = build(a.data, per_kind=a.per_kind, seed=a.seed, scale=a.scale)
    detectable = test["visible"].groupby([test["station"], test["ts"]]).any()
    print(f"fault rows detectable (bench/faults.py \"Detectable rows\"): {int(detectable.sum())}")
    test = test.drop(columns=["offset_u", "visible"])
    print(f"train {len(train)} readings, test {len(test)} readings, {len(labels)} faults, "
          f"seed {a.seed}, fault scale {a.scale:g}, fitted share {a.split:g}")
    spread = neighbour_spread(train)
    print("neighbours (training half, first site): " + ", ".join(
        f"{m} u {u:.2f}, p99 |site - others| {p:.2f}" for m, (u, p) in spread.items()))
    kinds = a.detector or ["baseline", "spike", "iforest", "ensemble", "pca", "mcd", "residual"]
    names = sorted(labels["fault"].unique())
    holds = (None if a.hold == ["auto"] else
             [(*(int(x) for x in h.split("/")), 0)[:3] for h in (a.hold or ["1/1"])])
    print("| detector | target FAR | F1 | precision | recall | FAR | missed | F1 detectable | "
          "precision detectable | recall detectable | AUC | F1 at test FAR | "
          "event recall | event precision | event F1 | TTD rows | alarm runs | "
          + " | ".join(names) + " | seconds |")
    detail = []
    for far in a.far or [0.01]:
        for kind in kinds:
            t = time.perf_counter()
            if a.calibrate == "rows":
                runs = {f"{kind} rows {hold_name(*h)}{latch_name()}": r for h, r in
                        row_calibrated(kind, train, test, far, a.seed, a.split, holds).items()}
            else:
                group_model = kind in STATION_KINDS or "|" in kind or kind == "neighbours"
                name = kind if group_model else f"{kind} (any sensor)"
                runs = {name: station_rows(kind, train, test, far, a.seed, a.split)}
            for name, rows in runs.items():
                win = labels[["station", "metric", "start", "end"]]
                j = judge(rows, win)
                found = found_per_fault(rows, labels)
                ev = events(rows, labels)
                pos = positives(rows, win)
                oracle = f1_at_test_far(rows, pos, far)
                dets = detectable_f1(rows, pos, detectable)
                print(f"| {name} | {far:g} | {j.f1:.3f} | {j.precision:.3f} | {j.recall:.3f} | "
                      f"{j.far:.4f} | {j.missed:.3f} | {dets[0]:.3f} | {dets[1]:.3f} | {dets[2]:.3f} | "
                      f"{j.auc:.3f} | {oracle:.3f} | "
                      f"{ev['recall']:.3f} | {ev['precision']:.3f} | {ev['f1']:.3f} | "
                      f"{ev['ttd']:.0f} | {ev['runs']} | "
                      + " | ".join(f"{found[k]:.2f}" for k in names)
                      + f" | {time.perf_counter() - t:.0f} |", flush=True)
                detail.append((name, far, per_kind(rows, labels, detectable.astype(float))))
    print("\n| detector | target FAR | fault | found | median delay h | rows alarmed | "
          "detectable rows alarmed |")
    for name, far, kinds_out in detail:
        for k, (share, delay, rec, rec_vis) in kinds_out.items():
            print(f"| {name} | {far:g} | {k} | {share:.2f} | {delay:.1f} | {rec:.2f} | {rec_vis:.2f} |")


if __name__ == "__main__":
    main()
