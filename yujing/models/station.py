"""Station-level detectors: one model over several metrics of one station.

A dust collector is its inlet temperature, filter pressure differential and airflow
together, and many faults show only in how they move together (a pair that decouples, a
sensor stuck while its neighbours move), which no per-metric detector sees. A station
detector declares ``metrics`` and scores *station rows* instead of one series.

**Rows (alignment by last value carried forward).** A row is formed at every distinct
timestamp at which any of the station's metrics has a reading. Each metric contributes
its newest reading at or before that time when it is at most ``max_age_ms`` old, else
the row misses it. ``max_age_ms = 0`` (the default) learns the age limit at fit: 1.5 × the
largest of the metrics' median reading intervals, per station (or group). A row that
misses a metric, or has a missing value, scores 0: no evidence, as for the per-metric
detectors.

**Streaming.** A row's score depends on that row, the fitted parameters and, for lagged
detectors, the ``lags`` rows before it; :class:`StationState` keeps each metric's newest
reading and those rows. Scoring in chunks gives the same scores as scoring at once as
long as no timestamp is split across chunks (a split timestamp gives one row per chunk).
Rows at or before the newest row already scored (a replay) are not scored again.

The rest of the contract is :class:`~yujing.models.base.Detector`'s: scores in [0, 1]
with 0.5 as unusual as the rarest 1 % of training rows, one parameter set per station
or group plus a pooled one, the same signed save and load. ``score()`` of one series
does not apply: use :meth:`StationDetector.score_station`.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from yujing.models.base import FORMAT, POOLED, Detector, ModelError, library_versions

if TYPE_CHECKING:
    import pandas as pd

NO_READING = np.iinfo(np.int64).min
AGE_FACTOR = 1.5  # a reading stays current for 1.5 median intervals
Series = tuple[np.ndarray, np.ndarray]


@dataclass
class StationState:
    """Streaming context of one station: each metric's newest reading, the last rows."""

    station: str
    key: str
    last_ts: np.ndarray  # per metric; NO_READING before the first
    last_v: np.ndarray
    row_ts: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    rows: np.ndarray = field(default_factory=lambda: np.empty((0, 0)))

    def copy(self) -> StationState:
        return StationState(self.station, self.key, self.last_ts.copy(), self.last_v.copy(),
                            self.row_ts.copy(), self.rows.copy())


def median_interval(ts: np.ndarray) -> float:
    gaps = np.diff(np.unique(ts))
    return float(np.median(gaps)) if gaps.size else 0.0


def station_series(frame: pd.DataFrame, metrics: list[str]) -> dict[str, dict[str, Series]]:
    """station → metric → (ts, values) sorted by time, one value per timestamp (the last)."""
    out: dict[str, dict[str, Series]] = {}
    frame = frame[frame["metric"].astype(str).isin(metrics)]
    for (station, metric), g in frame.groupby(["station", "metric"], sort=True, observed=True):
        g = g.sort_values("ts", kind="stable").drop_duplicates("ts", keep="last")
        out.setdefault(str(station), {})[str(metric)] = (g["ts"].to_numpy(np.int64),
                                                          g["value"].to_numpy(np.float64))
    return out


