"""Sensor faults that last: each sensor predicted from the others, plus stuck and noisy checks.

Why another station detector: the window-based detectors (spike, mcd) compare a reading
with the readings just before it, so they see a long fault only at its start — after a
few hours a step, a drift or a stuck value *is* the recent past. A duty officer needs a
fault flagged for as long as it lasts. So this detector compares each sensor with
references that do not move with the fault:

- **residual** — each sensor's robust-scaled value predicted from the station's other
  sensors by a linear regression fitted on normal history (least squares on the training
  rows). A step, a drift or a decoupled pair leaves the residual off for as long as the
  fault lasts. Three views of it: the current residual, and its mean over the last
  ``fast`` (6) and ``slow`` (24) rows — a windowed mean stands in for an EWMA, so a score
  depends on a bounded past (``lags`` rows) and chunked scoring stays exact;
- **change residual** — each sensor's change over the last ``slow`` and ``2 × slow`` rows
  predicted from the others' changes over the same span (a regression of its own).
  Changes are coupled more tightly than levels (over 24 hourly rows the daily cycle
  cancels), so a step, a drift or a decoupled sensor stands out for up to ``2 × slow``
  rows after it starts even where the levels of the sensors are only loosely tied; the
  price is that a fault's end is seen for as long;
- **step** — the absolute step from the previous row (a spike);
- **noisy** — the log of the mean absolute step over the last ``fast`` and ``slow`` rows,
  above its training range (a sensor gone noisy; the slow one is steadier, the fast one
  earlier);
- **stuck** — how many rows back the sensor has kept (nearly) the same value: the longest
  trailing window of ``RUN_WINDOWS`` whose steps all stay within ``eps``, where ``eps`` is
  a tenth of the sensor's median training step (identical values when that median is 0).

Every component is divided by its training 99th percentile (of the distance from its
training median; the run length by its 99th percentile, at least 2 rows); the row's
statistic is the largest over components and sensors, calibrated like every detector's
score (0.5 = the rarest 1 % of training rows). Rows without ``lags`` rows of past score 0.

The features are computed without fitted parameters (values, window means, changes,
steps, window step maxima); the regression, ``eps`` and the references are applied in ``_score_rows``.
The residual of a window mean is the window mean of the residual, because the regression
is linear.

**Envelopes.** A worker's envelope brings two or three new rows per station. The generic
station path (station_batch.py) would compute the features over each station's whole
look-back block (``lags`` = 48 rows) and score station by station (fifty small calls, one
per parameter set), most of the cost. :meth:`StationResidual.score_new_rows` computes the
features of the new rows only, from windows gathered on a stations × (lags + new) ×
metrics array, and scores every row in one pass with its station's parameters laid out
per row. The numbers are those of ``score_station``: a window mean sums the same values
in the same order (the gathered window has the layout of the sliding view summed per
station), a window maximum is exact in any order, and the regressions of every parameter
set are one matrix product (``tests/unit/test_model_speed.py``: within 1e-9 on real
series).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from yujing.models.base import FeatureSchema, calibrate, calibrate_rows, reference
from yujing.models.station import StationDetector, StationState

RUN_WINDOWS = (2, 3, 4, 6, 8, 12, 16, 24, 32, 48)  # trailing windows tried for a stuck run
STEP_FLOOR = 1e-3  # scaled units: the log of a zero mean step is finite
EPS_SHARE = 0.1  # a step within a tenth of the median training step counts as "no change"
VIEWS = ("value", "fast", "slow", "step", "noisy", "noisy_slow", "change_slow", "change_long")


def _trailing_mean(x: np.ndarray, w: int, start: int) -> np.ndarray:
    """Rows ``start:`` of the mean of ``x`` over the ``w`` rows ending at each row, missing
    values left out (NaN before ``w`` rows or when the whole window is missing). Only the
    rows asked for are computed: a streaming call needs a few rows after its past."""
    n = x.shape[0]
    out = np.full((n - start, x.shape[1]), np.nan)
    first = max(start, w - 1)  # the first row with a full window
    if n <= first:
        return out
    view = sliding_window_view(x[first - w + 1:], w, axis=0)  # rows first..n-1
    ok = np.isfinite(view)
    total, count = np.where(ok, view, 0.0).sum(axis=-1), ok.sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        out[first - start:] = np.where(count > 0, total / np.maximum(count, 1), np.nan)
    return out


def _trailing_maxes(x: np.ndarray, windows: tuple[int, ...], start: int) -> list[np.ndarray]:
    """Rows ``start:`` of the maximum of ``x`` over the trailing ``w`` rows, for each ``w``
    (missing values left out). By doubling: the maximum over 2p rows is the larger of two
    of p, and a window of w is covered by two overlapping power-of-two windows. Exact, and
    a few array operations for every window at once."""
    levels = {1: x}
    p = 1
    while 2 * p <= max(windows):
        shifted = np.full_like(x, np.nan)
        shifted[p:] = levels[p][:-p]
        levels[2 * p] = np.fmax(levels[p], shifted)
        p *= 2
    out = []
    for w in windows:
        p = 1 << (w.bit_length() - 1)  # the largest power of two not above w
        back = np.full_like(x, np.nan)
        back[w - p:] = levels[p][:max(x.shape[0] - (w - p), 0)] if w > p else levels[p]
        out.append(np.fmax(levels[p], back)[start:])
    return out


def _change(z: np.ndarray, w: int) -> np.ndarray:
    """Per row, the change from ``w`` rows before (NaN for the first ``w`` rows)."""
    out = np.full_like(z, np.nan)
    out[w:] = z[w:] - z[:-w]
    return out


def _regress(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(coef, intercept): each column predicted from the others by least squares;
    coef[j, k] is the weight of column k in the prediction of column j (0 on the diagonal)."""
    m = x.shape[1]
    coef, intercept = np.zeros((m, m)), np.zeros(m)
    for j in range(m):
        others = [k for k in range(m) if k != j]
        design = np.column_stack((np.ones(x.shape[0]), x[:, others]))
        beta = np.linalg.lstsq(design, x[:, j], rcond=None)[0]
        intercept[j], coef[j, others] = beta[0], beta[1:]
    return coef, intercept


