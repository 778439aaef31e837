"""The sensor-faults kind: the bench's best fault detector as a registry group model.

Why: on the injected-fault set (bench/faults.py) the best detector was a composition
that only bench/models_eval.py could run (``--calibrate rows``, parts
``neighbours|stuck|saturation|local.size.ends|local.steps.ends``, ``--latch
local.steps.ends:0.0002:0.1:3``; bench/README.md rounds "faults5" and "faults6"), while
the worker could run only ``neighbours``. This kind holds the fitted parts, their row
alarm and the latch, is trained with ``yujing models train --detector sensor-faults
--far R``, saved and loaded signed like every model (its parameters are arrays, numbers
and lists: skops, never pickle), scored by ``yujing models score``, and streamed by the
worker through group_stream.py like neighbours (docs/models.md "Sensor faults").

**Fit (the bench's, step for step).** The training range is split in time at ``split``
(0.5, as the bench's figures): neighbours is fitted and calibrated for ``far`` as its own
kind; stuck, saturation (only when the metrics include DEWP and TEMP) and local (views
gated on the row, local.py "Ends") are fitted on the first part. The training readings
are then scored in time order and each part's scores on the station rows of the second
part are the references of the row alarm (holdoff.py: the most extreme tail rank over
the parts, one threshold) and of the latch (latch.py), calibrated together for ``far``.
Labels are never read.

**Score.** A station row (a timestamp at which the station has a reading of the model's
metrics) alarms when its most extreme rank is above the threshold or the latch holds;
the score is that rank mapped to 0.5 at the threshold (linear on each side, 1 at rank 1)
and, on a latched row, at least :data:`LATCHED` (the alarm is ``score > 0.5``, so a rule
``anomaly(model=NAME) > 0.5`` raises exactly where the bench composition alarms).

**Streaming.** Every part carries its state across calls (fault_parts.py); any chunking
of the rows gives the numbers of one pass.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from yujing.models.base import FeatureSchema, ModelError
from yujing.models.group import GroupNeighbours

if TYPE_CHECKING:  # pandas-backed parts load when the kind is used (see group.py)
    import pandas as pd

    from yujing.models.fault_parts import FaultsState

PARTS = ("neighbours", "stuck", "saturation", "local.size.ends", "local.steps.ends")
DEFAULT_LATCH = "local.steps.ends:0.0002:0.1:3"  # bench/README.md round "faults6"
DEFAULT_SPLIT = 0.5  # the share the bench's figures fit the parts on
LATCHED = 0.51  # the least score of a latched row (any row alarmed scores above 0.5)
SATURATION = ("DEWP", "TEMP")  # saturation's metrics: the part is left out without both


class SensorFaults(GroupNeighbours):
    kind = "sensor-faults"
    schema = FeatureSchema("sensor-faults", 1, PARTS)
    group_level = True
    history = 3

    def __init__(self, seed: int = 0, stations: Sequence[str] = (), metrics: Sequence[str] = (),
                 screen: str = "metric", split: float = DEFAULT_SPLIT,
                 latch: str = DEFAULT_LATCH) -> None:
        super().__init__(seed, stations, metrics, screen, split)
        self.latch = str(latch or "")
        self._rules()  # a malformed latch is refused before any fitting

    def hyper(self) -> dict[str, Any]:
        return {**super().hyper(), "latch": self.latch}

    @property
    def parts(self) -> list[str]:
        """The parts of the row alarm, in the bench's order (saturation needs DEWP, TEMP)."""
        sat = all(m in self.metrics for m in SATURATION) or not self.metrics
        return [p for p in PARTS if p != "saturation" or sat]

    def _rules(self) -> list:
        from yujing.models.latch import LatchRule

        if not self.latch:
            return []
        try:
            return [LatchRule.parse(self.latch, self.parts)]
        except ValueError as exc:
            raise ModelError(f"{self.kind}: {exc}") from None

    def _neighbour_params(self) -> dict[str, Any]:
        return (self.params or {}).get("neighbours") or {}  # unfitted: score_rows says so

    def _checks(self) -> tuple[dict[str, np.ndarray], Any, Any]:
        """(stuck's references, the saturation check or None, the local model) over this
        model's parameters, built once per parameters (the worker asks at every envelope)."""
        from yujing.models.fault_parts import ENDS
        from yujing.models.local import LocalResidual
        from yujing.models.saturation import SaturationCheck

        held = getattr(self, "_held", None)
        if held is not None and held[0] is self.params:
            return held[1]
        p = self.params
        sat = None
        if "saturation" in self.parts:
            sat = SaturationCheck(*SATURATION, clip=bool(p["saturation"].get("clip", False)))
            sat.top = np.asarray(p["saturation"]["top"], dtype=np.float64)
        loc = LocalResidual(range(len(self.stations)), self.metrics, ENDS)
        q = p["local"]
        loc.floor, loc.usual = dict(q["floor"]), dict(q["usual"])
        loc.common_ref = {m: float(x) for m, x in q["common_ref"].items()}
        loc.refs = {m: dict(r) for m, r in q["refs"].items()}
        out = (dict(p["stuck"]), sat, loc)
        self._held = (self.params, out)
        return out

    # -- the parts ------------------------------------------------------------------------------

    def _part_scores(self, values: Mapping[str, np.ndarray], state: FaultsState
                     ) -> tuple[list[np.ndarray], np.ndarray]:
        """(each part's score, rows × stations, in :attr:`parts` order; the station rows
        with a reading); ``state`` advanced."""
        from yujing.models.fault_parts import local_statistics, stuck_statistic

        stuck_refs, sat, loc = self._checks()
        v = {m: np.asarray(values[m], dtype=np.float64) for m in self.metrics}
        out = [self._inner().score(v, state), stuck_statistic(stuck_refs, v, state)]
        if sat is not None:
            out.append(sat.statistic(v))
        out += list(local_statistics(loc, v, state))
        present = np.any([np.isfinite(v[m]) for m in self.metrics], axis=0)
        return out, present

    # -- fitting --------------------------------------------------------------------------------

    def fit_calibrated(self, history: pd.DataFrame, far: float) -> SensorFaults:
        """Fit the parts and calibrate the row alarm (and latch) for ``far``: the module's
        "Fit"."""
        from yujing.models.fault_parts import ENDS
        from yujing.models.holdoff import RowAlarm
        from yujing.models.latch import LatchedAlarm
        from yujing.models.local import LocalResidual
        from yujing.models.neighbours import NeighbourDetector
        from yujing.models.saturation import SaturationCheck
        from yujing.models.stuck import StuckCheck

        if not self.stations:
            self.stations = sorted(map(str, history["station"].unique()))
        if not self.metrics:
            self.metrics = sorted(map(str, history["metric"].unique()))
        rules = self._rules()
        ts, values = self._aligned(history, "training")
        det = NeighbourDetector(self.stations, self.metrics, screen=self.screen)
        det.fit(ts, values, far, self.split)
        cut = int(ts.min()) + int(self.split * (int(ts.max()) - int(ts.min())))
        first = {m: v[ts < cut] for m, v in values.items()}
        loc = LocalResidual(range(len(self.stations)), self.metrics, ENDS).fit(first)
        self.params = {
            "neighbours": det.params, "stuck": StuckCheck(self.metrics).fit(first).ref,
            "local": {"floor": loc.floor, "usual": loc.usual, "refs": loc.refs,
                      "common_ref": {m: float(x) for m, x in loc.common_ref.items()}}}
        if "saturation" in self.parts:
            self.params["saturation"] = {"top": SaturationCheck(*SATURATION).fit(first).top,
                                         "clip": True}
        scores, present = self._part_scores(values, self.new_group_state())
        cal = (present & (ts >= cut)[:, None]).T  # stations × rows: sorted by station, then time
        group = np.nonzero(cal)[0]
        cols = [s.T[cal] for s in scores]
        try:
            if rules:
                fitted = LatchedAlarm.fit(cols, group, far, rules)
                levels = [[float(a), float(b)] for a, b in fitted.levels]
            else:
                fitted, levels = RowAlarm.fit(cols, group, far), []
        except ValueError as exc:
            raise ModelError(f"{self.kind}: {exc}") from None
        self.params["alarm"] = {
            "references": [np.sort(c[np.isfinite(c)]) for c in cols],
            "threshold": float(fitted.threshold), "levels": levels,
            "rules": [[r.part, r.start_rate, r.keep_rate, r.patience] for r in rules]}
        self._describe(ts, det, far, cut, int(group.size), float(fitted.calibration_rate))
        return self

    def _describe(self, ts: np.ndarray, det: Any, far: float, cut: int, rows: int,
                  rate: float) -> None:
        self.meta = {
            **self._group_meta(ts, det), "parts": self.parts,
            # the CLI's keys as neighbours writes them: one row alarm, its own calibration
            "alarm": {"far": far, "threshold": 0.5, "split": self.split, "series": 1,
                      "per_series_far": far, "calibration_scores": rows,
                      "enough_scores": bool(np.isfinite(self.params["alarm"]["threshold"])
                                            and rows * far >= 1),
                      "method": "row alarm over the parts' tail ranks (holdoff.py)"
                                + (f", latch {self.latch} (latch.py)" if self.latch else ""),
                      "rank_threshold": self.params["alarm"]["threshold"],
                      "latch_levels": self.params["alarm"]["levels"],
                      "calibration_from_ms": cut,
                      "calibration_rate": rate},
        }

    # -- streaming (the worker: models/group_stream.py) ------------------------------------------

    def new_group_state(self) -> FaultsState:
        """Every part's streaming state (fault_parts.py), empty."""
        from yujing.models.fault_parts import new_state

        return new_state(self._inner().new_state(), self.metrics, len(self.stations),
                         [r.patience for r in self._rules()])

    def score_rows(self, values: Mapping[str, np.ndarray], state: FaultsState) -> np.ndarray:
        """Scores (rows × stations; above 0.5 where the row alarms) of aligned rows that
        follow those ``state`` has seen; ``state`` is advanced (chunks: one pass's numbers)."""
        from yujing.models.fault_parts import latch_from

        if not self.params:
            raise ModelError(f"{self.kind}: score before fit: train or load the model first")
        a = self.params["alarm"]
        scores, present = self._part_scores(values, state)
        ranks = [rank(ref, s) for ref, s in zip(a["references"], scores)]
        best = np.max(ranks, axis=0)
        thr = float(a["threshold"])
        alarm = best > thr
        for i, ((part, _, _, patience), (hi, lo)) in enumerate(zip(a["rules"], a["levels"])):
            r = ranks[int(part)]
            alarm |= latch_from(r > hi, r > lo, present, int(patience), state, i)
        alarm &= present
        low = 0.5 * best / max(thr, 1e-12)
        high = 0.5 + 0.5 * (best - thr) / max(1.0 - thr, 1e-12)
        score = np.where(best > thr, high, low)
        return np.where(alarm, np.maximum(score, np.where(best > thr, np.nextafter(0.5, 1.0),
                                                          LATCHED)), np.minimum(score, 0.5))


def rank(reference: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """holdoff.tail_rank against references already sorted and finite (stored so: the
    worker does not sort them at every call); the same arithmetic, so the same ranks."""
    s = np.nan_to_num(np.asarray(scores, dtype=np.float64), nan=-np.inf)
    at_or_above = reference.size - np.searchsorted(reference, s, side="left")
    return 1.0 - (at_or_above + 1.0) / (reference.size + 1.0)

