"""The one contract every anomaly detector obeys.

A detector is fitted on a readings frame (``ts`` epoch ms UTC, ``station``,
``metric``, ``value``: DESIGN's readings CSV after parsing) and then scores
sorted series in streaming order: the score of a reading depends only on that
reading and the ``history`` readings before it in its series, never on a later
one. So the worker can score an envelope with a small per-series tail
(:class:`SeriesState`), and ``score_series`` over a whole series gives exactly
the same numbers as streaming it reading by reading.

Scores are in [0, 1]. Every detector turns its raw statistic into a robust
z-like value and calibrates it against what it saw in training:
``score = 1 - 2 ** (-z / ref)`` where ``ref`` is the 99th percentile of that
z in training. So 0.5 means "as unusual as the rarest 1 % of training", 0.75
twice that, 0.9 about 3.3 times; normal readings sit well below 0.5.

Save/load writes a folder: ``model.skops`` (the fitted parameters in skops, the secure
format for scikit-learn: never pickle) and ``meta.json`` (kind, metric, feature schema and
its hash, training range, library versions, parameters, the sha256 of ``model.skops``),
signed with an HMAC under the operator's key (signing.py). Loading (persist.py) checks
the signature, then the checksum, then the feature schema, and only then parses the
payload, so a planted, tampered or stale model fails loudly with the fix instead of
running code or scoring nonsense.
"""

from __future__ import annotations

import hashlib
import json
import platform
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from yujing.models import codec, signing
from yujing.models.codec import PAYLOAD
from yujing.models.errors import ChecksumError, ModelError, SchemaError, SignatureError

if TYPE_CHECKING:
    import pandas as pd

POOLED = "*"  # the parameters fitted on every series: used for stations not seen in training
META = "meta.json"
FORMAT = 2  # 1: pickle, unsigned (refused since); 2: skops payload, signed meta.json


@dataclass(frozen=True)
class FeatureSchema:
    """Names and version of what a detector computes from a series; hashed into the metadata."""

    name: str
    version: int
    features: tuple[str, ...]

    @property
    def hash(self) -> str:
        text = json.dumps({"name": self.name, "version": self.version,
                           "features": list(self.features)}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "features": list(self.features),
                "hash": self.hash}


@dataclass
class SeriesState:
    """Streaming context of one series: its key and the newest ``history`` readings."""

    station: str
    key: str
    ts: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    v: np.ndarray = field(default_factory=lambda: np.empty(0, np.float64))

    def copy(self) -> SeriesState:
        return SeriesState(self.station, self.key, self.ts.copy(), self.v.copy())


def calibrate(z: np.ndarray, ref: float) -> np.ndarray:
    """Robust z (>= 0) to a score in [0, 1): 0.5 at ``ref``, 0.75 at twice ``ref``."""
    z = np.nan_to_num(np.maximum(z, 0.0), nan=0.0, posinf=1e6)
    return -np.expm1(-np.log(2.0) * z / max(ref, 1e-9))


