"""One detector fitted on one station's regular series (the single-detector model tests)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from yujing.models import make_detector

STEP = 300_000
T0 = 1_735_660_800_000


def fit_one(kind: str, v: np.ndarray, **hyper):
    """``kind`` fitted on ``v`` at station "s", metric "m", one reading every 5 minutes."""
    ts = T0 + np.arange(v.size, dtype=np.int64) * STEP
    frame = pd.DataFrame({"ts": ts, "station": "s", "metric": "m", "value": v})
    return make_detector(kind, **hyper).fit(frame)


def streams_as_one_pass(det, v: np.ndarray, cuts: list[int]) -> None:
    """``det`` scores ``v`` in the chunks ``cuts`` makes exactly as in one pass."""
    ts = T0 + np.arange(v.size, dtype=np.int64) * STEP
    whole = det.score(ts, v, det.new_state("s"))
    state = det.new_state("s")
    cut = sorted(set(cuts))
    parts = [det.score(t, x, state) for t, x in zip(np.split(ts, cut), np.split(v, cut))]
    np.testing.assert_allclose(np.concatenate(parts), whole, rtol=0, atol=1e-12)


def reads_only_its_history(det, v: np.ndarray, rng: np.random.Generator, at: int = 800) -> None:
    """Scores from ``at`` on do not change when readings more than ``det.history`` before
    ``at`` do, and scores just inside that reach do (the bound is not larger than needed)."""
    ts = T0 + np.arange(v.size, dtype=np.int64) * STEP
    h = det.history
    other = v.copy()
    other[: at - h] = rng.normal(3, 2, at - h)
    a, b = (det.score(ts, x, det.new_state("s")) for x in (v, other))
    np.testing.assert_allclose(a[at:], b[at:], rtol=0, atol=1e-12)
    assert (a[at - h - 20:at - h] != b[at - h - 20:at - h]).any()
