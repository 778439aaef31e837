"""Judging detector rows on the injected-fault set (bench/faults.py): faults found per
kind, event scores (docs/models.md "Event scoring"), F1 at the test's own rate, F1 over
the detectable rows, and the per-kind table of bench/models_eval.py. Rows are sorted by
station, then time; labels are read here only, never by a detector."""

from __future__ import annotations

import numpy as np
import pandas as pd
from faults import HOUR_MS

from yujing.models.labelled import positives


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


def events(rows: pd.DataFrame, labels: pd.DataFrame) -> dict[str, float]:
    """Event scores (docs/models.md "Event scoring"). Rows sorted by station, then time.

    - an alarm run: consecutive alarmed rows of one station; it is true when one of its
      rows lies in a fault window of that station;
    - event recall: faults with at least one alarmed row inside their window ÷ faults;
    - event precision: true alarm runs ÷ alarm runs; event F1 from the two;
    - time to detect: the median, over found faults, of rows from the fault's first row
      to its first alarmed row (0: alarmed at once)."""
    pos = positives(rows, labels[["station", "metric", "start", "end"]])
    alarm = rows["alarm"].to_numpy(bool)
    st = rows["station"].to_numpy()
    new_run = alarm.copy()
    new_run[1:] &= ~(alarm[:-1] & (st[1:] == st[:-1]))
    run_id = np.cumsum(new_run) - 1
    runs = int(new_run.sum())
    true_runs = int(np.unique(run_id[alarm & pos]).size)
    ts = rows["ts"].to_numpy(np.int64)
    found, delays = 0, []
    for w in labels.itertuples(index=False):
        sel = np.flatnonzero((st == w.station) & (ts >= w.start) & (ts <= w.end))
        hit = np.flatnonzero(alarm[sel])
        if hit.size:
            found += 1
            delays.append(int(hit[0]))
    precision = true_runs / runs if runs else float("nan")
    recall = found / len(labels) if len(labels) else float("nan")
    f1 = 2 * precision * recall / (precision + recall) if runs and precision + recall > 0 else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "runs": runs,
            "false_runs": runs - true_runs,
            "ttd": float(np.median(delays)) if delays else float("nan")}


def f1_at_test_far(rows: pd.DataFrame, pos: np.ndarray, far: float) -> float:
    """Row F1 with the threshold that gives the target false-alarm rate on the test's normal
    rows. Reads the labels: a diagnostic, not a deployable setting."""
    scores = rows["score"].to_numpy(np.float64)
    threshold = np.quantile(scores[~pos], 1.0 - far, method="higher")  # rate at most ``far``
    alarm = scores > threshold
    tp, fp = int((alarm & pos).sum()), int((alarm & ~pos).sum())
    p, r = (tp / (tp + fp) if tp + fp else 0.0), tp / max(int(pos.sum()), 1)
    return 2 * p * r / (p + r) if p + r else 0.0


def detectable_f1(rows: pd.DataFrame, pos: np.ndarray, detectable: pd.Series
                  ) -> tuple[float, float, float]:
    """(F1, precision, recall) over the detectable rows (bench/faults.py "Detectable
    rows"): a fault row that is not detectable counts neither as positive nor as negative
    (its alarm is no true and no false alarm); normal rows count as before."""
    det = detectable.reindex(pd.MultiIndex.from_frame(rows[["station", "ts"]])).fillna(False)
    det = det.to_numpy(bool) & pos
    alarm = rows["alarm"].to_numpy(bool)
    tp, fp, fn = int((alarm & det).sum()), int((alarm & ~pos).sum()), int((~alarm & det).sum())
    p, r = (tp / (tp + fp) if tp + fp else 0.0), (tp / (tp + fn) if tp + fn else 0.0)
    return (2 * p * r / (p + r) if p + r else 0.0), p, r


def per_kind(rows: pd.DataFrame, labels: pd.DataFrame, visible: pd.Series) -> dict[str, tuple]:
    """fault kind → (share found, median delay h, row recall, row recall over visible rows:
    ``visible`` at least 1, an offset in u or a detectable flag)."""
    out = {}
    vis = visible.reindex(pd.MultiIndex.from_frame(rows[["station", "ts"]])).to_numpy() >= 1.0
    for kind, g in labels.groupby("fault", sort=True):
        found, delays, hit, seen, hit_vis, seen_vis = 0, [], 0, 0, 0, 0
        for w in g.itertuples(index=False):
            sel = ((rows["station"] == w.station) & (rows["ts"] >= w.start)
                   & (rows["ts"] <= w.end)).to_numpy()
            alarm = rows["alarm"].to_numpy(bool)[sel]
            ts = rows["ts"].to_numpy()[sel]
            if alarm.any():
                found += 1
                delays.append((ts[alarm][0] - w.start) / HOUR_MS)
            hit, seen = hit + int(alarm.sum()), seen + int(sel.sum())
            hit_vis, seen_vis = hit_vis + int((alarm & vis[sel]).sum()), seen_vis + int(vis[sel].sum())
        out[kind] = (found / len(g), float(np.median(delays)) if delays else float("nan"),
                     hit / max(seen, 1), hit_vis / max(seen_vis, 1))
    return out
