"""What one refresh of the storm view (暴雨专题, /console/api/storm) costs the gateway.

    .venv/bin/python bench/storm_view.py [--readings 1000000] [--stations 200] [--gauges 12] [--runs 7]

Fills the console's readings window (yujing/console/feeds.py) with ``--readings`` readings in
gateway-sized envelopes of 500 (``--stations`` stations, four metrics, one of them rain_mm),
then measures, median of ``--runs``:

* ``metric_series_ms``: ``ReadingsWindow.metric_series("rain_mm")``, every station's rain in
  one pass (what the view uses), uncached: the cost once per new envelope; the open pages
  share the answer until the next one arrives;
* ``per_station_ms``: the baseline, ``ReadingsWindow.series(station)`` once per station
  that has rain, as the station page reads one station;
* ``ratio``: baseline / metric_series;
* ``rain_table_ms``: ranking and grading ``--gauges`` gauges' series (console/storm.py).

The page refreshes every 5 s while it is open, so the first figure is what each open storm
page costs the gateway's event loop per refresh. No Kafka.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from yujing.console import storm
from yujing.console.feeds import ReadingsWindow
from yujing.envelope import Columns
from yujing.rules.loader import load_rules

METRICS = ["rain_mm", "water_level_m", "wind_gust_ms", "temperature_c"]


def window(readings: int, stations: int) -> ReadingsWindow:
    w = ReadingsWindow(max_readings=readings)
    rng = np.random.default_rng(13)
    names = [f"DG-B{i:04d}" for i in range(stations)]
    for k in range(readings // 500):
        ts = (1_750_000_000_000 + np.arange(k * 500, k * 500 + 500) * 1000).astype(np.int64)
        w.add(Columns(0, 0, names, METRICS, rng.integers(0, stations, 500),
                      rng.integers(0, len(METRICS), 500), ts, rng.random(500)), k)
    return w


def median_ms(fn, runs: int) -> float:
    out = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1000)
    return statistics.median(out)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--readings", type=int, default=1_000_000)
    ap.add_argument("--stations", type=int, default=200)
    ap.add_argument("--gauges", type=int, default=12)
    ap.add_argument("--runs", type=int, default=7)
    a = ap.parse_args()
    w = window(a.readings, a.stations)
    rain = w.metric_series("rain_mm")
    fast = median_ms(lambda: w._metric_series("rain_mm", None), a.runs)   # uncached
    slow = median_ms(lambda: [w.series(s) for s in rain], max(1, a.runs // 3))
    rules = load_rules(ROOT / "rules")
    some = dict(list(rain.items())[: a.gauges])
    as_of = storm.as_of_time(some, 2**62)
    table = median_ms(lambda: storm.rain_table(some, {}, rules, as_of), a.runs)
    print(f"readings: {w.count}")
    print(f"stations_with_rain: {len(rain)}")
    print(f"metric_series_ms: {fast:.1f}")
    print(f"per_station_ms: {slow:.1f}")
    print(f"ratio: {slow / fast:.1f}")
    print(f"rain_table_ms: {table:.2f}")


if __name__ == "__main__":
    main()
