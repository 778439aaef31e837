"""The Numenta Anomaly Benchmark (NAB) scorer, written from its published description.

It follows NAB v1.1 (``nab/sweeper.py``, ``nab/optimizer.py``, ``nab/runner.py``):

- The first ``min(floor(0.15 n), 750)`` rows of a file are probationary: not scored.
- Inside a labelled window [a, b] (row indices, width w = b - a + 1) a detection at
  row i is worth ``S(-(b - i + 1) / w) * A_tp / S(-1)`` where
  ``S(x) = 2 / (1 + exp(5x)) - 1`` (the scaled sigmoid), so the earliest detection
  scores A_tp and later ones less. Only the best (earliest) detection of a window
  counts; a window with none costs ``-A_fn``.
- A detection outside every window costs ``S(|p - i| / (w_p - 1)) * A_fp`` where p is
  the right edge and w_p the width of the closest preceding window (-A_fp when there
  is none, and when it is more than 3 widths behind): false alarms just after a window
  cost less than far ones. Every such detection counts.
- A detection is a score >= threshold. One threshold per detector and profile is
  chosen for the whole corpus: every distinct score (and 1.1, "never") is tried and the
  best total wins, the highest threshold on a tie.
- Normalised score = 100 · (raw - null) / (perfect - null), where null is the raw
  score of the null detector (a constant score, optimised the same way) and perfect is
  A_tp times the number of labelled windows.

Profiles (``config/profiles.json``): standard A_tp 1, A_fp 0.11, A_fn 1;
reward_low_FP_rate A_fp 0.22; reward_low_FN_rate A_fn 2.

Besides the NAB score this module reports window-level precision, recall and F1 at
the chosen threshold: a window is found when any scored row in it is detected; a false
alarm is a run of consecutive detected rows outside every window.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Profile:
    tp: float
    fp: float
    fn: float


PROFILES: dict[str, Profile] = {
    "standard": Profile(1.0, 0.11, 1.0),
    "reward_low_FP_rate": Profile(1.0, 0.22, 1.0),
    "reward_low_FN_rate": Profile(1.0, 0.11, 2.0),
}
PROBATION_PERCENT = 0.15
NEVER = 1.1  # the threshold no score reaches


def scaled_sigmoid(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    with np.errstate(over="ignore"):
        val = 2.0 / (1.0 + np.exp(5.0 * x)) - 1.0
    return np.where(x > 3.0, -1.0, val)


def probation_length(n: int, percent: float = PROBATION_PERCENT) -> int:
    return int(math.ceil(min(math.floor(percent * n), percent * 5000)))


def window_indices(ts: np.ndarray, windows: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Row index ranges [a, b] of windows given as (start, end) timestamps (inclusive)."""
    out = []
    for start, end in sorted(windows):
        a = int(np.searchsorted(ts, start, side="left"))
        b = int(np.searchsorted(ts, end, side="right")) - 1
        if a <= b:
            out.append((a, b))
    return out


@dataclass
class Sweep:
    """One file's rows ready for threshold sweeps: scores, their worth, their window."""

    name: str
    scores: np.ndarray  # anomaly score per scored (non-probationary) row
    worth: np.ndarray  # weighted sweep score per scored row
    window: np.ndarray  # window id (0..k-1) or -1 outside windows, per scored row
    rows: np.ndarray  # row index in the file per scored row
    windows: int  # windows with at least one scored row
    labelled: int  # windows in the labels (for "perfect")


def sweep(name: str, scores: np.ndarray, windows: list[tuple[int, int]],
          profile: Profile, probation: int | None = None) -> Sweep:
    """Per-row worth of a detection (NAB's calcSweepScore) for one file."""
    scores = np.asarray(scores, dtype=np.float64)
    n = scores.size
    probation = probation_length(n) if probation is None else probation
    idx = np.arange(n)
    worth = np.full(n, -profile.fp)  # before any window: as far away as it gets
    win = np.full(n, -1, dtype=np.int64)
    max_tp = float(scaled_sigmoid(-1.0))
    for k, (a, b) in enumerate(windows):
        width = b - a + 1
        inside = idx[a: b + 1]
        win[a: b + 1] = k
        worth[a: b + 1] = scaled_sigmoid(-(b - inside + 1) / width) * profile.tp / max_tp
        nxt = windows[k + 1][0] if k + 1 < len(windows) else n
        after = idx[b + 1: nxt]
        if after.size:
            with np.errstate(divide="ignore", invalid="ignore"):
                pos = np.abs(b - after) / float(width - 1) if width > 1 else np.full(after.size, np.inf)
            worth[b + 1: nxt] = scaled_sigmoid(pos) * profile.fp
    keep = idx >= probation
    w = win[keep]
    found = np.unique(w[w >= 0])
    # renumber windows that have scored rows 0..m-1 (others are not scored at all)
    remap = np.full(len(windows) + 1, -1, dtype=np.int64)
    remap[found] = np.arange(found.size)
    return Sweep(name, scores[keep], worth[keep], np.where(w >= 0, remap[w], -1), idx[keep],
                 int(found.size), len(windows))


@dataclass
class Curve:
    """Total raw NAB score for every candidate threshold (descending)."""

    thresholds: np.ndarray
    totals: np.ndarray

    def best(self) -> tuple[float, float]:
        i = int(np.argmax(self.totals))  # first = highest threshold among ties, as NAB
        return float(self.thresholds[i]), float(self.totals[i])


