"""Derived indexes from the standards, as array functions.

Forest-fire danger (LY/T 1172-95, STANDARDS.md "Forest fire"):
index = A(max temperature) + B(min relative humidity) + C(days without rain)
        + D(max wind force) - E(seasonal correction);
levels: <= 25 → 1, 26–50 → 2, 51–72 → 3, 73–90 → 4, >= 91 → 5; QX/T 77-2007
colours green, blue, yellow, orange, red, with warnings from level 3.
Component tables (confidence M): temperature <= 5 °C → 0, +4 per 5 °C band,
> 25 °C → 20; humidity >= 65 % → 0 … <= 24 % → 20 (the bands between are our
even split, confidence L); days without rain 0 → 0, +5 per day, >= 10 → 50;
wind force 0 → 0 … >= 8 → 40 (5 per force, L for the steps between).
"""

from __future__ import annotations

import numpy as np

# Beaufort force lower bounds in m/s (GB/T 28591-2012), forces 1..17.
_BEAUFORT = np.array([0.3, 1.6, 3.4, 5.5, 8.0, 10.8, 13.9, 17.2, 20.8, 24.5, 28.5, 32.7,
                      37.0, 41.5, 46.2, 51.0, 56.1])


def beaufort(ms: np.ndarray) -> np.ndarray:
    """Beaufort force (0..17) for wind speeds in m/s; NaN stays NaN."""
    ms = np.asarray(ms, dtype=np.float64)
    force = np.searchsorted(_BEAUFORT, ms, side="right").astype(np.float64)
    return np.where(np.isnan(ms), np.nan, force)


def _temperature_score(t: np.ndarray) -> np.ndarray:
    return np.clip(np.ceil((t - 5.0) / 5.0), 0, 5) * 4.0


def _humidity_score(rh: np.ndarray) -> np.ndarray:
    # >= 65 → 0; 55–64 → 4; 45–54 → 8; 35–44 → 12; 25–34 → 16; <= 24 → 20
    return np.clip(np.ceil((65.0 - rh) / 10.0), 0, 5) * 4.0


def fire_index(max_temp_c: np.ndarray, min_rh_pct: np.ndarray, dry_days: np.ndarray,
               max_wind_ms: np.ndarray, correction: np.ndarray | float = 0.0) -> np.ndarray:
    a = _temperature_score(np.asarray(max_temp_c, dtype=np.float64))
    b = _humidity_score(np.asarray(min_rh_pct, dtype=np.float64))
    c = np.clip(np.asarray(dry_days, dtype=np.float64), 0, 10) * 5.0
    d = np.clip(beaufort(max_wind_ms), 0, 8) * 5.0
    return a + b + c + d - np.asarray(correction, dtype=np.float64)


def fire_level(index: np.ndarray) -> np.ndarray:
    """Danger level 1..5 from the index (NaN stays NaN)."""
    index = np.asarray(index, dtype=np.float64)
    level = 1.0 + (index > 25) + (index > 50) + (index > 72) + (index > 90)
    return np.where(np.isnan(index), np.nan, level)
