"""Physical limits: a reading that no sound sensor of its kind can give.

Why: some values are impossible whatever the weather, and they need no training to be
recognised: a wind speed below 0 m/s (an anemometer measures a magnitude). A fault that
adds noise or a drift to a sensor near such a limit carries it across; inside the
limits the same reading may look like weather to every other detector. The statistic
per station row is how far the reading lies beyond its limits (0 inside; the largest
over the checked metrics, in each metric's own unit: only its order above 0 matters).
Its alarm threshold is set on the row with the other detectors (holdoff.py); labels are
never read. Causal: a row's statistic depends on that row only.

In the running system the gateway already refuses such a reading at ingest with a reason
(connectors/validate.py, ``DEFAULT_RANGES``: ``wind_speed_ms`` 0 to 120): this check is the
fault bench's stand-in for that refusal, on the bench's own metric names (the Beijing
set's ``WSPM``), not a second validation for the worker.

Only limits of physics belong here, never a range fitted on history: a range of one
year of Beijing readings was crossed by the next winters' cold spells (bench/README.md
round "faults4", "Tried without gain"). The dew point above the air temperature is the
same kind of rule, kept in saturation.py.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from yujing.models.base import ModelError

WIND_SPEED = {"WSPM": (0.0, np.inf)}  # m/s: a speed is a magnitude


class LimitsCheck:
    """Fixed limits per metric: ``{metric: (lowest, highest)}``."""

    kind = "limits"

    def __init__(self, limits: Mapping[str, tuple[float, float]] | None = None) -> None:
        self.limits = {str(m): (float(lo), float(hi)) for m, (lo, hi) in (limits or WIND_SPEED).items()}
        if not self.limits:
            raise ModelError("limits: name at least one metric and its limits")
        for m, (lo, hi) in self.limits.items():
            if not lo < hi:
                raise ModelError(f"limits: {m}: lowest {lo} is not below highest {hi}")

    def fit(self, values: Mapping[str, np.ndarray]) -> LimitsCheck:
        """Nothing to learn (the limits are physics); checks that the metrics are there."""
        missing = [m for m in self.limits if m not in values]
        if missing:
            raise ModelError(f"limits: no readings of {', '.join(missing)}")
        return self

    def statistic(self, values: Mapping[str, np.ndarray]) -> np.ndarray:
        """Rows × stations: the largest distance beyond the limits over the metrics (0:
        inside; NaN: no reading of any checked metric)."""
        out = None
        for m, (lo, hi) in self.limits.items():
            v = np.asarray(values[m], dtype=np.float64)
            with np.errstate(invalid="ignore"):
                s = np.where(np.isfinite(v), np.fmax(np.fmax(lo - v, v - hi), 0.0), np.nan)
            out = s if out is None else np.fmax(out, s)
        return out
