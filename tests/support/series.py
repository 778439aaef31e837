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
