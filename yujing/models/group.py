"""The neighbours detector as a registry model: one model per group of stations.

Why a wrapper: :class:`~yujing.models.neighbours.NeighbourDetector` works on aligned
arrays (rows × stations per metric); the registry, ``models train`` and ``models score``
work on readings frames (``ts, station, metric, value``) and on :class:`Detector`'s save
and load. This class aligns the readings and carries the fitted arrays as the model's
parameters, so a neighbours model is signed, checksummed and loaded like any other.

**Contract (docs/models.md "Registering neighbours").** A group is a fixed list of two or
more stations (``stations``; default: every station of the training data) and of metrics
(``metrics``; default: every metric). Training needs the readings of every station of the
group and a target false-alarm rate (the scores are relative to the thresholds calibrated
for it). Scoring needs the readings of every station of the group over the same time: a
station's row is predicted from the others at the same timestamp. A station of the group
absent from the data is refused with the fix (give its readings, or retrain the group
without it); a station not in the group is ignored. One row per station and timestamp at
which that station has a reading; metric column ``a+b+c``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from yujing.models.alarm import DEFAULT_SPLIT
from yujing.models.base import FORMAT, Detector, FeatureSchema, ModelError, library_versions

if TYPE_CHECKING:  # pandas and neighbours.py (which needs pandas) load when a group is used:
    import pandas as pd  # the CLI imports the model kinds before any command runs

    from yujing.models.neighbours import NeighbourDetector

VIEWS = ("z", "ewma", "cusum", "noise")  # neighbours.VIEWS (a unit test keeps them equal)
SCREENS = ("metric", "blocks")  # neighbours.SCREENS


class GroupNeighbours(Detector):
    kind = "neighbours"
    schema = FeatureSchema("neighbours-residual", 1, VIEWS)
    group_level = True  # anomaly() scores the group's rows (models/group_stream.py)
    history = 3  # readings kept per series in the engine: a row waits for its neighbours

    def __init__(self, seed: int = 0, stations: Sequence[str] = (), metrics: Sequence[str] = (),
                 screen: str = "metric", split: float = DEFAULT_SPLIT) -> None:
        super().__init__(seed)
        self.stations = [str(s) for s in stations]
        self.metrics = [str(m) for m in metrics]
        if screen not in SCREENS:
            raise ModelError(f"neighbours: screen {screen!r}: one of {', '.join(SCREENS)}")
        self.screen, self.split = screen, float(split)

    def hyper(self) -> dict[str, Any]:
        return {"seed": self.seed, "stations": list(self.stations), "metrics": list(self.metrics),
                "screen": self.screen, "split": self.split}

    # -- aligning readings ---------------------------------------------------------------------

    def _aligned(self, frame: pd.DataFrame, doing: str) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """(timestamps, metric → rows × stations, NaN for a missing reading); refuses a
        group station or a metric with no readings, naming the fix."""
        missing = {"ts", "station", "metric", "value"} - set(frame.columns)
        if missing:
            raise ModelError(f"{self.kind}: the readings lack column(s) {', '.join(sorted(missing))}")
        st = frame["station"].astype(str)
        have = set(st.unique())
        absent = [s for s in self.stations if s not in have]
        if absent:
            raise ModelError(
                f"{self.kind}: {doing} needs the readings of every station of the group "
                f"({', '.join(self.stations)}); none of {', '.join(absent)}: give their readings "
                f"in the same file, or retrain the group without them (--stations)")
        mt = frame["metric"].astype(str)
        gone = [m for m in self.metrics if not (mt == m).any()]
        if gone:
            raise ModelError(f"{self.kind}: no readings of {', '.join(gone)} to {doing} (the "
                             f"model's metrics are {', '.join(self.metrics)})")
        import pandas as pd  # lazy: see the imports

        sub = frame[st.isin(self.stations) & mt.isin(self.metrics)]
        table = sub.assign(station=st, metric=mt).pivot_table(
            index="ts", columns=["metric", "station"], values="value", aggfunc="last")
        table = table.reindex(columns=pd.MultiIndex.from_product([self.metrics, self.stations]))
        return (table.index.to_numpy(np.int64),
                {m: table[m].to_numpy(np.float64) for m in self.metrics})

    def _inner(self) -> NeighbourDetector:
        """The fitted detector over this model's parameters (built once per parameters: the
        worker asks for it at every envelope)."""
        from yujing.models.neighbours import NeighbourDetector  # lazy: see the imports

        det = getattr(self, "_det", None)
        params = self._neighbour_params()
        if det is None or det.params is not params:
            det = NeighbourDetector(self.stations, self.metrics, screen=self.screen)
            det.params = params
            self._det = det
        return det

    def _neighbour_params(self) -> dict[str, Any]:
        """The neighbours detector's parameters (a composed kind keeps them as one part)."""
        return self.params

    # -- fitting and scoring -------------------------------------------------------------------

    def fit_calibrated(self, history: pd.DataFrame, far: float) -> GroupNeighbours:
        """Fit on the first ``split`` of the range, thresholds for ``far`` on the rest."""
        if not self.stations:
            self.stations = sorted(map(str, history["station"].unique()))
        if not self.metrics:
            self.metrics = sorted(map(str, history["metric"].unique()))
        ts, values = self._aligned(history, "training")
        det = self._inner()
        det.fit(ts, values, far, self.split)
        self.params = det.params
        self.meta = {
            **self._group_meta(ts, det),
            # the scores are relative to the calibrated thresholds: 0.5 is the threshold
            "alarm": {"far": far, "series": len(self.metrics),
                      "per_series_far": det.meta["per_metric_far"], "threshold": 0.5,
                      "method": "split conformal per station and metric, Sidak over metrics",
                      "split": self.split, "calibration_from_ms": det.meta["calibration_from_ms"],
                      "calibration_scores": int(np.sum(ts >= det.meta["calibration_from_ms"])),
                      "enough_scores": not det.meta["too_few_calibration_rows"]},
        }
        return self

    def _group_meta(self, ts: np.ndarray, det: NeighbourDetector) -> dict[str, Any]:
        """The metadata every group kind writes (its alarm's is its own); sets ``metric``."""
        self.metric = "+".join(self.metrics)
        return {
            "format": FORMAT, "kind": self.kind, "metric": self.metric, "metrics": self.metrics,
            "seed": self.seed, "schema": self.schema.as_dict(), "hyper": self.hyper(),
            "training": {"rows": int(ts.size), "series": len(self.stations),
                         "start_ms": int(ts.min()), "end_ms": int(ts.max()), "keys": 1,
                         "per": "group"},
            "neighbours": {k: v for k, v in det.meta.items() if k not in ("kind", "far")},
            "libraries": library_versions(),
        }

    def fit(self, history: pd.DataFrame, metric: str | None = None,
            groups: Mapping[str, str] | None = None) -> GroupNeighbours:
        raise ModelError("neighbours: its scores are relative to calibrated thresholds: train "
                         "it with a false-alarm rate (`yujing models train --far 0.01`)")

    def score_group(self, frame: pd.DataFrame) -> pd.DataFrame:
        """ts, station, metric (``a+b+c``), score: the group scored from scratch in time
        order, one row per station and timestamp with a reading of that station."""
        if not self.params:
            raise ModelError(f"{self.kind}: score before fit: train or load the model first")
        ts, values = self._aligned(frame, "scoring")
        scores = self.score_rows(values, self.new_group_state())
        have = np.any([np.isfinite(values[m]) for m in self.metrics], axis=0)
        r, c = np.nonzero(have)
        order = np.lexsort((ts[r], c))
        r, c = r[order], c[order]
        import pandas as pd  # lazy: see the imports

        return pd.DataFrame({"ts": ts[r], "station": np.array(self.stations)[c],
                             "metric": "+".join(self.metrics), "score": scores[r, c]})

    # -- streaming (the worker: models/group_stream.py) ----------------------------------------

    @property
    def row_step_ms(self) -> int:
        """The training rows' mean spacing: a row still missing a station's reading when
        another station is this far past it is scored without it."""
        t = (self.meta or {}).get("training", {})
        rows = int(t.get("rows", 0))
        return int((t["end_ms"] - t["start_ms"]) / (rows - 1)) if rows > 1 else 3_600_000

    def new_group_state(self) -> Any:
        """The group's streaming state (EWMA, CUSUM, local level of every station)."""
        return self._inner().new_state()

    def score_rows(self, values: Mapping[str, np.ndarray], state: Any) -> np.ndarray:
        """Scores (rows × stations, 0.5 at the threshold) of aligned rows that follow those
        ``state`` has seen; ``state`` is advanced (chunks give the numbers of one pass)."""
        if not self.params:
            raise ModelError("neighbours: score before fit: train or load the model first")
        return self._inner().score(values, state)

    def _fit_key(self, series: list[tuple[np.ndarray, np.ndarray]]) -> dict[str, Any]:
        raise ModelError("neighbours fits a group of stations together: fit_calibrated")

    def _score(self, ts: np.ndarray, v: np.ndarray, start: int, params: dict[str, Any]
               ) -> np.ndarray:
        raise ModelError("neighbours scores a group of stations together, not one series: "
                         "score_group (yujing models score)")
