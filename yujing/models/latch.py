"""A latch on the row alarm: once one part is sure, keep alarming while it stays high.

Why: the row alarm (holdoff.py) judges every row on its own, at one threshold on the
most extreme tail rank of its parts. A fault lasts hours, but its evidence does not hold
at that level on every row: on the injected-fault set a noisy sensor's step view
(``local.steps``) dips below the threshold whenever one of its last two steps happens to
be small, so 43 % of the noisy rows were missed while the fault was already found
(bench/README.md round "faults6": an oracle that kept alarming from the detector's own
first alarm to each fault's end would lift row F1 over all fault rows from 0.720 to
0.808 at seed 0). Lowering the threshold for every row costs false alarms everywhere;
a hold-off (k of n) delays the start and runs on after the end.

A latch is a hysteresis on one part's tail rank: it **starts** on a row where the part's
rank is above ``start`` (a level normal rows reach far more rarely than the row
threshold: the alarm is then sure) and **keeps** alarming while the part's rank has been
above ``keep`` (a much lower level) in one of the last ``patience`` rows of the same
station (a dip of up to ``patience − 1`` rows does not end it). It ends at the first row
where that fails, so it runs on past a fault's end only as far as the part itself does,
plus ``patience − 1`` rows.

Both levels are quantiles of the part's rank on the held-out normal training rows
(``start_rate``, ``keep_rate``: the share of those rows above them), and the row
threshold is calibrated afterwards for the union (row alarm or latch) at the target
rate, on the same rows: the latch spends part of the false-alarm budget, the rest goes
to the row threshold. Labels are never read. Rows are sorted by station, then time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from yujing.models.holdoff import k_of_n, tail_rank, threshold_for_rate


def latch(start: np.ndarray, keep: np.ndarray, group: np.ndarray) -> np.ndarray:
    """True from a row where ``start`` holds for as long as ``keep`` holds without a break
    in the same group (rows sorted by group, then time); ``start`` rows are always True.

    Vectorised: a run of ``keep | start`` rows alarms from its first ``start`` row on."""
    start, keep, group = np.asarray(start, dtype=bool), np.asarray(keep, dtype=bool), np.asarray(group)
    if not start.shape == keep.shape == group.shape:
        raise ValueError("latch: start, keep and group need one value per row")
    on = keep | start
    if on.size == 0:
        return on.copy()
    i = np.arange(on.size)
    new = np.ones(on.size, dtype=bool)  # a row that begins a run (new group or after a gap)
    new[1:] = (group[1:] != group[:-1]) | ~on[:-1]
    run_start = np.maximum.accumulate(np.where(new, i, 0))
    last_start = np.maximum.accumulate(np.where(start, i, -1))
    return on & (last_start >= run_start)


@dataclass(frozen=True)
class LatchRule:
    """A latch on part ``part`` (index into the row alarm's parts): starts above the rank
    normal rows exceed with share ``start_rate``, keeps while above the one of share
    ``keep_rate`` in one of the last ``patience`` rows."""

    part: int
    start_rate: float
    keep_rate: float
    patience: int = 1

    def __post_init__(self) -> None:
        if not 0 < self.start_rate <= self.keep_rate < 1:
            raise ValueError(f"latch: need 0 < start rate ({self.start_rate}) <= keep rate "
                             f"({self.keep_rate}) < 1")
        if self.patience < 1:
            raise ValueError(f"latch: patience {self.patience} < 1")

    @classmethod
    def parse(cls, text: str, names: Sequence[str]) -> LatchRule:
        """``PART:START:KEEP[:PATIENCE]``, PART one of ``names`` (e.g.
        ``local.steps.ends:0.0002:0.1:3``)."""
        bits = text.split(":")
        if len(bits) not in (3, 4) or bits[0] not in names:
            raise ValueError(f"latch {text!r}: write PART:START:KEEP[:PATIENCE], PART one of "
                             f"{', '.join(names)}")
        return cls(list(names).index(bits[0]), float(bits[1]), float(bits[2]),
                   int(bits[3]) if len(bits) == 4 else 1)


@dataclass
class LatchedAlarm:
    """The row alarm of holdoff.py (one threshold on the most extreme rank, no hold-off)
    or the latches of ``rules``; levels and threshold from held-out normal rows."""

    references: list[np.ndarray]
    threshold: float
    rules: list[LatchRule]
    levels: list[tuple[float, float]] = field(default_factory=list)  # (start, keep) ranks
    calibration_rate: float = float("nan")

    @classmethod
    def fit(cls, scores: Sequence[np.ndarray], group: np.ndarray, far: float,
            rules: Sequence[LatchRule]) -> LatchedAlarm:
        """Calibrate on held-out normal rows (``scores[d]``: part d's score per row,
        sorted by group, then time): the latch levels first, then the row threshold for
        the union at ``far``. Raises when the latches alone exceed ``far`` there."""
        if not 0 < far < 1:
            raise ValueError(f"far {far}: a false-alarm rate lies between 0 and 1")
        refs = [np.asarray(s, dtype=np.float64) for s in scores]
        for r in rules:
            if not 0 <= r.part < len(refs):
                raise ValueError(f"latch: no part {r.part} (parts 0 to {len(refs) - 1})")
        ranks = [tail_rank(ref, ref) for ref in refs]
        levels = [(float(np.quantile(ranks[r.part], 1 - r.start_rate)),
                   float(np.quantile(ranks[r.part], 1 - r.keep_rate))) for r in rules]
        out = cls(refs, float("inf"), list(rules), levels)
        latched = out._latched(ranks, group)
        if latched.mean() > far:
            raise ValueError(f"latch: the latches alone alarm on {latched.mean():.4f} of the "
                             f"calibration rows, above the target {far}")
        out.threshold, out.calibration_rate = threshold_for_rate(np.max(ranks, axis=0), group,
                                                                 far, also=latched)
        return out

    def _latched(self, ranks: Sequence[np.ndarray], group: np.ndarray) -> np.ndarray:
        group = np.asarray(group)
        out = np.zeros(np.asarray(ranks[0]).shape, dtype=bool)
        for r, (hi, lo) in zip(self.rules, self.levels):
            keep = k_of_n(ranks[r.part] > lo, group, 1, r.patience)
            out |= latch(ranks[r.part] > hi, keep, group)
        return out

    def parts(self, scores: Sequence[np.ndarray], group: np.ndarray
              ) -> tuple[np.ndarray, np.ndarray]:
        """(row alarm, latch alarm) of rows sorted by group, then time."""
        ranks = [tail_rank(r, s) for r, s in zip(self.references, scores)]
        return np.max(ranks, axis=0) > self.threshold, self._latched(ranks, group)

    def alarm(self, scores: Sequence[np.ndarray], group: np.ndarray) -> np.ndarray:
        """Alarms of rows sorted by group, then time (each group starts unlatched)."""
        row, latched = self.parts(scores, group)
        return row | latched
