"""Local neighbour residual: a sensor against its neighbours, in the units of the last two weeks.

Why another neighbour model: neighbours.py fits one scale per station and metric on the
fitted part of training and sets its thresholds on the calibration part. When the two
parts differ in kind, that breaks: the Beijing pressure of 2014-11 to 2015-02 was read to
whole hPa with offsets between the sites moving by hPa, so its neighbour residual is ten
times wider there and neighbours.py leaves pressure out (every pressure step, drift,
noise and spike was missed on the fault set). Here every quantity is judged against the
pair's *own recent past*: the level and the width of the difference between two
stations' readings, and of its hourly steps, are rolling robust statistics of the
previous ``WINDOW`` rows (14 days, the horizon of neighbours.py's local level). A change of
resolution or of the sites' relation changes the yardstick within days, while a fault of
up to three days stays a minority of the window (a median and a quartile move little).

**Pairs, not a group median.** For each pair of stations ``(i, j)``, ``x = v_i − v_j`` and
``z_ij = (x − level) / width``, level its rolling median and width its rolling
interquartile range ÷ 1.349 (a normal's standard deviation), both of the previous
``WINDOW`` rows; the width has a floor, ``FLOOR_SHARE`` of the pair's median width on the
fitted part (a calm spell of a sensor read to whole units can have a range of 0).
Station ``i``'s ``z`` is the ``z_ij`` nearest 0 over its neighbours ``j`` when they all
agree in sign, else 0 (:func:`agreed`): a station is off only as far as it is off
against every neighbour. Why pairs: a faulty neighbour moves one pair of a sound station,
which then keeps the value of a sound pair. Against a median of the neighbours'
readings, a fault at one site leaked into the others' residuals (the normal rows of the
other stations alarmed during faults, five times the calibrated rate, seed 0); a median
of the three pairs still moved to the larger of the two sound ones.

**Views**, each divided by its 99th percentile on the fitted part (per station and metric):

- ``level``: ``|z|`` (a spike, a step, a large drift);
- ``held``: the mean of ``z`` over the last ``SLOW`` rows, counted only as far as the
  median of the last ``FAST`` rows agrees in sign and size (a small shift held for a day;
  the fast median ends it within two rows of the fault's end, so the day after a step is
  not alarmed; a median, so that one row, a spike or a fault's last jump, cannot hold the
  gate open);
- ``steps``: per pair, the mean of the squared hourly steps of ``x`` over the last
  ``SHORT`` rows ÷ their rolling median over the previous ``WINDOW`` rows (at least the
  floor squared): a variance ratio, counted only as far as the median of the last
  ``FAST`` squared steps agrees (the noise is still there: a half-day mean would alarm
  for half a day after a noisy sensor recovers, and one jump, at a spike or at a fault's
  end, is not noise); the station's view is the smallest ratio over its
  pairs. A noisy sensor keeps its level but its steps no longer match any neighbour's,
  so every pair of it is wide; a noisy *neighbour* widens one pair only. A decoupled
  sensor (its own values of another day) moves in steps no neighbour makes, like a noisy one.

**Common changes are not scored.** Each station's short variance of its own hourly steps
(of ``v``: a faulty neighbour never moves it) is divided by its fitted median; where the
median of that ratio over the group's stations exceeds ``COMMON_RATIO`` times its fitted
99th percentile, the metric is not scored at that row for any station: most sites moved
together, which is a change of the source (resolution, instrument, feed), not one
sensor's fault, and the two-week yardsticks lag it by days. The rows are counted
(``common_rows``). A fault of one sensor moves that median little (the median of four is
the mean of the middle two).

**Ends** (``ends``, round "faults5"). The gates above are windows of past rows, so they
span a fault's end: the first row after a step still has two faulty rows of three in the
fast median (held alarms it), and the step back to the truth after a noisy window keeps
the median of three squared steps wide for two more rows. On the fault set those first
rows after a station's own fault were a fifth of the false alarms of ``local``'s views
(seed 0), while its yardsticks (two weeks) hardly moved. With ``"held"`` in ``ends`` the
held view also needs this row's ``z`` to agree in sign, and counts no more than its size:
a station back in line with its neighbours is not held. With ``"steps"`` the steps gate is
the smaller of the last two squared steps instead of the median of three: one jump (a
spike, a fault's end) still opens nothing, and the alarm ends one row after the noise.
Its cost: two wide steps in a row are rarer than two of three, so fewer noisy rows pass.
The default (``()``) is the old behaviour.

A row's statistic is the largest view over the metrics (NaN where no metric has one).
Labels are never read; the alarm threshold is set on the row with the other detectors
(holdoff.py).

**Causal.** Row ``t`` uses rows ``≤ t`` only (rolling windows end at ``t``; the
yardsticks at ``t − 1``). A streaming caller passes the last ``HISTORY`` rows with its new
ones and keeps the scores of the new rows; they are those of scoring the whole history
(tests/unit/test_model_local.py).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from yujing.models import local_kernel
from yujing.models.base import ModelError, reference
from yujing.models.window_median import nan_median, window_medians

WINDOW = 336  # 14 days of hourly rows: the yardsticks (level, width, step width)
MIN_ROWS = 24  # rows of history before a yardstick counts
FAST, SLOW = 3, 24  # held view: the slow mean counts as far as the fast median agrees
SHORT = 12  # steps view: squared steps averaged over half a day
FLOOR_SHARE = 0.25  # the width's floor: this share of the pair's fitted median width
COMMON_RATIO = 2.0  # the group's step ratio this many times its fitted p99: a common change
IQR_SD = 1.349  # interquartile range of a standard normal
VIEWS = ("level", "held", "steps")
HISTORY = WINDOW + SHORT + SLOW  # rows a streaming caller passes before its new rows


def _rolling(x: np.ndarray, window: int, how: str, q: float = 0.5) -> np.ndarray:
    """A rolling statistic of a column (or of each column of rows × columns, in one call:
    the same kernel per column, so the same numbers): ``how="past"`` the quantile ``q`` of
    the previous ``window`` rows (this row excluded), ``"mean"`` or ``"median"`` of the last
    ``window`` rows."""
    if how == "mean":
        return window_mean(x, window)
    s = pd.DataFrame(x) if np.ndim(x) == 2 else pd.Series(x)
    if how == "median":
        return s.rolling(window, min_periods=max(1, window // 2)).median().to_numpy()
    return s.rolling(window, min_periods=MIN_ROWS).quantile(q).shift(1).to_numpy()


def window_mean(x: np.ndarray, window: int, last: int | None = None) -> np.ndarray:
    """The mean of the finite values among the last ``window`` rows (NaN with fewer than
    half of them) of every row, or with ``last`` of the last ``last`` rows only. ``x``:
    rows, rows × columns, or more leading axes (metrics × rows × columns: the rows are
    the axis before the columns), each column its own. Why not pandas' rolling mean: it
    carries a running sum from the first row, so its last bits depend on where the series
    started; here each window is summed on its own (NaN before the first row,
    local_kernel.window_sums: numpy's pairwise order), the kernel the worker's few-rows
    path (local_tail.py) sums with, so its numbers are the one pass's to the bit."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 1:
        return window_mean(x[:, None], window, last)[:, 0]
    n = x.shape[-2]
    last = n if last is None else min(last, n)
    cols = np.moveaxis(x, -1, -2).reshape(-1, n)  # every column's rows contiguous
    total, count = local_kernel.window_sums(cols, window, n - last)
    mean = np.where(count >= max(1, window // 2), total / np.maximum(count, 1), np.nan)
    return np.moveaxis(mean.reshape(*x.shape[:-2], x.shape[-1], last), -1, -2)


def _pair(x: np.ndarray, floor: np.ndarray | float, ends: Sequence[str] = ()
          ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(z, step ratio, width) of pairs' differences ``x`` (rows, or rows × pairs with a
    ``floor`` per pair: every pair in one set of calls; see the module's docstring;
    ``ends``: the steps' gate of :func:`views`)."""
    high, low, mid = (_rolling(x, WINDOW, "past", q) for q in (0.75, 0.25, 0.5))
    width = np.fmax((high - low) / IQR_SD, floor)
    z = (x - mid) / width
    sq = np.square(np.diff(x, axis=0, prepend=np.nan))
    usual = np.fmax(_rolling(sq, WINDOW, "past"), np.square(floor))
    gate = _last_two(sq) if "steps" in ends else _rolling(sq, FAST, "median")
    ratio = np.fmin(_rolling(sq, SHORT, "mean"), gate) / usual
    return z, ratio, width


def _last_two(x: np.ndarray) -> np.ndarray:
    """The smaller of this row's and the previous row's value (NaN-aware)."""
    prev = np.concatenate((np.full((1, *np.shape(x)[1:]), np.nan), x[:-1]))
    return np.fmin(x, prev)


def agreed(z: np.ndarray) -> np.ndarray:
    """Per row (rows × pairs, NaN = missing pair, at least one present): the pair value
    nearest 0 when every present pair agrees in sign, else 0. A station is off only as
    far as it is off against *every* neighbour; a faulty neighbour moves one pair."""
    lo, hi = np.nanmin(z, axis=1), np.nanmax(z, axis=1)
    return np.where(lo > 0, lo, np.where(hi < 0, hi, 0.0))


def views(v: np.ndarray, floor: np.ndarray | None = None, usual: np.ndarray | None = None,
          common_ref: float = np.inf, ends: Sequence[str] = ()) -> dict[str, np.ndarray]:
    """The raw views (rows × stations) of one metric over the whole series, before their
    references. ``floor``: stations × stations, the width floor per pair (None: 1e-9);
    ``usual`` per station the fitted median of the short variance of its own steps,
    ``common_ref`` the fitted 99th percentile of the group's median ratio to it (None, inf:
    no row is a common change); ``ends`` the views whose gate needs this row (module
    docstring, "Ends"). Also ``width`` (rows × stations × stations), ``own``, ``group``,
    ``common`` and ``zi`` (the station ``z``). The worker's calls of a few new rows take
    local_tail.py's path instead: the same numbers for those rows, computed for them alone."""
    v = np.asarray(v, dtype=np.float64)
    if v.ndim != 2 or v.shape[1] < 2:
        raise ModelError("local: a group needs two or more stations (rows × stations)")
    n, k = v.shape
    low = np.full((k, k), 1e-9) if floor is None else np.fmax(floor, 1e-9)
    i, j = np.triu_indices(k, 1)  # every pair i < j at once
    zp, rp, wp = _pair(v[:, i] - v[:, j], low[i, j], ends)
    own = _rolling(np.square(np.diff(v, axis=0, prepend=np.nan)), SHORT, "mean")
    z, ratio, width = (np.full((n, k, k), np.nan) for _ in range(3))
    z[:, i, j], z[:, j, i], ratio[:, i, j], ratio[:, j, i] = zp, -zp, rp, rp
    width[:, i, j] = width[:, j, i] = wp
    zi, steps = np.full((n, k), np.nan), np.full((n, k), np.nan)
    some = np.isfinite(z).any(axis=2)
    zi[some] = agreed(z[some])
    some = np.isfinite(ratio).any(axis=2)
    steps[some] = np.nanmin(ratio[some], axis=1)
    fast = window_medians(zi, range(1, n + 1), FAST, 1)  # pandas' rolling median's numbers
    slow = window_mean(zi, SLOW)
    held = np.where(fast * slow > 0, np.minimum(np.abs(fast), np.abs(slow)), 0.0)
    if "held" in ends:
        held = np.where(zi * fast > 0, np.minimum(held, np.abs(zi)), 0.0)
    group = np.full(n, np.nan)
    if usual is not None:
        rel = own / np.maximum(usual, 1e-18)[None, :]
        group = nan_median(rel)  # np.nanmedian's numbers, without its masked arrays
    common = np.nan_to_num(group, nan=0.0) > COMMON_RATIO * common_ref
    ok = np.isfinite(zi) & ~common[:, None]
    return {"level": np.where(ok, np.abs(zi), np.nan), "held": np.where(ok, held, np.nan),
            "steps": np.where(ok, steps, np.nan), "width": width, "own": own, "group": group,
            "common": common, "zi": zi}


def _finite_or(x: np.ndarray, how, default: float) -> float:
    x = x[np.isfinite(x)]
    return float(how(x)) if x.size else default


class LocalResidual:
    """Fitted per metric: the pairs' width floors, the stations' usual step variance, the
    common-change reference and the views' references per station. ``ends``: the views
    whose gate needs the row itself ("held", "steps"; the module's "Ends"), fitted so too."""

    kind = "local"

    def __init__(self, stations: Sequence[str], metrics: Sequence[str], ends: Sequence[str] = ()
                 ) -> None:
        if len(stations) < 2:
            raise ModelError(f"local: a group needs two or more stations, got {list(stations)}")
        if not metrics:
            raise ModelError("local: name the metrics to model")
        self.stations, self.metrics = [str(s) for s in stations], [str(m) for m in metrics]
        self.ends = tuple(ends)
        self.floor: dict[str, np.ndarray] = {}
        self.usual: dict[str, np.ndarray] = {}
        self.common_ref: dict[str, float] = {}
        self.refs: dict[str, dict[str, np.ndarray]] = {}
        self.common_rows: dict[str, int] = {}  # rows not scored as common changes (last call)

    def fit(self, values: Mapping[str, np.ndarray]) -> LocalResidual:
        """``values[metric]``: rows × stations of normal history (NaN = missing), in time order."""
        for m in self.metrics:
            v = np.asarray(values[m], dtype=np.float64)
            if v.shape[0] < WINDOW + MIN_ROWS:
                raise ModelError(f"local: {v.shape[0]} rows of {m}: need {WINDOW + MIN_ROWS} or more")
            k = v.shape[1]
            first = views(v, ends=self.ends)
            self.floor[m] = FLOOR_SHARE * np.array(
                [[_finite_or(first["width"][:, i, j], np.median, 1.0) for j in range(k)] for i in range(k)])
            self.usual[m] = np.array([_finite_or(first["own"][:, i], np.median, np.inf) for i in range(k)])
            group = views(v, self.floor[m], self.usual[m], ends=self.ends)["group"]
            self.common_ref[m] = reference(group[np.isfinite(group)], floor=1e-9)
            raw = views(v, self.floor[m], self.usual[m], self.common_ref[m], self.ends)
            self.refs[m] = {n: np.array([_finite_or(raw[n][:, i], lambda x: reference(x, floor=1e-9),
                                                    np.inf) for i in range(k)]) for n in VIEWS}
        return self

    def explain(self, values: Mapping[str, np.ndarray], zi: dict[str, np.ndarray] | None = None
                ) -> dict[str, dict[str, np.ndarray]]:
        """metric → view → rows × stations, each ÷ its fitted reference (1: the fitted 99th
        percentile). ``zi``: a streaming caller's metric → the station ``z`` of its last
        ``SLOW − 1`` rows, replaced by those of these rows (what local_tail.py's few-rows
        path reads next)."""
        if not self.refs:
            raise ModelError("local: score before fit: fit on normal history first")
        out = {}
        for m in self.metrics:
            raw = views(np.asarray(values[m], dtype=np.float64), self.floor[m], self.usual[m],
                        self.common_ref[m], self.ends)
            if zi is not None:
                zi[m] = raw["zi"][-(SLOW - 1):]
            self.common_rows[m] = int(raw["common"].sum())
            out[m] = {n: raw[n] / self.refs[m][n][None, :] for n in VIEWS}
        return out

    def statistic(self, values: Mapping[str, np.ndarray],
                  view: str | Sequence[str] | None = None) -> np.ndarray:
        """Rows × stations: the largest view ÷ reference over views and metrics (NaN: none);
        with ``view`` (a name or several), over those views only.

        Why a subset: ranked as one score, the views share one tail, and the view with the
        heaviest tail on normal rows takes most of the alarm budget. Ranked as separate
        parts (holdoff.py), each gets its own tail: bench/models_eval.py ranks the size
        views (``level``, ``held``) apart from ``steps`` (bench/README.md round "faults4")."""
        wanted = VIEWS if view is None else ((view,) if isinstance(view, str) else tuple(view))
        unknown = [v for v in wanted if v not in VIEWS]
        if unknown or not wanted:
            raise ModelError(f"local: no view {', '.join(map(repr, unknown)) or 'named'} "
                             f"(views: {', '.join(VIEWS)})")
        out = None
        for per_view in self.explain(values).values():
            for name, s in per_view.items():
                if name in wanted:
                    out = s if out is None else np.fmax(out, s)
        return out
