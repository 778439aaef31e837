"""Training: readings minus hazard periods → one fitted detector → the registry.

"Training never learns from periods inside active hazard warnings unless asked":
a flood is not normal. :func:`exclusion_periods` reads either a plain
``station,start,end`` CSV or the ``transitions.csv`` that ``yujing backtest`` writes
(each incident from its first warning transition to its clear, open incidents to
the end of time), and :func:`drop_periods` removes those readings before fitting.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from yujing.models import GROUP_KINDS, STATION_KINDS, make_detector
from yujing.models.alarm import fit_calibrated
from yujing.models.base import Detector, ModelError

OPEN_END = np.iinfo(np.int64).max


def _ms(col: pd.Series) -> np.ndarray:
    dt = pd.to_datetime(col, format="ISO8601", utc=True)
    return dt.dt.as_unit("ms").astype("int64").to_numpy()


def exclusion_periods(path: str | Path) -> pd.DataFrame:
    """(station, start, end) in epoch ms from an exclusions CSV or a backtest transitions.csv."""
    path = Path(path)
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise ModelError(f"{path}: cannot read the exclusion periods ({exc})") from None
    cols = set(df.columns)
    try:
        if {"station", "start", "end"} <= cols:
            end = df["end"].where(df["end"].str.strip() != "", None)
            out = pd.DataFrame({"station": df["station"], "start": _ms(df["start"]),
                                "end": [OPEN_END if e is None else int(x) for e, x in
                                        zip(end, _ms(end.fillna(df["start"])))]})
        elif {"ts", "station", "kind", "incident"} <= cols:
            df = df.assign(ms=_ms(df["ts"]))
            df = df[df["incident"].str.strip() != ""]
            warn = df[~df["kind"].isin(["pending"])]
            rows = []
            for _, g in warn.groupby("incident", sort=False):
                cleared = g[g["kind"] == "cleared"]
                raised = g["kind"] != "cleared"
                start = int(g.loc[raised, "ms"].min()) if raised.any() else int(g["ms"].min())
                end = int(cleared["ms"].max()) if not cleared.empty else OPEN_END
                rows.append((str(g["station"].iloc[0]), start, end))
            out = pd.DataFrame(rows, columns=["station", "start", "end"])
        else:
            raise ModelError(f"{path}: expected columns station,start,end or a backtest "
                             f"transitions.csv (ts,station,…,kind,…,incident); got "
                             f"{','.join(df.columns)}")
    except (ValueError, TypeError) as exc:
        raise ModelError(f"{path}: bad time in the exclusion periods ({exc}): use ISO 8601 "
                         "with an offset, e.g. 2025-06-01T08:00:00+08:00") from None
    return out.astype({"start": "int64", "end": "int64"})


def drop_periods(readings: pd.DataFrame, periods: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """Readings outside every period of their station; also how many were dropped."""
    if periods.empty or readings.empty:
        return readings, 0
    inside = np.zeros(len(readings), dtype=bool)
    st = readings["station"].astype(str).to_numpy()
    ts = readings["ts"].to_numpy(np.int64)
    for station, g in periods.groupby("station", sort=False):
        sel = st == station
        if not sel.any():
            continue
        t = ts[sel]
        hit = np.zeros(t.size, dtype=bool)
        for a, b in zip(g["start"].to_numpy(), g["end"].to_numpy()):
            hit |= (t >= a) & (t <= b)
        inside[np.flatnonzero(sel)[hit]] = True
    return readings[~inside], int(inside.sum())


@dataclass
class TrainResult:
    model: Detector
    rows: int
    excluded: int


def train(readings: pd.DataFrame, metric: str | None, kind: str = "iforest", seed: int = 0,
          groups: Mapping[str, str] | None = None, exclusions: pd.DataFrame | None = None,
          include_hazards: bool = False, hyper: dict | None = None, far: float | None = None,
          series: int = 1) -> TrainResult:
    """Fit one detector on the readings of ``metric`` (hazard periods dropped unless asked).

    A station kind (pca, mcd) takes the metrics in ``hyper['metrics']`` (or every metric
    of the data) and ignores ``metric``; so does the group kind neighbours, which also
    takes ``hyper['stations']`` (default: every station of the data) and needs ``far``.
    With ``far``, the detector is fitted on the first
    part of the range and its alarm threshold set on the rest (alarm.py)."""
    hyper = dict(hyper or {})
    if kind in STATION_KINDS or kind in GROUP_KINDS:
        wanted = hyper.get("metrics") or sorted(map(str, readings["metric"].unique()))
        frame = readings[readings["metric"].astype(str).isin(wanted)]
        what = "+".join(wanted)
    else:
        frame = readings[readings["metric"] == metric]
        what = str(metric)
    if frame.empty:
        known = ", ".join(sorted(map(str, readings["metric"].unique())))
        raise ModelError(f"no readings of metric {what!r} to train on (the data has: {known})")
    excluded = 0
    if exclusions is not None and not include_hazards:
        frame, excluded = drop_periods(frame, exclusions)
        if frame.empty:
            raise ModelError(f"every reading of {what!r} lies inside a hazard period: "
                             "pass --include-hazards to train on them anyway")
    if kind in GROUP_KINDS:
        if far is None:
            raise ModelError(f"{kind}: its scores are relative to thresholds calibrated for a "
                             "false-alarm rate: pass --far, e.g. 0.01")
        det = GROUP_KINDS[kind](seed=seed, **hyper).fit_calibrated(frame, far)
    elif far is not None:
        det = fit_calibrated(frame, kind, far, metric, series, seed=seed, hyper=hyper,
                             groups=groups)
    else:
        det = make_detector(kind, seed=seed, **hyper).fit(frame, metric, groups)
    det.meta["training"]["excluded_rows"] = excluded
    det.meta["training"]["include_hazards"] = bool(include_hazards)
    return TrainResult(det, len(frame), excluded)
