"""Saturation check: a dew point above the air temperature is a reading no air can give.

Why: air holds at most its saturation vapour pressure, so its dew point is at most its
temperature (equal in fog). On the clean Beijing training half, DEWP − TEMP never
exceeds 0 °C at any site. A decoupled or drifting dew-point sensor, or a temperature
sensor stuck through a cooling night, can cross that line while both readings stay
inside their own normal ranges and near their neighbours'; a crossing is certain
evidence of a fault, not a rare weather.

The statistic per station row is ``DEWP − TEMP`` above its limit, the larger of 0 and
its largest value on the fitted training rows (the tolerance of the instruments, not a
choice), and 0 at or below it: only a reading no air can give scores. Why the floor at 0
and the clip: a station fitted on a dry season never saw its dew point near the
temperature, and the first foggy morning, a sound reading, ranked above all of
training and paged a sensor fault (bench/group_speed.py's synthetic groups, whose dew
point drifted to within a few degrees of the temperature: 4 to 100 % of a group's live
rows alarmed). Models fitted before keep the old statistic (``clip`` False: their
stored calibration was made with it). Its alarm threshold is set on the row with the
other detectors (holdoff.py); labels are never read. Causal: a row's statistic depends
on that row only. A row without both readings has none (NaN).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from yujing.models.base import ModelError


class SaturationCheck:
    """Fitted per station: the largest ``dew − temp`` on normal history."""

    kind = "saturation"

    def __init__(self, dew: str = "DEWP", temp: str = "TEMP", clip: bool = True) -> None:
        self.dew, self.temp = str(dew), str(temp)
        self.top: np.ndarray | None = None
        self.clip = clip  # the physical floor and the clip (module docstring); False: before

    def _excess(self, values: Mapping[str, np.ndarray]) -> np.ndarray:
        if self.dew not in values or self.temp not in values:
            raise ModelError(f"saturation: needs {self.dew} and {self.temp} (rows × stations)")
        return (np.asarray(values[self.dew], dtype=np.float64)
                - np.asarray(values[self.temp], dtype=np.float64))

    def fit(self, values: Mapping[str, np.ndarray]) -> SaturationCheck:
        """``values[metric]``: rows × stations of normal history, NaN = missing."""
        x = self._excess(values)
        ok = np.isfinite(x)
        if not ok.any():
            raise ModelError(f"saturation: no row with both {self.dew} and {self.temp} to fit on")
        # a station with no row of both: the group's largest (the instruments are alike)
        top = np.array([np.max(x[ok[:, i], i]) if ok[:, i].any() else np.nan for i in range(x.shape[1])])
        top = np.where(np.isfinite(top), top, np.nanmax(top))
        self.top = np.maximum(top, 0.0) if self.clip else top
        return self

    def statistic(self, values: Mapping[str, np.ndarray]) -> np.ndarray:
        """Rows × stations: ``dew − temp`` above its limit (> 0: impossible air), 0 below it
        (``clip``; without it, ``dew − temp`` less the fitted maximum), NaN without both."""
        if self.top is None:
            raise ModelError("saturation: statistic before fit: fit on normal history first")
        over = self._excess(values) - self.top[None, :]
        return np.maximum(over, 0.0) if self.clip else over
