"""Scoring a readings CSV with a trained model, and judging its alarms against labels.

``models score`` and ``models evaluate --model`` use these. A per-metric model scores
each station's series of its metric; a station model (station.py) scores station rows,
written with the metric column ``a+b+c``. The alarm is the model's own calibrated
decision (alarm.py), so evaluation never picks a threshold on the labels — except the
one figure that by definition does: NAB's score at its best threshold, reported beside
NAB's score at the model's alarms.

Labels are either points (``ts,station[,metric],label``: rows with label 1 are
anomalous) or windows (``start,end,station[,metric]``, inclusive). An empty or missing
metric means every metric of the station. Times are ISO 8601 with an offset or epoch ms.
A scored row is positive when it lies in a window of its station (and metric); a station
row is positive when any of its metrics is labelled.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from yujing.models import nab
from yujing.models.base import Detector, ModelError
from yujing.models.group import GroupNeighbours
from yujing.models.station import StationDetector


def score_readings(det: Detector, frame: pd.DataFrame) -> pd.DataFrame:
    """ts, station, metric, score (and alarm when the model is calibrated), in time order
    per station; each station scored from scratch in streaming order."""
    parts = []
    if isinstance(det, GroupNeighbours):
        parts.append(det.score_group(frame))
    elif isinstance(det, StationDetector):
        name = "+".join(det.metrics)
        for station, (row_ts, scores) in det.score_frame(frame).items():
            parts.append(pd.DataFrame({"ts": row_ts, "station": station, "metric": name,
                                       "score": scores}))
    else:
        sub = frame[frame["metric"].astype(str) == det.metric]
        for station, g in sub.groupby("station", sort=True, observed=True):
            g = g.sort_values("ts", kind="stable").drop_duplicates("ts", keep="last")
            ts = g["ts"].to_numpy(np.int64)
            scores = det.score(ts, g["value"].to_numpy(np.float64), det.new_state(str(station)))
            parts.append(pd.DataFrame({"ts": ts, "station": str(station), "metric": det.metric,
                                       "score": scores}))
    if not parts:
        what = "+".join(getattr(det, "metrics", [])) or det.metric
        raise ModelError(f"the data has no readings of {what} for this model to score")
    out = pd.concat(parts, ignore_index=True)
    if "threshold" in (det.meta.get("alarm") or {}):
        out["alarm"] = det.alarm(out["score"].to_numpy())
    return out


def _times(col: pd.Series, path: Path, name: str) -> np.ndarray:
    text = col.astype(str).str.strip()
    if text.str.fullmatch(r"-?\d{1,16}").all():
        return text.astype("int64").to_numpy()
    try:
        dt = pd.to_datetime(text, format="ISO8601", utc=True)
    except (ValueError, TypeError) as exc:
        raise ModelError(f"{path}: column {name}: not ISO 8601 times or epoch ms ({exc}); write "
                         "e.g. 2025-06-01T08:00:00+08:00") from None
    return dt.dt.as_unit("ms").astype("int64").to_numpy()


def read_labels(path: Path) -> pd.DataFrame:
    """Labels as windows: station, metric ('' = any), start, end (epoch ms, inclusive)."""
    path = Path(path)
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise ModelError(f"{path}: cannot read the labels ({exc})") from None
    cols = set(df.columns)
    metric = df["metric"] if "metric" in cols else pd.Series([""] * len(df), dtype=str)
    if {"start", "end", "station"} <= cols:
        start, end = _times(df["start"], path, "start"), _times(df["end"], path, "end")
    elif {"ts", "station", "label"} <= cols:
        pos = df["label"].str.strip().isin(["1", "1.0", "true", "True"]).to_numpy()
        df, metric = df[pos], metric[pos]
        start = end = _times(df["ts"], path, "ts")
    else:
        raise ModelError(f"{path}: expected windows (start,end,station[,metric]) or points "
                         f"(ts,station[,metric],label); got {','.join(df.columns)}")
    return pd.DataFrame({"station": df["station"].str.strip().to_numpy(),
                         "metric": metric.str.strip().to_numpy(), "start": start, "end": end})


def positives(scored: pd.DataFrame, labels: pd.DataFrame) -> np.ndarray:
    """True for each scored row inside a label window of its station (and metric)."""
    out = np.zeros(len(scored), dtype=bool)
    st = scored["station"].astype(str).to_numpy()
    names, inv = np.unique(scored["metric"].astype(str).to_numpy(), return_inverse=True)
    ts = scored["ts"].to_numpy(np.int64)
    for w in labels.itertuples(index=False):
        sel = (st == w.station) & (ts >= w.start) & (ts <= w.end)
        if w.metric:  # a station row "a+b+c" holds each of its metrics
            sel &= np.array([w.metric in n.split("+") for n in names], dtype=bool)[inv]
        out |= sel
    return out


@dataclass
class Judgement:
    rows: int
    positives: int
    alarms: int
    tp: int
    fp: int
    fn: int
    auc: float
    nab_alarm: float  # NAB standard at the model's own alarms
    nab_best: float  # NAB standard at its best threshold on these labels (NAB's definition)

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else float("nan")

    @property
    def recall(self) -> float:
        return self.tp / self.positives if self.positives else float("nan")

    @property
    def f1(self) -> float:
        return nab.f1(self.precision, self.recall)

    @property
    def far(self) -> float:
        """False alarms ÷ normal rows."""
        neg = self.rows - self.positives
        return self.fp / neg if neg else float("nan")

    @property
    def missed(self) -> float:
        """Anomalous rows without an alarm ÷ anomalous rows."""
        return self.fn / self.positives if self.positives else float("nan")

    def as_dict(self) -> dict[str, Any]:
        return {"rows": self.rows, "positives": self.positives, "alarms": self.alarms,
                "precision": self.precision, "recall": self.recall, "f1": self.f1,
                "false_alarm_rate": self.far, "missed_alarm_rate": self.missed,
                "auc": self.auc, "nab_at_alarms": self.nab_alarm, "nab_best_threshold": self.nab_best}


def judge(scored: pd.DataFrame, labels: pd.DataFrame, alarm: np.ndarray | None = None) -> Judgement:
    """Row-level F1, false- and missed-alarm rates, ROC AUC and NAB scores of scored rows.

    ``alarm`` defaults to the ``alarm`` column (the model's calibrated decisions)."""
    if alarm is None:
        if "alarm" not in scored:
            raise ModelError("the model has no alarm threshold: retrain it with "
                             "`yujing models train --far 0.001`")
        alarm = scored["alarm"].to_numpy(bool)
    pos = positives(scored, labels)
    scores = scored["score"].to_numpy(np.float64)
    tp, fp = int((alarm & pos).sum()), int((alarm & ~pos).sum())
    return Judgement(len(scored), int(pos.sum()), int(alarm.sum()), tp, fp, int((~alarm & pos).sum()),
                     auc(pos, scores), *nab_scores(scored, pos, alarm))


def auc(pos: np.ndarray, scores: np.ndarray) -> float:
    if pos.all() or not pos.any():
        return float("nan")
    # lazy: scikit-learn is heavy; only evaluation needs its ROC
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(pos, scores))


