"""The demo's rainstorm over Dongguan, as plain data (pure, deterministic).

Twelve rain gauges report 5-minute rainfall for 12 simulated hours. Humen
(虎门) gets a cloudburst that passes 50 mm in 3 h (orange) and then 100 mm in
3 h (red) before it stops and the warning clears; Chang'an (长安) gets a later,
weaker storm that reaches orange and clears; Qingxi (清溪) goes silent a third
of the way through.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from yujing.domain import Reading

STEP_MS = 5 * 60_000
HOURS = 12
STORM = "DG-HM-R01"
STEADY = "DG-CA-R01"
SILENT = "DG-QX-R01"
GAUGES = ["DG-HM-R01", "DG-CA-R01", "DG-HJ-R01", "DG-DL-R01", "DG-SL-R01", "DG-QX-R01",
          "DG-TX-R01", "DG-FG-R01", "DG-CP-R01", "DG-ZMT-R01", "DG-SJ-R01", "DG-MY-R01"]


@dataclass(frozen=True)
class Step:
    ts: int
    readings: list[Reading]


def _storm_mm(hour: float) -> float:
    """5-minute rainfall at the storm gauge: builds from hour 2, peaks near 5, stops at 6."""
    if 2.0 <= hour < 3.5:
        return 2.0   # 24 mm/h
    if 3.5 <= hour < 5.5:
        return 4.5   # 54 mm/h: 3 h sum passes 50, then 100
    if 5.5 <= hour < 6.0:
        return 1.5
    return 0.0


def _steady_mm(hour: float) -> float:
    return 1.5 if 6.0 <= hour < 9.0 else 0.0   # 18 mm/h for 3 h: 3 h sum passes 50


def rainstorm(start_ms: int, gauges: list[str] | None = None, seed: int = 7) -> list[Step]:
    rng = random.Random(seed)
    gauges = gauges or GAUGES
    steps = []
    for k in range(HOURS * 12):
        ts = start_ms + (k + 1) * STEP_MS
        hour = (k + 1) / 12
        out = []
        for g in gauges:
            if g == SILENT and hour > HOURS / 3:
                continue
            if g == STORM:
                mm = _storm_mm(hour)
            elif g == STEADY:
                mm = _steady_mm(hour)
            else:
                mm = round(rng.choice([0.0, 0.0, 0.0, 0.1, 0.2, 0.5]), 1)
            out.append(Reading(g, "rain_mm", ts, mm))
        steps.append(Step(ts, out))
    return steps