class StationDetector(Detector):
    """Fit on the rows of several metrics per station; score aligned station rows."""

    station_level = True
    lags = 0  # rows before a row that its score looks at

    def __init__(self, seed: int = 0, metrics: list[str] | tuple[str, ...] = (),
                 max_age_ms: int = 0) -> None:
        super().__init__(seed)
        self.metrics = [str(m) for m in metrics]
        self.max_age_ms = int(max_age_ms)

    def hyper(self) -> dict[str, Any]:
        return {"seed": self.seed, "metrics": list(self.metrics), "max_age_ms": self.max_age_ms}

    # -- fitting ----------------------------------------------------------------------------

    def fit(self, history: pd.DataFrame, metric: str | None = None,
            groups: Mapping[str, str] | None = None) -> StationDetector:
        """Fit on a readings frame holding the station's metrics (``metrics``, or every
        metric in the frame); ``metric`` is ignored (a station model has several)."""
        missing = {"ts", "station", "metric", "value"} - set(history.columns)
        if missing:
            raise ModelError(f"{self.kind}: the training frame lacks column(s) "
                             f"{', '.join(sorted(missing))}: pass ts, station, metric, value")
        known = sorted(map(str, history["metric"].unique()))
        metrics = self.metrics or known
        absent = [m for m in metrics if m not in known]
        if absent or len(metrics) < 2:
            raise ModelError(f"{self.kind}: a station model needs two or more metrics present in "
                             f"the data (asked {metrics}, the data has {known}): pass --metrics "
                             "a,b,c")
        frame = history[np.isfinite(history["value"].to_numpy(np.float64))]
        self.metrics, self.metric = list(metrics), metrics[0]
        per_station = station_series(frame, self.metrics)
        self.groups = {str(k): str(v) for k, v in (groups or {}).items()}
        keyed: dict[str, list[dict[str, Series]]] = {}
        for station, series in per_station.items():
            keyed.setdefault(self.groups.get(station, station), []).append(series)
        self.params = {POOLED: self._fit_key_rows(list(per_station.values()))}
        too_short = []
        for key, parts in keyed.items():
            try:
                self.params[key] = self._fit_key_rows(parts)
            except ModelError:  # too few complete rows: this key is scored with the pooled set
                too_short.append(key)
        self.meta = {
            "format": FORMAT, "kind": self.kind, "metric": self.metric, "metrics": self.metrics,
            "seed": self.seed, "schema": self.schema.as_dict(), "hyper": self.hyper(),
            "training": {"rows": int(self.params[POOLED]["rows"]),
                         "readings": int(len(frame)), "series": len(per_station),
                         "start_ms": int(frame["ts"].min()), "end_ms": int(frame["ts"].max()),
                         "keys": len(keyed), "per": "group" if self.groups else "station",
                         "pooled_only": too_short},
            "libraries": library_versions(),
        }
        return self

    def _fit_key_rows(self, parts: list[dict[str, Series]]) -> dict[str, Any]:
        """Parameters of one key: age limit, robust scaling, then the detector's own."""
        if self.max_age_ms > 0:
            max_age = self.max_age_ms
        else:
            intervals = [median_interval(s[m][0]) for s in parts for m in s]
            max_age = int(AGE_FACTOR * max(intervals, default=0.0)) or 1
        raw = []
        for series in parts:
            state = self._blank_state("", "", 0)
            _, x = self._align(state, series, max_age)
            raw.append(x)
        x = np.concatenate(raw) if raw else np.empty((0, len(self.metrics)))
        whole = x[np.isfinite(x).all(axis=1)]
        if whole.shape[0] < 10 * (len(self.metrics) + 1):
            raise ModelError(f"{self.kind}: only {whole.shape[0]} complete station rows to train "
                             f"on (every metric current within {max_age} ms): give more history "
                             "or a larger max_age_ms")
        center = np.median(whole, axis=0)
        q75, q25 = np.percentile(whole, [75, 25], axis=0)
        scale = (q75 - q25) / 1.349  # the IQR of a normal distribution is 1.349 sigma
        fallback = np.abs(whole - center).mean(axis=0) * 1.2533
        scale = np.where(scale > 0, scale, np.where(fallback > 0, fallback, 1.0))
        feats = []
        for part in raw:  # features per station: lags never reach across stations
            f = self._features((part - center) / scale, 0)
            feats.append(f[np.isfinite(f).all(axis=1)])
        params = self._fit_rows(np.concatenate(feats))
        params.update(center=center, scale=scale, max_age=int(max_age), rows=int(whole.shape[0]))
        return params

    # -- scoring ----------------------------------------------------------------------------

    def _blank_state(self, station: str, key: str, width: int) -> StationState:
        m = len(self.metrics)
        return StationState(station, key, np.full(m, NO_READING, np.int64), np.full(m, np.nan),
                            np.empty(0, np.int64), np.empty((0, width or m)))

    def new_state(self, station: str = POOLED) -> StationState:  # type: ignore[override]
        key = self.groups.get(station, station)
        return self._blank_state(station, key if key in self.params else POOLED, 0)

    def score_station(self, series: Mapping[str, Series], state: StationState | None = None
                      ) -> tuple[np.ndarray, np.ndarray]:
        """(row timestamps, scores in [0, 1]) of one station's new readings, in streaming order.

        ``series`` maps metric → (ts, values) sorted by time; metrics the model does not use
        are ignored. ``state`` is advanced in place; None scores from scratch."""
        if not self.params:
            raise ModelError(f"{self.kind}: score before fit: train or load the model first")
        state = self.new_state() if state is None else state
        params = self.params[state.key]
        row_ts, x = self._align(state, series, int(params["max_age"]))
        z = (x - params["center"]) / params["scale"]
        start = state.rows.shape[0]
        full = np.concatenate((state.rows, z)) if start else z
        f = self._features(full, start)
        ok = np.isfinite(f).all(axis=1)
        scores = np.zeros(row_ts.size)
        if ok.any():
            scores[ok] = self._score_rows(f[ok], params)
        if self.lags:
            state.rows = full[-self.lags:].copy()
            state.row_ts = np.concatenate((state.row_ts, row_ts))[-self.lags:]
        elif row_ts.size:
            state.row_ts = row_ts[-1:].copy()
        return row_ts, scores

    def _align(self, state: StationState, series: Mapping[str, Series], max_age: int
               ) -> tuple[np.ndarray, np.ndarray]:
        """New rows (timestamps after the state's newest row) and their carried-forward values."""
        after = int(state.row_ts[-1]) if state.row_ts.size else NO_READING
        parts = []
        for metric in self.metrics:
            ts, v = series.get(metric, (np.empty(0, np.int64), np.empty(0)))
            ts, v = np.asarray(ts, dtype=np.int64), np.asarray(v, dtype=np.float64)
            if ts.size > 1 and (np.diff(ts) < 0).any():
                raise ValueError(f"{self.kind}: readings of {metric} are not sorted by time")
            keep = np.isfinite(v) & (ts > after)
            parts.append((ts[keep], v[keep]))
        row_ts = np.unique(np.concatenate([p[0] for p in parts])) if parts else np.empty(0, np.int64)
        x = np.full((row_ts.size, len(self.metrics)), np.nan)
        for j, (ts, v) in enumerate(parts):
            if state.last_ts[j] != NO_READING:
                ts = np.concatenate(([state.last_ts[j]], ts))
                v = np.concatenate(([state.last_v[j]], v))
            if ts.size == 0:
                continue
            i = np.searchsorted(ts, row_ts, side="right") - 1
            have = i >= 0
            ic = np.clip(i, 0, None)
            x[:, j] = np.where(have & (row_ts - ts[ic] <= max_age), v[ic], np.nan)
            state.last_ts[j], state.last_v[j] = ts[-1], v[-1]
        return row_ts, x

    def score_frame(self, frame: pd.DataFrame) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """station → (row timestamps, scores) over a readings frame, each station from scratch."""
        return {station: self.score_station(series, self.new_state(station))
                for station, series in station_series(frame, self.metrics).items()}

    def score(self, ts: np.ndarray, values: np.ndarray, state: Any = None) -> np.ndarray:
        raise ModelError(f"{self.kind} is a station model over {', '.join(self.metrics)}: it "
                         "scores station rows (score_station), not one series")

    def score_many(self, states: Any, ts: np.ndarray, values: np.ndarray,
                   bounds: np.ndarray) -> np.ndarray:
        return self.score(ts, values)

    def _fit_key(self, series: list[tuple[np.ndarray, np.ndarray]]) -> dict[str, Any]:
        raise ModelError(f"{self.kind}: fitted on station rows, not one series")

    def _score(self, ts: np.ndarray, v: np.ndarray, start: int,
               params: dict[str, Any]) -> np.ndarray:
        raise ModelError(f"{self.kind}: scores station rows, not one series")

    # -- what each station detector writes --------------------------------------------------

    def _features(self, z: np.ndarray, start: int) -> np.ndarray:
        """Features of rows ``z[start:]`` (robust-scaled); ``z[:start]`` are the ``lags``
        rows before them. Rows without enough past get NaN (they score 0)."""
        return z[start:]

    @abstractmethod
    def _fit_rows(self, f: np.ndarray) -> dict[str, Any]:
        """Parameters from training feature rows (all finite)."""

    @abstractmethod
    def _score_rows(self, f: np.ndarray, params: dict[str, Any]) -> np.ndarray:
        """Scores in [0, 1] of feature rows (all finite)."""