class StationResidual(StationDetector):
    kind = "residual"
    schema = FeatureSchema("residual-stuck-noisy", 1, (
        "robust_scaled_value", "mean_fast", "mean_slow", "abs_step", "log_mean_abs_step_fast",
        "log_mean_abs_step_slow", "change_slow", "change_long",
        *(f"max_abs_step_{w}" for w in RUN_WINDOWS)))

    def __init__(self, seed: int = 0, metrics: list[str] | tuple[str, ...] = (),
                 max_age_ms: int = 0, fast: int = 6, slow: int = 24) -> None:
        super().__init__(seed, metrics, max_age_ms)
        if not 2 <= int(fast) <= int(slow):
            raise ValueError(f"residual: need 2 <= fast ({fast}) <= slow ({slow}) rows")
        self.fast, self.slow = int(fast), int(slow)
        self.lags = max(2 * self.slow, RUN_WINDOWS[-1])

    def hyper(self) -> dict[str, Any]:
        return dict(super().hyper(), fast=self.fast, slow=self.slow)

    # -- features (no fitted parameters) -----------------------------------------------------

    def _features(self, z: np.ndarray, start: int) -> np.ndarray:
        if self.lags <= start < z.shape[0]:  # streaming: every new row has its whole past
            rows = np.arange(start, z.shape[0])
            return features_new(self, z[None], np.zeros(rows.size, np.int64), rows)
        step = np.full_like(z, np.nan)
        step[1:] = np.abs(z[1:] - z[:-1])
        parts = [z[start:], _trailing_mean(z, self.fast, start), _trailing_mean(z, self.slow, start),
                 step[start:],
                 np.log(np.maximum(_trailing_mean(step, self.fast, start), STEP_FLOOR)),
                 np.log(np.maximum(_trailing_mean(step, self.slow, start), STEP_FLOOR)),
                 _change(z, self.slow)[start:], _change(z, 2 * self.slow)[start:]]
        parts += _trailing_maxes(step, RUN_WINDOWS, start)
        f = np.concatenate(parts, axis=1)
        # a row without its full past gets NaN (it scores 0); later gaps are bridged by the
        # nan-means, but the row itself must be complete
        f[np.arange(start, z.shape[0]) < self.lags] = np.nan
        return f

    def _split(self, f: np.ndarray) -> dict[str, np.ndarray]:
        m = len(self.metrics)
        out = {n: f[:, k * m:(k + 1) * m] for k, n in enumerate(VIEWS)}
        out["runs"] = f[:, len(VIEWS) * m:].reshape(f.shape[0], len(RUN_WINDOWS), m)
        return out

    # -- fitting and scoring -----------------------------------------------------------------

    def _fit_rows(self, f: np.ndarray) -> dict[str, Any]:
        parts = self._split(f)
        m = len(self.metrics)
        med_step = np.median(parts["step"], axis=0)
        params: dict[str, Any] = {"eps": np.where(med_step > 0, EPS_SHARE * med_step, 1e-9)}
        for view in ("value", "change_slow", "change_long"):  # one regression per view
            params[f"coef_{view}"], params[f"intercept_{view}"] = _regress(parts[view])
        comps = self._components(parts, params)
        # (the names differ from the station's own "center" and "scale", set by station.py)
        center = {n: np.median(c, axis=0) for n, c in comps.items()}
        center["stuck"] = np.zeros(m)  # a run length is judged from none, one-sided
        params["comp_center"] = center
        params["comp_refs"] = {n: np.array([reference(np.abs(c[:, j] - center[n][j]),
                                                      floor=2.0 if n == "stuck" else 1e-9)
                                            for j in range(m)]) for n, c in comps.items()}
        params["ref"] = reference(self._statistic(comps, params), floor=1e-9)
        return params

    def _components(self, parts: dict[str, np.ndarray], params: dict[str, Any]
                    ) -> dict[str, np.ndarray]:
        """Each component per row and metric, before its training reference."""
        def resid(x: np.ndarray, view: str = "value") -> np.ndarray:
            return x - (x @ params[f"coef_{view}"].T + params[f"intercept_{view}"])

        return self.components_of(parts, resid, params["eps"])

    @staticmethod
    def components_of(parts: dict[str, np.ndarray], resid: Any, eps: np.ndarray
                      ) -> dict[str, np.ndarray]:
        """The components given the regression residual of a view (``resid(x, view)``) and
        ``eps`` per metric, or per row and metric (residual_batch.py scores rows of
        several parameter sets at once)."""
        within = parts["runs"] <= np.expand_dims(eps, -2)  # rows × windows × metrics
        longest = np.where(within, np.array(RUN_WINDOWS)[None, :, None], 0).max(axis=1)
        return {"residual": resid(parts["value"]), "residual_fast": resid(parts["fast"]),
                "residual_slow": resid(parts["slow"]), "step": parts["step"],
                "noisy": parts["noisy"], "noisy_slow": parts["noisy_slow"],
                "change_slow": resid(parts["change_slow"], "change_slow"),
                "change_long": resid(parts["change_long"], "change_long"),
                "stuck": longest.astype(np.float64)}

    @staticmethod
    def _statistic(comps: dict[str, np.ndarray], params: dict[str, Any]) -> np.ndarray:
        out = None
        for name, c in comps.items():
            d = c - params["comp_center"][name]
            if name in ("noisy", "noisy_slow", "stuck"):  # only more movement (noisy) or longer runs count
                d = np.maximum(d, 0.0)
            s = (np.abs(d) / params["comp_refs"][name]).max(axis=1)
            out = s if out is None else np.maximum(out, s)
        return out

    def _score_rows(self, f: np.ndarray, params: dict[str, Any]) -> np.ndarray:
        comps = self._components(self._split(f), params)
        return calibrate(self._statistic(comps, params), params["ref"])

    def explain(self, f: np.ndarray, params: dict[str, Any]) -> dict[str, np.ndarray]:
        """Per component, each row's largest normalised value over the metrics (for tables
        and tests: which check fired)."""
        comps = self._components(self._split(f), params)
        return {n: self._statistic({n: c}, params) for n, c in comps.items()}

    # -- a worker's envelope: the new rows of every station at once (station_batch.py) ------

    def score_new_rows(self, states: list[StationState], params: list[dict[str, Any]],
                       rk: np.ndarray, z: np.ndarray) -> np.ndarray:
        """Scores of an envelope's new rows of every station (see "Envelopes" above)."""
        return score_new_rows(self, states, params, rk, z)