def nab_scores(scored: pd.DataFrame, pos: np.ndarray, alarm: np.ndarray) -> tuple[float, float]:
    """NAB standard profile, one "file" per station (and metric), no probation (the model
    was trained beforehand): at the given alarms, and at NAB's best threshold."""
    prof = nab.PROFILES["standard"]
    scores, windows, alarms = {}, {}, {}
    for key, idx in scored.groupby(["station", "metric"], sort=True).indices.items():
        name = "/".join(map(str, key))
        p = pos[idx].astype(np.int8)
        edges = np.flatnonzero(np.diff(np.concatenate(([0], p, [0]))))
        windows[name] = [(int(a), int(b) - 1) for a, b in zip(edges[::2], edges[1::2])]
        scores[name] = scored["score"].to_numpy(np.float64)[idx]
        alarms[name] = alarm[idx].astype(np.float64)
    none = dict.fromkeys(scores, 0)
    if not any(windows.values()):
        return float("nan"), float("nan")
    best = nab.evaluate(scores, windows, {"standard": prof}, none)["standard"].normalised
    sweeps = [nab.sweep(n, alarms[n], windows[n], prof, 0) for n in sorted(alarms)]
    null, perfect = nab.null_and_perfect(sweeps, prof)
    raw = sum(nab.score_file(s, 0.5, prof.fn).score for s in sweeps)
    at_alarm = nab.normalise(raw, null, perfect)
    return at_alarm, (best if math.isfinite(best) else float("nan"))
