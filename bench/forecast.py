"""What forecasts cost the worker: the engine on envelopes of rain readings at 200 gauges that
opt in to the forecast yellow (qpf: 1), with no forecasts and with a 24-hour hourly QPF per
gauge re-issued every hour (one envelope of 4,800 forecast values per hour of readings).

    PYTHONPATH=. .venv/bin/python bench/forecast.py [--repeat 5]

Prints the median readings/s of the rainstorm pack (observed rainstorm-guangdong and
rainstorm-guangdong-forecast) in both runs, measured in the same process, and their ratio.
The readings are the same in both; only the forecast envelopes differ. 2 noisy cores: medians.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from yujing.domain import Forecast, Reading
from yujing.envelope import decode, encode_readings
from yujing.pipeline import Pipeline
from yujing.rules.loader import load_rules
from yujing.stations import Registry, Station

T0 = 1_750_000_000_000
MIN, HOUR = 60_000, 3_600_000
GAUGES = [f"G{k:03d}" for k in range(200)]
HOURS = 12


def world() -> tuple[list, Registry]:
    rules = [r for r in load_rules(ROOT / "rules") if r.id.startswith("rainstorm-guangdong")]
    reg = Registry([Station.model_validate({"id": g, "name": g, "kind": "rain_gauge",
                                            "thresholds": {"qpf": 1}}) for g in GAUGES])
    return rules, reg


def envelopes(with_forecasts: bool) -> list[bytes]:
    """A minute of readings per envelope (200); an hourly issue before each hour's readings."""
    out = []
    for h in range(HOURS):
        issued = T0 + h * HOUR
        if with_forecasts:
            out.append(encode_readings([Forecast(g, "rain_mm_fcst", issued + (k + 1) * HOUR,
                                                 float((k + h) % 7), issued)
                                        for g in GAUGES for k in range(24)]))
        for m in range(60):
            t = issued + m * MIN
            out.append(encode_readings([Reading(g, "rain_mm", t, 0.2) for g in GAUGES]))
    return out


def run(envs: list[bytes]) -> float:
    rules, reg = world()
    p = Pipeline(rules, reg)
    cols = [decode(e) for e in envs]
    readings = sum(len(c.split()[0]) for c in cols)
    start = time.perf_counter()
    for c in cols:
        p.handle(c, 0)
    return readings / (time.perf_counter() - start)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    plain, fc = envelopes(False), envelopes(True)
    base, with_fc = [], []
    for _ in range(args.repeat):
        base.append(run(plain))
        with_fc.append(run(fc))
    b, f = statistics.median(base), statistics.median(with_fc)
    print(f"readings: {HOURS * 60 * len(GAUGES):,} at {len(GAUGES)} gauges; forecast values: "
          f"{HOURS * 24 * len(GAUGES):,} in {HOURS} issues")
    print(f"no forecasts    {b:12,.0f} readings/s (median of {args.repeat})")
    print(f"with forecasts  {f:12,.0f} readings/s (median of {args.repeat})")
    print(f"ratio           {f / b:12.2f}")


if __name__ == "__main__":
    main()