def _window_mean(x: np.ndarray, row: np.ndarray, pos: np.ndarray, w: int) -> np.ndarray:
    """``residual._trailing_mean`` of the rows ``x[row, pos]`` (each with ``w`` rows behind
    it in its station): the window gathered in the sliding view's layout, then summed."""
    view = sliding_window_view(x, w, axis=1)[row, pos - w + 1]  # (n, metrics, w)
    ok = np.isfinite(view)
    total, count = np.where(ok, view, 0.0).sum(axis=-1), ok.sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def features_new(model: StationResidual, z3: np.ndarray, row: np.ndarray,
                 pos: np.ndarray) -> np.ndarray:
    """``StationResidual._features`` of the rows ``z3[row, pos]`` (stations × rows ×
    metrics; each row has at least ``lags`` rows before it in its station)."""
    step3 = np.full_like(z3, np.nan)
    step3[:, 1:] = np.abs(z3[:, 1:] - z3[:, :-1])
    z = z3[row, pos]
    fast, slow = model.fast, model.slow
    parts = [z, _window_mean(z3, row, pos, fast), _window_mean(z3, row, pos, slow),
             step3[row, pos],
             np.log(np.maximum(_window_mean(step3, row, pos, fast), STEP_FLOOR)),
             np.log(np.maximum(_window_mean(step3, row, pos, slow), STEP_FLOOR)),
             z - z3[row, pos - slow], z - z3[row, pos - 2 * slow]]
    longest = RUN_WINDOWS[-1]
    # maxima of the trailing windows of steps: suffix maxima of the longest window (fmax
    # leaves missing steps out, as residual._trailing_maxes does)
    win = sliding_window_view(step3, longest, axis=1)[row, pos - longest + 1]  # (n, m, 48)
    suffix = np.fmax.accumulate(win[:, :, ::-1], axis=2)
    parts += [suffix[:, :, w - 1] for w in RUN_WINDOWS]
    return np.concatenate(parts, axis=1)