def calibrate_rows(z: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """:func:`calibrate` with one ``ref`` per element (readings of several series at once);
    the same arithmetic, so the same numbers as calibrating each series on its own."""
    z = np.nan_to_num(np.maximum(z, 0.0), nan=0.0, posinf=1e6)
    return -np.expm1(-np.log(2.0) * z / np.maximum(ref, 1e-9))


def unusualness(scores: np.ndarray) -> np.ndarray:
    """Calibrated score back to its z in units of the training reference (score 0.5 → 1)."""
    return -np.log2(np.maximum(1.0 - np.asarray(scores, dtype=np.float64), 1e-300))


def reference(z: np.ndarray, floor: float = 3.0, q: float = 99.0) -> float:
    """The training z that should score 0.5: its ``q``th percentile, never below ``floor``."""
    z = z[np.isfinite(z)]
    return float(max(np.percentile(z, q), floor)) if z.size else floor


def robust_scale(x: np.ndarray) -> float:
    """1.4826 · MAD, or the mean absolute deviation when more than half the values tie."""
    x = x[np.isfinite(x)]
    if x.size == 0:
        return 0.0
    med = np.median(x)
    dev = np.abs(x - med)
    mad = 1.4826 * float(np.median(dev))
    return mad if mad > 0 else 1.2533 * float(dev.mean())


def huber_line(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """(slope, intercept) of a Huber regression of ``y`` on ``x`` (a few bad readings in the
    history do not pull the line)."""
    # lazy: scikit-learn is heavy; only fitting needs it
    from sklearn.linear_model import HuberRegressor

    sx = robust_scale(x) or 1.0
    sy = robust_scale(y) or 1.0
    mx, my = float(np.median(x)), float(np.median(y))
    reg = HuberRegressor(max_iter=500).fit(((x - mx) / sx)[:, None], (y - my) / sy)
    slope = float(reg.coef_[0]) * sy / sx
    return slope, my + sy * float(reg.intercept_) - slope * mx


def library_versions() -> dict[str, str]:
    # lazy: pandas and scikit-learn are only read for their versions when a model is saved
    import pandas as pd

    out = {"python": platform.python_version(), "numpy": np.__version__,
           "pandas": pd.__version__}
    try:
        import sklearn
        out["scikit-learn"] = sklearn.__version__
    except ImportError:  # pragma: no cover - scikit-learn is a dependency
        pass
    try:
        from importlib.metadata import version
        out["yujing"] = version("yujing")
    except Exception:
        pass
    return out


def split_series(history: pd.DataFrame) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """station → (ts, values) sorted by time, duplicates (same ts) keeping the last row."""
    out = {}
    for station, g in history.groupby("station", sort=True, observed=True):
        g = g.sort_values("ts", kind="stable").drop_duplicates("ts", keep="last")
        out[str(station)] = (g["ts"].to_numpy(np.int64), g["value"].to_numpy(np.float64))
    return out


class Detector(ABC):
    """Fit on history, score sorted series in streaming order, save and load with metadata."""

    kind: ClassVar[str]
    schema: ClassVar[FeatureSchema]
    history: int = 0  # past readings of a series the score of one reading looks at
    # True when the scores are already alarm-style (record-filtered): evaluation then
    # applies no RecordFilter of its own (see ensemble.py)
    alarm_style: bool = False

    def __init__(self, seed: int = 0) -> None:
        self.seed = int(seed)
        self.metric: str | None = None
        self.groups: dict[str, str] = {}  # station → group key (per-group models)
        self.params: dict[str, Any] = {}  # key (station, group or POOLED) → fitted parameters
        self.meta: dict[str, Any] = {}

    # -- the contract ---------------------------------------------------------------------

    def fit(self, history: pd.DataFrame, metric: str | None = None,
            groups: Mapping[str, str] | None = None) -> Detector:
        """Fit on a readings frame (ts ms, station, metric, value); one parameter set per
        station (or per group when ``groups`` maps station → group) plus a pooled one."""
        missing = {"ts", "station", "metric", "value"} - set(history.columns)
        if missing:
            raise ModelError(f"{self.kind}: the training frame lacks column(s) "
                             f"{', '.join(sorted(missing))}: pass ts, station, metric, value")
        metrics = sorted(map(str, history["metric"].unique()))
        if metric is None:
            if len(metrics) != 1:
                raise ModelError(f"{self.kind}: the training data has metrics {metrics}: "
                                 "choose one with metric=... (--metric)")
            metric = metrics[0]
        frame = history[history["metric"] == metric]
        frame = frame[np.isfinite(frame["value"].to_numpy(np.float64))]
        if frame.empty:
            raise ModelError(f"{self.kind}: no finite readings of {metric!r} to train on")
        series = split_series(frame)
        self.metric = metric
        self.groups = {str(k): str(v) for k, v in (groups or {}).items()}
        keyed: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {}
        for station, s in series.items():
            keyed.setdefault(self.groups.get(station, station), []).append(s)
        self.params = {key: self._fit_key(parts) for key, parts in keyed.items()}
        self.params[POOLED] = self._fit_key(list(series.values()))
        self.meta = {
            "format": FORMAT, "kind": self.kind, "metric": metric, "seed": self.seed,
            "schema": self.schema.as_dict(), "hyper": self.hyper(),
            "training": {"rows": int(len(frame)), "series": len(series),
                         "start_ms": int(frame["ts"].min()), "end_ms": int(frame["ts"].max()),
                         "keys": len(keyed), "per": "group" if self.groups else "station"},
            "libraries": library_versions(),
        }
        return self

    def new_state(self, station: str = POOLED) -> SeriesState:
        """The empty streaming context of a station's series."""
        key = self.groups.get(station, station)
        return SeriesState(station, key if key in self.params else POOLED)

    def score(self, ts: np.ndarray, values: np.ndarray,
              state: SeriesState | None = None) -> np.ndarray:
        """Scores in [0, 1] for readings of one series sorted by time, in streaming order.

        ``state`` carries the series' previous readings and is advanced in place;
        None scores the arrays as a whole series from scratch. Inputs are not modified.
        """
        if not self.params:
            raise ModelError(f"{self.kind}: score() before fit(): train or load the model first")
        ts = np.asarray(ts, dtype=np.int64)
        values = np.asarray(values, dtype=np.float64)
        if ts.shape != values.shape or ts.ndim != 1:
            raise ValueError(f"{self.kind}: ts and values must be 1-d arrays of one length")
        if state is None:
            state = self.new_state()
        n = ts.size
        if n == 0:
            return np.empty(0)
        all_ts = np.concatenate((state.ts, ts)) if state.ts.size else ts
        all_v = np.concatenate((state.v, values)) if state.v.size else values
        start = state.ts.size
        finite = np.isfinite(all_v)
        if not finite.all():
            # a missing value is no evidence: drop it from the history, score it 0
            out = np.zeros(n)
            keep = finite[start:]
            sub_ts, sub_v = all_ts[finite], all_v[finite]
            sub_start = int(finite[:start].sum())
            out[keep] = self._score_state(state, sub_ts, sub_v, sub_start)
            self._advance(state, sub_ts, sub_v)
            return out
        out = self._score_state(state, all_ts, all_v, start)
        self._advance(state, all_ts, all_v)
        return out

    def score_many(self, states: Sequence[SeriesState], ts: np.ndarray, values: np.ndarray,
                   bounds: np.ndarray) -> np.ndarray:
        """Score several series at once: ``ts[bounds[k]:bounds[k + 1]]`` (sorted, one
        series) continues ``states[k]``, which is advanced in place.

        The same numbers as calling :meth:`score` once per series (this default does
        exactly that); detectors with a vectorised path (baseline, spike) override it.
        """
        ts = np.asarray(ts, dtype=np.int64)
        values = np.asarray(values, dtype=np.float64)
        out = np.empty(ts.size)
        for k, state in enumerate(states):
            a, b = int(bounds[k]), int(bounds[k + 1])
            if b > a:
                out[a:b] = self.score(ts[a:b], values[a:b], state)
        return out

    def _score_state(self, state: SeriesState, ts: np.ndarray, v: np.ndarray,
                     start: int) -> np.ndarray:
        """Scores of ``v[start:]`` where ``v[:start]`` is ``state``'s tail (all finite).
        Detectors that keep derived values in the state (the ensemble) override this."""
        return self._score(ts, v, start, self.params[state.key])

    def _advance(self, state: SeriesState, ts: np.ndarray, v: np.ndarray) -> None:
        h = self.history
        state.ts = ts[-h:].copy() if h else ts[:0].copy()
        state.v = v[-h:].copy() if h else v[:0].copy()

    # -- what each detector writes ----------------------------------------------------------

    @abstractmethod
    def _fit_key(self, series: list[tuple[np.ndarray, np.ndarray]]) -> dict[str, Any]:
        """Parameters for one key from its series (each sorted, finite)."""

    @abstractmethod
    def _score(self, ts: np.ndarray, v: np.ndarray, start: int,
               params: dict[str, Any]) -> np.ndarray:
        """Scores of ``v[start:]``; ``v[:start]`` is past context. Only the past may be used."""

    def alarm(self, scores: np.ndarray) -> np.ndarray:
        """Alarm decisions for scores: above the threshold calibrated at training for the
        target false-alarm rate (alarm.py; ``models train --far``), never chosen on labels."""
        cal = self.meta.get("alarm") or {}
        if "threshold" not in cal:
            raise ModelError(f"{self.kind}: this model has no alarm threshold: retrain it with "
                             "`yujing models train --far 0.001`")
        return np.asarray(scores, dtype=np.float64) > float(cal["threshold"])

    def hyper(self) -> dict[str, Any]:
        """Hyper-parameters recorded in the metadata and passed back to ``__init__`` on load."""
        return {"seed": self.seed}

    # -- persistence ----------------------------------------------------------------------

    def save(self, path: str | Path, key: signing.ModelKey | None) -> Path:
        """Write ``model.skops`` and a ``meta.json`` signed with ``key`` into the folder ``path``."""
        if not self.params:
            raise ModelError(f"{self.kind}: nothing to save: fit the model first")
        if key is None:
            raise SignatureError(f"{self.kind}: cannot save an unsigned model: "
                                 f"{signing.NO_KEY_FIX}")
        folder = Path(path)
        folder.mkdir(parents=True, exist_ok=True)
        payload = codec.encode({"params": self.params, "groups": self.groups})
        (folder / PAYLOAD).write_bytes(payload)
        meta = dict(self.meta, format=FORMAT, sha256=hashlib.sha256(payload).hexdigest())
        write_meta(folder, meta, key)
        return folder

    @classmethod
    def load(cls, path: str | Path, key: signing.ModelKey | None) -> Detector:
        """Load a saved model; raises SignatureError, ChecksumError or SchemaError naming the fix."""
        # not at the top: persist.py imports this module
        from yujing.models.persist import load_model

        return load_model(path, key, expect=cls)


def write_meta(folder: Path, meta: dict[str, Any], key: signing.ModelKey) -> None:
    """``meta.json`` in ``folder``, signed with ``key``."""
    signed = signing.sign(meta, key)
    (folder / META).write_text(json.dumps(signed, indent=2, sort_keys=True), encoding="utf-8")


__all__ = ["META", "PAYLOAD", "ChecksumError", "Detector", "FeatureSchema", "ModelError",
           "SchemaError", "SeriesState", "SignatureError", "write_meta"]
