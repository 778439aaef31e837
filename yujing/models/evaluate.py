"""Run detectors over a NAB-format corpus in streaming order and score them.

A corpus is a folder of ``timestamp,value`` CSVs (in sub-folders = categories) and a
labels JSON mapping each file's path relative to the folder to its windows
(``[[start, end], ...]``), as NAB's ``labels/combined_windows.json``.

Per file, a detector is trained on the probationary rows only (the first 15 %, at
most 750, which NAB does not score), then the whole file is fed to it in envelopes
of ``chunk`` rows through a streaming state: each row's score uses only that row and
the rows before it. With ``refit_every`` the detector is retrained on all rows seen so
far every that many rows, as a deployment that retrains nightly would; still only the
past.

The ensemble filters its members' scores itself (its scores are already alarm-style),
so no outer :class:`RecordFilter` is applied to it; ``record`` sets its filters' memory
instead (0 = its plain scores), and ``refit_every`` retrains the whole ensemble.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from yujing.models import make_detector, nab
from yujing.models.base import Detector, ModelError
from yujing.models.scoring import RecordFilter


@dataclass
class Series:
    name: str  # path relative to the corpus folder, e.g. realKnownCause/nyc_taxi.csv
    ts: np.ndarray  # epoch ms
    values: np.ndarray
    windows: list[tuple[int, int]]  # row index ranges

    @property
    def category(self) -> str:
        return self.name.split("/")[0] if "/" in self.name else "."


def _to_ms(text: pd.Series | list) -> np.ndarray:
    return pd.to_datetime(pd.Series(text), format="mixed").to_numpy("datetime64[ms]").astype(np.int64)


def load_corpus(folder: Path, labels: Path, only: list[str] | None = None) -> list[Series]:
    """Every labelled CSV under ``folder`` (files missing from the labels are skipped)."""
    folder, labels = Path(folder), Path(labels)
    try:
        windows = json.loads(labels.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ModelError(f"{labels}: cannot read the labels ({exc}): pass NAB's "
                         "labels/combined_windows.json or a file of the same shape") from None
    out = []
    for name in sorted(windows):
        if only and not any(o in name for o in only):
            continue
        path = folder / name
        if not path.is_file():
            continue
        df = pd.read_csv(path)
        if list(df.columns[:2]) != ["timestamp", "value"]:
            raise ModelError(f"{path}: expected columns timestamp,value, got "
                             f"{','.join(map(str, df.columns))}")
        ts = _to_ms(df["timestamp"])
        lim = [(int(a), int(b)) for a, b in
               zip(_to_ms([w[0] for w in windows[name]]), _to_ms([w[1] for w in windows[name]]))] \
            if windows[name] else []
        out.append(Series(name, ts, df["value"].to_numpy(np.float64), nab.window_indices(ts, lim)))
    if not out:
        raise ModelError(f"{folder}: no CSV named in {labels} was found there: pass the corpus "
                         "folder (NAB's data/) that the labels' paths are relative to")
    return out


def frame(name: str, ts: np.ndarray, values: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame({"ts": ts, "station": name, "metric": "value", "value": values})


def stream_scores(det_factory: Callable[[], Detector], s: Series, chunk: int = 500,
                  refit_every: int = 0, record: int = 0, record_floor: float = 2.0,
                  record_fading: bool = False) -> np.ndarray:
    """Scores of one series: fit on the probationary rows, then stream in chunks.

    ``record`` > 0 passes the scores through a :class:`RecordFilter` of that memory (with
    ``record_fading`` a fading record of that e-folding age), unless the detector's
    scores are already alarm-style (the ensemble).
    """
    n = s.ts.size
    prob = max(nab.probation_length(n), 2)
    det = det_factory().fit(frame(s.name, s.ts[:prob], s.values[:prob]))
    out = np.zeros(n)
    state = det.new_state(s.name)
    alarm = (RecordFilter(record, record_floor, record_fading)
             if record and not det.alarm_style else None)
    # the probationary rows are scored too (NAB ignores them), in streaming order
    next_fit = prob + refit_every if refit_every else n + 1
    i = 0
    while i < n:
        j = min(i + chunk, n, next_fit) if next_fit > i else min(i + chunk, n)
        out[i:j] = det.score(s.ts[i:j], s.values[i:j], state)
        if alarm is not None:
            out[i:j] = alarm(out[i:j])
        i = j
        if refit_every and i >= next_fit and i < n:
            det = det_factory().fit(frame(s.name, s.ts[:i], s.values[:i]))
            tail = state
            state = det.new_state(s.name)
            state.ts, state.v = tail.ts[-det.history:] if det.history else tail.ts[:0], \
                tail.v[-det.history:] if det.history else tail.v[:0]
            next_fit = i + refit_every
    return out


def run(corpus: list[Series], detectors: list[str], chunk: int = 500, refit_every: int = 0,
        seed: int = 0, hyper: dict[str, dict] | None = None, record: int = 0,
        refit_kinds: tuple[str, ...] = ("baseline", "ensemble"), record_floor: float = 2.0,
        on_file: Callable[[str, str], None] | None = None,
        record_fading: bool = False,
        kinds: Mapping[str, Callable[..., Any]] | None = None) -> dict[str, dict[str, np.ndarray]]:
    """detector → file → scores. ``kinds`` makes detectors the registry does not hold (a
    bench's candidates, e.g. shift.py), by name; the others come from ``make_detector``."""
    out: dict[str, dict[str, np.ndarray]] = {}
    for kind in detectors:
        params = dict((hyper or {}).get(kind, {}), seed=seed)
        if kind == "ensemble":  # it filters its members itself, with this memory
            params.setdefault("record", record)
        out[kind] = {}
        for s in corpus:
            # the factory runs inside this iteration, so binding kind/params late is safe
            make = (kinds or {}).get(kind) or functools.partial(make_detector, kind)
            out[kind][s.name] = stream_scores(lambda: make(**params), s, chunk,  # noqa: B023
                                              refit_every if kind in refit_kinds else 0, record,
                                              record_floor, record_fading)
            if on_file:
                on_file(kind, s.name)
    return out


def combine(per_detector: dict[str, dict[str, np.ndarray]], kinds: list[str]) -> dict[str, np.ndarray]:
    """The largest calibrated score of several detectors, per row."""
    files = per_detector[kinds[0]].keys()
    return {f: np.max(np.stack([per_detector[k][f] for k in kinds]), axis=0) for f in files}


@dataclass
class Report:
    detector: str
    results: dict[str, nab.ProfileResult]

    def rows(self, corpus: list[Series]) -> list[dict]:
        """Per file, per category and total rows for every profile."""
        cats = {s.name: s.category for s in corpus}
        out = []
        for pname, res in self.results.items():
            prof = nab.PROFILES[pname]
            by_cat: dict[str, list[nab.FileResult]] = {}
            for fr in res.files:
                by_cat.setdefault(cats.get(fr.name, "."), []).append(fr)
                out.append(_row(self.detector, pname, "file", fr.name, res.threshold, [fr],
                                None))
            for cat, frs in sorted(by_cat.items()):
                out.append(_row(self.detector, pname, "category", cat, res.threshold, frs,
                                _cat_norm(frs, prof)))
            out.append(_row(self.detector, pname, "total", "all", res.threshold, res.files,
                            res.normalised))
        return out


def _cat_norm(frs: list[nab.FileResult], prof: nab.Profile) -> float:
    # null over a subset: the same optimum as the corpus null (no detection) → -fn per window
    windows = sum(f.windows for f in frs)
    raw = sum(f.score for f in frs)
    return nab.normalise(raw, -prof.fn * windows, prof.tp * windows)


def _row(det: str, profile: str, level: str, name: str, threshold: float,
         frs: list[nab.FileResult], norm: float | None) -> dict:
    windows = sum(f.windows for f in frs)
    found = sum(f.found for f in frs)
    fa = sum(f.false_alarms for f in frs)
    p = found / (found + fa) if found + fa else float("nan")
    r = found / windows if windows else float("nan")
    return {"detector": det, "profile": profile, "level": level, "name": name,
            "threshold": threshold, "raw": sum(f.score for f in frs),
            "normalised": float("nan") if norm is None else norm,
            "windows": windows, "found": found, "false_alarms": fa,
            "precision": p, "recall": r, "f1": nab.f1(p, r)}


def evaluate(corpus: list[Series], scores: dict[str, np.ndarray], detector: str) -> Report:
    windows = {s.name: s.windows for s in corpus}
    return Report(detector, nab.evaluate(scores, windows))