def curve(sweeps: list[Sweep], fn: float) -> Curve:
    """NAB's calcScoreByThreshold over the rows of several files at once, vectorised."""
    s = np.concatenate([x.scores for x in sweeps]) if sweeps else np.empty(0)
    worth = np.concatenate([x.worth for x in sweeps]) if sweeps else np.empty(0)
    offsets = np.cumsum([0] + [x.windows for x in sweeps])
    win = (np.concatenate([np.where(x.window >= 0, x.window + o, -1)
                           for x, o in zip(sweeps, offsets)]) if sweeps else np.empty(0, int))
    n_windows = int(offsets[-1])
    base = -fn * n_windows
    if s.size == 0:
        return Curve(np.array([NEVER]), np.array([base]))
    order = np.argsort(-s, kind="stable")
    s, worth, win = s[order], worth[order], win[order]
    delta = np.where(win < 0, worth, 0.0)
    inw = np.flatnonzero(win >= 0)
    if inw.size:
        # per window, the running best worth in threshold order; a row adds its improvement
        o2 = inw[np.argsort(win[inw], kind="stable")]
        g = win[o2]
        span = 4.0 + fn  # worths lie in (-fn, 1]: shift each window into its own band
        shifted = worth[o2] + g * span
        first = np.ones(g.size, dtype=bool)
        first[1:] = g[1:] != g[:-1]
        run = np.maximum.accumulate(np.where(first, np.maximum(shifted, g * span - fn), shifted))
        prev = np.empty_like(run)
        prev[1:] = run[:-1]
        prev[first] = g[first] * span - fn
        delta[o2] = run - prev
    total = base + np.cumsum(delta)
    last = np.ones(s.size, dtype=bool)
    last[:-1] = s[1:] != s[:-1]
    return Curve(np.concatenate(([NEVER], s[last])), np.concatenate(([base], total[last])))


@dataclass
class FileResult:
    name: str
    score: float  # raw NAB score at the corpus threshold
    windows: int  # labelled windows
    found: int  # windows with a detection
    false_alarms: int  # runs of detections outside windows
    detections: int  # detected rows (scored part)

    @property
    def precision(self) -> float:
        d = self.found + self.false_alarms
        return self.found / d if d else float("nan")

    @property
    def recall(self) -> float:
        return self.found / self.windows if self.windows else float("nan")


def score_file(sw: Sweep, threshold: float, fn: float) -> FileResult:
    hit = sw.scores >= threshold
    fp = float(sw.worth[hit & (sw.window < 0)].sum())
    total = fp
    found = 0
    for k in range(sw.windows):
        sel = hit & (sw.window == k)
        if sel.any():
            total += float(sw.worth[sel].max())
            found += 1
        else:
            total -= fn
    out_hit = hit & (sw.window < 0)
    # a false alarm is a run of consecutive detected rows outside windows
    starts = out_hit.copy()
    prev_row = np.concatenate(([-2], sw.rows[:-1]))
    prev_hit = np.concatenate(([False], out_hit[:-1]))
    starts &= ~(prev_hit & (sw.rows - prev_row == 1))
    return FileResult(sw.name, total, sw.labelled, found, int(starts.sum()), int(hit.sum()))


@dataclass
class ProfileResult:
    profile: str
    threshold: float
    raw: float
    null: float
    perfect: float
    files: list[FileResult] = field(default_factory=list)

    @property
    def normalised(self) -> float:
        return normalise(self.raw, self.null, self.perfect)


def normalise(raw: float, null: float, perfect: float) -> float:
    return 100.0 * (raw - null) / (perfect - null) if perfect != null else float("nan")


def evaluate(scores: dict[str, np.ndarray], windows: dict[str, list[tuple[int, int]]],
             profiles: dict[str, Profile] | None = None,
             probation: dict[str, int] | None = None) -> dict[str, ProfileResult]:
    """Score a detector's per-file anomaly scores against labelled windows (row indices)."""
    profiles = PROFILES if profiles is None else profiles
    out = {}
    names = sorted(scores)
    for pname, prof in profiles.items():
        sweeps = [sweep(n, scores[n], windows.get(n, []), prof,
                        None if probation is None else probation.get(n)) for n in names]
        threshold, raw = curve(sweeps, prof.fn).best()
        nulls = [Sweep(s.name, np.full(s.scores.size, 0.5), s.worth, s.window, s.rows,
                       s.windows, s.labelled) for s in sweeps]
        _, null = curve(nulls, prof.fn).best()
        perfect = prof.tp * sum(s.labelled for s in sweeps)
        res = ProfileResult(pname, threshold, raw, null, perfect,
                            [score_file(s, threshold, prof.fn) for s in sweeps])
        out[pname] = res
    return out


def null_and_perfect(sweeps: list[Sweep], prof: Profile) -> tuple[float, float]:
    nulls = [Sweep(s.name, np.full(s.scores.size, 0.5), s.worth, s.window, s.rows, s.windows,
                   s.labelled) for s in sweeps]
    return curve(nulls, prof.fn).best()[1], prof.tp * sum(s.labelled for s in sweeps)


def f1(precision: float, recall: float) -> float:
    if not (precision + recall > 0):
        return float("nan") if math.isnan(precision) or math.isnan(recall) else 0.0
    return 2 * precision * recall / (precision + recall)
