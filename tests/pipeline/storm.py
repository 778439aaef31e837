"""A storm as envelopes of one partition, and what an uninterrupted pipeline makes of it."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

from yujing.domain import Reading
from yujing.envelope import decode, encode_readings
from yujing.pipeline import Pipeline
from yujing.rules.loader import load_rules
from yujing.stations import load_registry

ROOT = Path(__file__).resolve().parents[2]
MIN, H = 60_000, 3_600_000
T0 = 1_750_000_000_000 - 1_750_000_000_000 % H


@lru_cache(maxsize=1)
def setup() -> tuple[list, object]:
    return load_rules(ROOT / "rules"), load_registry(ROOT / "stations.yaml")


def pipeline() -> Pipeline:
    rules, registry = setup()
    return Pipeline(rules, registry)


def storm_readings() -> list[Reading]:
    """6 h of minute data: two gauges in a storm (orange, red, clear), a river that rises
    past its warning level and falls, a gas leak that clears after its ``for: 5m``, and a
    weather station with a gust."""
    rng = np.random.default_rng(7)
    out: list[Reading] = []
    for m in range(6 * 60):
        t = T0 + m * MIN
        storm_on = 60 <= m < 200
        for st, scale in (("DG-HM-R01", 1.0), ("DG-CA-R01", 0.55)):
            mm = scale * (0.9 + 0.4 * rng.random()) if storm_on else 0.0
            out.append(Reading(st, "rain_mm", t, round(mm, 2)))
        level = 5.0 + 2.4 * np.sin(np.pi * min(max(m - 90, 0), 300) / 300)
        out.append(Reading("DG-SL-H01", "water_level_m", t, round(float(level), 3)))
        lel = 30.0 if 120 <= m < 140 else (18.0 if 140 <= m < 150 else 3.0)
        out.append(Reading("DG-ST-G01", "gas_lel_pct", t, lel))
        out.append(Reading("DG-HM-W01", "wind_speed_ms", t, 26.0 if 200 <= m < 260 else 5.0))
    return out


def storm_envelopes(minutes: int = 17) -> list[bytes]:
    """The storm as the gateway would batch it: one envelope per ``minutes`` of readings;
    the topic's offsets are the list's indices."""
    parts: dict[int, list[Reading]] = {}
    for r in storm_readings():
        parts.setdefault((r.ts - T0) // (minutes * MIN), []).append(r)
    return [encode_readings(parts[k]) for k in sorted(parts)]


def strip(evs: list) -> list[tuple]:
    """What identifies an event (not ``emitted_ms``, the wall time it was sent)."""
    return [(e.kind.value, e.key, e.episode, int(e.grade), e.ts, e.reason) for e in evs]


def reference(envelopes: list[bytes]) -> list[list]:
    """The events of each envelope through one pipeline that never stops."""
    p = pipeline()
    return [p.handle(decode(e), T0).events for e in envelopes]


