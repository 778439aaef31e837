"""Row alarms calibrated as a whole: several detectors, one threshold, k of n rows.

Why: calibrating each detector (and, inside one, each metric) for its Šidák share of the
target rate assumes their alarms independent. They are not (a wet front moves every
sensor and both the station's own model and its neighbours'), so the union alarmed at a
quarter of the target on the Beijing fault set (docs/models.md "Calibrating the row").
Here the row itself is calibrated: the detectors' scores on the held-out training part
are turned into tail ranks, the row's statistic is the most extreme rank, and one
threshold is chosen so that the row alarms at the target rate on that part.

A hold-off asks for ``k`` of the last ``n`` rows of a station above the threshold: a
fault lasts hours, a false alarm of a correlated score is a run of one or two rows, so a
lower threshold held for ``k`` rows buys recall at the same rate. The threshold is chosen
for the alarms after the hold-off. Labels are never read here; time is passed in as row
order (rows sorted by station, then time).

**Ending.** ``k`` of ``n`` keeps alarming for up to ``n − k`` rows after the evidence has
gone: with detectors that follow a fault to its end, that tail was half the false alarms
on the fault set (rows just after a fault are normal). With ``ends = m`` the alarm also
needs one of the last ``m`` rows above the threshold: it starts as late as before and
stops within ``m`` rows of the last row above it (``m = 2`` bridges a one-row dip inside
a fault). The threshold is calibrated for the rule as used, so the rate still holds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

SINGLE_SHARE = 0.25  # with a hold-off: the share of the rate left to single rows (spikes)


def tail_rank(reference: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """1 − (share of ``reference`` scores at or above each score, with the conformal +1):
    scores of different detectors on one scale (higher is rarer on normal data)."""
    ref = np.sort(np.asarray(reference, dtype=np.float64)[np.isfinite(reference)])
    s = np.nan_to_num(np.asarray(scores, dtype=np.float64), nan=-np.inf)
    at_or_above = ref.size - np.searchsorted(ref, s, side="left")
    return 1.0 - (at_or_above + 1.0) / (ref.size + 1.0)


def k_of_n(raw: np.ndarray, group: np.ndarray, k: int, n: int) -> np.ndarray:
    """True where at least ``k`` of the last ``n`` rows of the same group (this one
    included) are True; rows sorted by group, then time."""
    if not 1 <= k <= n:
        raise ValueError(f"hold-off: need 1 <= k ({k}) <= n ({n})")
    raw = np.asarray(raw, dtype=bool)
    if k == 1 and n == 1:
        return raw.copy()
    group = np.asarray(group)
    c = np.concatenate(([0], np.cumsum(raw, dtype=np.int64)))
    i = np.arange(raw.size)
    start = np.zeros(raw.size, np.int64)  # the first row of each row's group
    if raw.size:
        new = np.concatenate(([True], group[1:] != group[:-1]))
        start = np.maximum.accumulate(np.where(new, i, 0))
    lo = np.maximum(i + 1 - n, start)
    return (c[i + 1] - c[lo]) >= k


def held_alarm(raw: np.ndarray, group: np.ndarray, k: int, n: int, ends: int = 0) -> np.ndarray:
    """``k`` of the last ``n`` rows of ``raw`` (:func:`k_of_n`), and with ``ends`` > 0 also
    one of the last ``ends`` rows (the alarm stops soon after its evidence)."""
    out = k_of_n(raw, group, k, n)
    if ends > 0:
        out &= k_of_n(raw, group, 1, ends)
    return out


def threshold_for_rate(stat: np.ndarray, group: np.ndarray, far: float, k: int = 1,
                       n: int = 1, also: np.ndarray | None = None, ends: int = 0
                       ) -> tuple[float, float]:
    """(threshold, rate): the lowest threshold on ``stat`` whose alarms (``stat >
    threshold``, then ``k`` of ``n`` with ``ends``; or ``also``) occur on at most ``far`` of the rows, and
    that rate. Alarms only fall as the threshold rises, so a bisection over the sorted
    values finds it."""
    s = np.nan_to_num(np.asarray(stat, dtype=np.float64), nan=-np.inf)
    values = np.unique(s[np.isfinite(s)])
    if values.size == 0:
        return float("inf"), 0.0
    extra = np.zeros(s.size, dtype=bool) if also is None else np.asarray(also, dtype=bool)

    def rate(t: float) -> float:
        return float((held_alarm(s > t, group, k, n, ends) | extra).mean())

    lo, hi = 0, values.size - 1  # values[hi] never alarms (nothing above the maximum)
    if rate(values[lo]) <= far:
        return float(values[lo]), rate(values[lo])
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if rate(values[mid]) <= far:
            hi = mid
        else:
            lo = mid
    return float(values[hi]), rate(values[hi])


@dataclass
class RowAlarm:
    """A row alarm over several detectors: the reference scores of each (held-out
    training part), the threshold on the combined rank, the hold-off ``k`` of ``n``, and
    a single-row threshold ``single`` (a spike lasts one to three rows: no hold-off)."""

    references: list[np.ndarray]
    threshold: float
    k: int = 1
    n: int = 1
    single: float = float("inf")
    calibration_rate: float = float("nan")
    ends: int = 0

    @staticmethod
    def combined(references: Sequence[np.ndarray], scores: Sequence[np.ndarray]) -> np.ndarray:
        """Per row the most extreme tail rank over the detectors."""
        ranks = [tail_rank(r, s) for r, s in zip(references, scores)]
        return np.max(ranks, axis=0)

    @classmethod
    def fit(cls, scores: Sequence[np.ndarray], group: np.ndarray, far: float, k: int = 1,
            n: int = 1, single_share: float = SINGLE_SHARE, ends: int = 0) -> RowAlarm:
        """Calibrate on held-out normal rows: ``scores[d]`` is detector d's score per row.
        With a hold-off (k > 1), ``single_share`` of the rate goes to single rows first,
        the hold-off threshold then takes the union up to ``far``."""
        if not 0 < far < 1:
            raise ValueError(f"far {far}: a false-alarm rate lies between 0 and 1")
        refs = [np.asarray(s, dtype=np.float64) for s in scores]
        stat = cls.combined(refs, refs)
        single = float("inf")
        if k > 1 and single_share > 0:
            single = threshold_for_rate(stat, group, single_share * far)[0]
        threshold, rate = threshold_for_rate(stat, group, far, k, n, also=stat > single, ends=ends)
        return cls(refs, threshold, k, n, single, rate, ends)

    def alarm(self, scores: Sequence[np.ndarray], group: np.ndarray) -> np.ndarray:
        """Alarms of rows sorted by group, then time (the hold-off starts afresh)."""
        stat = self.combined(self.references, scores)
        return held_alarm(stat > self.threshold, group, self.k, self.n, self.ends) | (stat > self.single)