def score_new_rows(model: StationResidual, states: list[StationState],
                   params: list[dict[str, Any]], rk: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Scores of the new rows ``z`` (scaled; row ``i`` of station ``rk[i]``, sorted by
    station), each station's state holding its ``lags`` previous rows; ``params[k]`` are
    station ``k``'s parameters (``model.params[states[k].key]``)."""
    lags, n = model.lags, rk.size
    counts = np.bincount(rk, minlength=len(states))
    used = np.flatnonzero(counts)
    slot = np.zeros(len(states), np.int64)
    slot[used] = np.arange(used.size)
    z3 = np.full((used.size, lags + int(counts.max()), z.shape[1]), np.nan)
    z3[:, :lags] = np.stack([states[s].rows for s in used.tolist()])
    row = slot[rk]
    pos = lags + np.arange(n) - np.repeat(np.cumsum(counts) - counts, counts)
    z3[row, pos] = z
    f = features_new(model, z3, row, pos)
    ok = np.isfinite(f).all(axis=1)
    out = np.zeros(n)
    if ok.any():
        table = ParamTable.of(model)
        key = np.array([table.index[s.key] for s in states], np.int64)
        out[ok] = table.score_rows(model, f[ok], key[rk[ok]])
    return out


class ParamTable:
    """Every parameter set of a residual model stacked into arrays (set × ...), built once
    per fitted or loaded model, so rows of many stations are scored with their own sets
    by indexing instead of a call per set."""

    def __init__(self, model: StationResidual) -> None:
        self.params = model.params
        sets = list(model.params.values())
        self.index = {key: i for i, key in enumerate(model.params)}

        def stack(get: Any) -> np.ndarray:
            return np.stack([np.asarray(get(p), dtype=np.float64) for p in sets])

        views = ("value", "change_slow", "change_long")
        self.coef = {v: stack(lambda p, v=v: p[f"coef_{v}"]) for v in views}  # (sets, m, m)
        self.intercept = {v: stack(lambda p, v=v: p[f"intercept_{v}"]) for v in views}
        self.eps = stack(lambda p: p["eps"])
        names = list(sets[0]["comp_center"]) if sets else []
        self.center = {c: stack(lambda p, c=c: p["comp_center"][c]) for c in names}
        self.refs = {c: stack(lambda p, c=c: p["comp_refs"][c]) for c in names}
        self.ref = stack(lambda p: p["ref"])

    @classmethod
    def of(cls, model: StationResidual) -> ParamTable:
        cached = getattr(model, "_param_table", None)
        if cached is None or cached.params is not model.params:
            cached = model._param_table = cls(model)
        return cached

    def score_rows(self, model: StationResidual, f: np.ndarray, key: np.ndarray) -> np.ndarray:
        """``StationResidual._score_rows`` of feature rows, row ``i`` with the set ``key[i]``:
        the same arithmetic, each parameter taken per row."""
        m = len(model.metrics)
        sets, which = np.unique(key, return_inverse=True)
        rows = np.arange(f.shape[0])

        def resid(x: np.ndarray, view: str = "value") -> np.ndarray:
            # the prediction of every row by every set present, one product; then its own
            coef = self.coef[view][sets].transpose(2, 0, 1).reshape(m, -1)
            pred = (x @ coef).reshape(x.shape[0], sets.size, m)[rows, which]
            return x - (pred + self.intercept[view][key])

        comps = model.components_of(model._split(f), resid, self.eps[key])
        rowwise = {"comp_center": {c: self.center[c][key] for c in comps},
                   "comp_refs": {c: self.refs[c][key] for c in comps}}
        return calibrate_rows(model._statistic(comps, rowwise), self.ref[key])
