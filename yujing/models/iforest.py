"""scikit-learn IsolationForest over past-only window features.

Features of reading i (all from ``v[i - window : i + 1]``, computed for a whole
chunk at once, scaled by the key's training scales so one forest can serve a
group of stations):

    value_z     (v - training median) / training scale
    level_z     (v - median of the past window) / its robust scale
    jump_z      (v - previous reading) / training step scale
    mean_resid  (v - mean of the past window) / its standard deviation
    std_ratio   log of the short (last ``short`` readings) over the long standard deviation
    rate_z      (v - reading ``short`` steps back) / (``short`` · training step scale)

The forest's raw score (``-score_samples``) is turned into a robust z against the
training rows and calibrated like every detector (``base.calibrate``).

:meth:`IsolationForestDetector.score_many` scores a worker's mixed envelope in one pass:
the features of every station's new readings are built at once on a stations × (tail +
new) layout, with the same arithmetic as :meth:`features` (row-wise cumulative sums
from each tail's first reading, the same window medians), and every station's forest is
walked at once (forest.py). The scores equal those of :meth:`score` per station
(``tests/unit/test_model_speed.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from yujing.models.base import (
    Detector,
    FeatureSchema,
    ModelError,
    SeriesState,
    calibrate,
    calibrate_rows,
    reference,
    robust_scale,
)
from yujing.models.features import past_mean_std, past_median_scale, robust_rows
from yujing.models.forest import ForestBank

FEATURES = ("value_z", "level_z", "jump_z", "mean_resid", "std_ratio", "rate_z")
LIMIT = 50.0


class IsolationForestDetector(Detector):
    kind = "iforest"
    schema = FeatureSchema("iforest-window", 1, FEATURES)

    def __init__(self, seed: int = 0, window: int = 96, short: int = 6, min_periods: int = 12,
                 n_estimators: int = 100, max_samples: int = 256,
                 max_train_rows: int = 50_000) -> None:
        super().__init__(seed)
        self.window = int(window)
        self.short = int(short)
        self.min_periods = int(min_periods)
        self.n_estimators = int(n_estimators)
        self.max_samples = int(max_samples)
        self.max_train_rows = int(max_train_rows)
        self.history = self.window

    def hyper(self) -> dict[str, Any]:
        return {"seed": self.seed, "window": self.window, "short": self.short,
                "min_periods": self.min_periods, "n_estimators": self.n_estimators,
                "max_samples": self.max_samples, "max_train_rows": self.max_train_rows}

    def features(self, v: np.ndarray, start: int, scales: dict[str, float]) -> np.ndarray:
        """(len(v) - start, 6) feature rows; rows with too little past hold NaN."""
        n = v.size
        x = v[start:]
        floor = scales["floor"]
        out = np.empty((n - start, len(FEATURES)))
        out[:, 0] = (x - scales["median"]) / scales["level"]
        med, sc = past_median_scale(v, start, self.window, self.min_periods)
        out[:, 1] = (x - med) / np.maximum(sc, floor)
        prev = np.concatenate((v[:1], v[:-1]))[start:]
        out[:, 2] = (x - prev) / scales["step"]
        mean, std = past_mean_std(v, start, self.window, self.min_periods)
        out[:, 3] = (x - mean) / np.maximum(std, floor)
        # short std includes the reading itself: a burst of noise shows at once
        smean, sstd = past_mean_std(np.concatenate((v, [0.0])), start + 1, self.short,
                                    min(self.short, 2))
        out[:, 4] = np.log((sstd + floor) / (std + floor))
        back = np.maximum(np.arange(start, n) - self.short, 0)
        out[:, 5] = (x - v[back]) / (self.short * scales["step"])
        out[np.isnan(med) | np.isnan(mean)] = np.nan
        np.clip(out, -LIMIT, LIMIT, out=out)
        return out

    def _fit_key(self, series: list[tuple[np.ndarray, np.ndarray]]) -> dict[str, Any]:
        # lazy: scikit-learn takes about half a second to import and only fitting needs it
        from sklearn.ensemble import IsolationForest

        v_all = np.concatenate([v for _, v in series])
        d_all = np.concatenate([np.diff(v) for _, v in series])
        level = robust_scale(v_all)
        step = robust_scale(d_all) if d_all.size else 0.0
        tiny = 1e-6 * (abs(float(np.median(v_all))) + 1e-3)
        scales = {"median": float(np.median(v_all)), "level": max(level, step, tiny),
                  "step": max(step, 0.05 * level, tiny), "floor": max(0.2 * step, 0.02 * level, tiny)}
        X = np.concatenate([self.features(v, 0, scales) for _, v in series])
        X = X[~np.isnan(X).any(axis=1)]
        if X.shape[0] < 2:
            raise_short(self.kind, self.min_periods)
        rng = np.random.default_rng(self.seed)
        if X.shape[0] > self.max_train_rows:
            X = X[np.sort(rng.choice(X.shape[0], self.max_train_rows, replace=False))]
        forest = IsolationForest(n_estimators=self.n_estimators,
                                 max_samples=min(self.max_samples, X.shape[0]),
                                 random_state=self.seed, n_jobs=1).fit(X)
        raw = -forest.score_samples(X)
        centre = float(np.median(raw))
        spread = max(robust_scale(raw), 1e-6)
        z = (raw - centre) / spread
        return {"forest": forest, "scales": scales, "centre": centre, "spread": spread,
                "ref": reference(z)}

    def bank(self, table: dict[str, dict[str, Any]]) -> tuple[dict[str, int], ForestBank]:
        """key → index into a :class:`ForestBank` of the forests of ``table`` (key →
        parameters), built once per set of forests (a reload or refit builds a new one)."""
        forests = tuple(p["forest"] for p in table.values())
        cached = getattr(self, "_bank", None)
        if cached is None or len(cached[0]) != len(forests) or any(
                a is not b for a, b in zip(cached[0], forests)):
            cached = self._bank = (forests, {k: i for i, k in enumerate(table)},
                                   ForestBank(forests),
                                   {id(f): i for i, f in enumerate(forests)},
                                   key_arrays(table))
        return cached[1], cached[2]

    def _raw(self, X: np.ndarray, params: dict[str, Any]) -> np.ndarray:
        """``-score_samples`` of the rows of ``X`` under ``params``' forest: walked in the
        bank when the forest is one of this detector's (the same numbers, without
        scikit-learn's ten microseconds per tree and call), else by scikit-learn."""
        if self.params:
            _, bank = self.bank(self.params)
            at = self._bank[3].get(id(params["forest"]))
            if at is not None and self._bank[0][at] is params["forest"]:
                return bank.raw(X, np.full(X.shape[0], at, np.int64))
        return -params["forest"].score_samples(X)

    def prepare(self) -> None:
        """Flatten the forests now (a second or two for 50 stations) rather than at the
        first envelope: the worker calls this where it loads models, off its event loop."""
        if self.params:
            self.bank(self.params)

    def score_many(self, states: Sequence[SeriesState], ts: np.ndarray, values: np.ndarray,
                   bounds: np.ndarray) -> np.ndarray:
        """:meth:`Detector.score_many`, vectorised across series: series whose state holds
        ``window`` readings and whose new readings are all finite are scored together; the
        rest (a station's first readings, a missing value) go through :meth:`score`."""
        if not self.params:
            raise ModelError(f"{self.kind}: score() before fit(): train or load the model first")
        ts = np.asarray(ts, dtype=np.int64)
        values = np.asarray(values, dtype=np.float64)
        bounds = np.asarray(bounds, dtype=np.int64)
        out = np.empty(ts.size)
        lens = np.diff(bounds)
        k = len(states)
        ok = (np.fromiter((s.v.size for s in states), np.int64, k) >= self.window) & (lens > 0)
        bad = ~np.isfinite(values)
        if bad.any():
            ok[np.repeat(np.arange(k), lens)[bad]] = False
        for j in np.flatnonzero(~ok & (lens > 0)).tolist():
            a, b = bounds[j], bounds[j + 1]
            out[a:b] = self.score(ts[a:b], values[a:b], states[j])
        fast = np.flatnonzero(ok)
        if fast.size:
            where = self.ranges(bounds[fast], lens[fast])
            out[where] = self.score_tails([states[j] for j in fast.tolist()], self.params,
                                          values[where], ts[where], lens[fast])
        return out

    @staticmethod
    def ranges(first: np.ndarray, n: np.ndarray) -> np.ndarray:
        """The positions first[k] ... first[k] + n[k] - 1 of every k, concatenated."""
        return np.repeat(first - np.cumsum(n) + n, n) + np.arange(int(n.sum()))

    def score_tails(self, states: Sequence[SeriesState], table: dict[str, dict[str, Any]],
                    values: np.ndarray, ts: np.ndarray, n: np.ndarray) -> np.ndarray:
        """Scores of each state's new readings (``n[r]`` of them for state ``r``, one after
        the other in ``values``/``ts``; finite; the state holds at least ``window``
        readings), concatenated; each state is advanced (``table``: key → parameters)."""
        w = self.window
        scores, V = self.score_rows(np.stack([s.v[-w:] for s in states]),
                                    [s.key for s in states], table, values, n)
        ends = np.cumsum(n).tolist()
        for r, (s, m, b) in enumerate(zip(states, n.tolist(), ends)):
            s.v = V[r, m:w + m]  # a view: V is this call's own and is not written again
            s.ts = np.concatenate((s.ts[-w:], ts[b - m:b]))[-w:]
        return scores

    def score_rows(self, tails: np.ndarray, keys: Sequence[str],
                   table: dict[str, dict[str, Any]], values: np.ndarray, n: np.ndarray
                   ) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`score_tails` without states: ``tails[r]`` is series ``r``'s last
        ``window`` readings and ``keys[r]`` its key. Returns the scores and the
        (series, window + most new) array of each tail followed by its new readings."""
        w, k = self.window, len(keys)
        row = np.repeat(np.arange(k), n)
        pos = w + np.arange(int(n.sum())) - np.repeat(np.cumsum(n) - n, n)
        V = np.zeros((k, w + int(n.max())))
        V[:, :w] = tails
        V[row, pos] = values
        index, _ = self.bank(table)
        key = np.fromiter((index[s] for s in keys), np.int64, k)[row]
        return self.score_matrix(V, row, pos, key), V

    def score_matrix(self, V: np.ndarray, row: np.ndarray, pos: np.ndarray, key: np.ndarray,
                     level: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
        """Scores of the readings ``V[row, pos]`` under the forests ``key`` (indices into the
        bank :meth:`bank` built last). Each row of ``V`` starts ``window`` readings before
        its first new one: the running sums start there, as in :meth:`score_rows`.
        ``level``: the median and scale of each reading's window when the caller has them
        (the ensemble shares them with the spike member), else computed here."""
        arrays = self._bank[4]
        col = {name: arrays[name][key] for name in ("median", "level", "step", "floor")}
        out = self._features_rows(V, row, pos, col, level)
        raw = self._bank[2].raw(out, key)
        return calibrate_rows((raw - arrays["centre"][key]) / arrays["spread"][key],
                              arrays["ref"][key])

    def _features_rows(self, V: np.ndarray, row: np.ndarray, pos: np.ndarray,
                       col: dict[str, np.ndarray],
                       level: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
        """:meth:`features` of the readings ``V[row, pos]``, each with a full window behind
        it in its row; the same operations on the same numbers."""
        w, short = self.window, self.short
        x = V[row, pos]
        floor = col["floor"]
        out = np.empty((x.size, len(FEATURES)))
        out[:, 0] = (x - col["median"]) / col["level"]
        med, sc = level if level is not None else \
            robust_rows(sliding_window_view(V, w, axis=1)[row, pos - w])
        out[:, 1] = (x - med) / np.maximum(sc, floor)
        out[:, 2] = (x - V[row, pos - 1]) / col["step"]
        # features.past_mean_std: sums centred on each row's first value, cumulated per row
        c1 = np.zeros((V.shape[0], V.shape[1] + 1))
        c2 = np.zeros_like(c1)
        centred = V - V[:, :1]
        np.cumsum(centred, axis=1, out=c1[:, 1:])
        np.cumsum(centred * centred, axis=1, out=c2[:, 1:])
        mean, std = self._mean_std(c1, c2, row, pos, w, float(w))
        mean = mean + V[row, 0]
        out[:, 3] = (x - mean) / np.maximum(std, floor)
        _, sstd = self._mean_std(c1, c2, row, pos + 1, short, float(short))
        out[:, 4] = np.log((sstd + floor) / (std + floor))
        out[:, 5] = (x - V[row, pos - short]) / (short * col["step"])
        np.clip(out, -LIMIT, LIMIT, out=out)
        return out

    @staticmethod
    def _mean_std(c1: np.ndarray, c2: np.ndarray, row: np.ndarray, end: np.ndarray,
                  span: int, cnt: float) -> tuple[np.ndarray, np.ndarray]:
        s1 = c1[row, end] - c1[row, end - span]
        s2 = c2[row, end] - c2[row, end - span]
        mean = s1 / cnt
        var = np.maximum(s2 / cnt - mean * mean, 0.0)
        return mean, np.sqrt(var)

    def _score(self, ts: np.ndarray, v: np.ndarray, start: int,
               params: dict[str, Any]) -> np.ndarray:
        X = self.features(v, start, params["scales"])
        ok = ~np.isnan(X).any(axis=1)
        out = np.zeros(X.shape[0])
        if ok.any():
            raw = self._raw(X[ok], params)
            out[ok] = calibrate((raw - params["centre"]) / params["spread"], params["ref"])
        return out


def raise_short(kind: str, min_periods: int) -> None:
    raise ModelError(f"{kind}: too little history to train: each series needs more than "
                     f"{min_periods} readings")


def key_arrays(table: dict[str, dict[str, Any]]) -> dict[str, np.ndarray]:
    """Each key's scales and calibration as arrays in ``table``'s order (the bank's key
    index), so the readings of many stations take theirs by indexing."""
    params = list(table.values())
    out = {name: np.array([p["scales"][name] for p in params], dtype=np.float64)
           for name in ("median", "level", "step", "floor")}
    out.update({name: np.array([p[name] for p in params], dtype=np.float64)
                for name in ("centre", "spread", "ref")})
    return out
