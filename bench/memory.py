"""A worker's memory for many station-metrics with 24 h windows at one reading a minute.

    .venv/bin/python bench/memory.py                              # 10k, 25k, 50k series; fit
    .venv/bin/python bench/memory.py --series 10000,25000,50000,100000
    .venv/bin/python bench/memory.py --series 10000 --tracemalloc # where the Python heap goes

The state is built as a worker holds it: the worker's ``Pipeline`` (rule engine and
lifecycle) with a generated pack of four rules, one per metric, ``sum(m, 24h) > 1e9`` on
``rain_mm``, ``water_level_m``, ``wind_speed_ms`` and ``pm10_ugm3`` (metrics of the
default packs; the threshold is never reached, so no warning is raised and the state is
the series alone). Each series keeps 24 h plus the 1 h lateness. Stations are given four
metrics each (``--series 100000`` is 25,000 stations), each one reading a minute.

The fill: ``--hours`` (26) of event time, all through ``Pipeline.handle``, every reading an
evaluation point of its rule. A worker gets envelopes of tens to hundreds of readings; here
an envelope carries ``--chunk-minutes`` (120) minutes of a block of ``--block`` stations
(2,500: 10,000 series), in the order a worker gets them (by minute, then station). The
series store appends each series' new readings and trims the old end as in a worker, so
the retained state is the same; only the number of calls is smaller (100,000 series x 26 h
is 156 M readings, an hour of worker time in 40-reading envelopes).

Each size runs in its own process. Printed per size: RSS before the fill (imports and the
pipeline), after it, and after ``malloc_trim(0)`` (what glibc keeps of freed chunk arrays);
the readings retained and their theoretical minimum (8 B time + 8 B value each); the
buffers' allocated numpy bytes (capacity: what the growth policy reserves) and the rest
(Python objects per series, engine state, allocator). Then a least-squares fit of RSS on
the series count: MB per 10,000 series and bytes per retained reading against the 16 B
minimum. ``--compare-doubling`` runs the smallest size again with the buffers' former
growth policy (doubling, never shrinking) and prints the ratio. ``--tracemalloc`` adds
the top Python allocation sites (slow; off by default).
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np
import psutil
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from heap import heap_figures  # RSS and glibc's heap figures

from yujing.envelope import Columns
from yujing.pipeline import Pipeline
from yujing.rules import buffer
from yujing.rules.loader import load_rules

MB = 1024 * 1024
BASE_MS = 1_700_000_000_000
MIN_MS = 60_000
METRICS = ["rain_mm", "water_level_m", "wind_speed_ms", "pm10_ugm3"]
MIN_BYTES = 16  # an int64 time and a float64 value


def doubling_room(self: buffer.Buffer, n: int) -> None:
    """The growth policy before this bench (for ``--compare-doubling``): move the live part
    to the front, into a buffer twice the live readings when over half full, else into one
    of the same size; it never shrank."""
    live = self.hi - self.lo
    size = self.ts.size
    if live + n > size // 2:
        size = max(buffer.MIN_CAPACITY, 2 * (live + n))
    ts, v = np.empty(size, np.int64), np.empty(size, np.float64)
    ts[:live] = self.ts[self.lo:self.hi]
    v[:live] = self.v[self.lo:self.hi]
    self.ts, self.v, self.lo, self.hi = ts, v, 0, live


def buffer_cost(policy, per_add: int, reps: int = 60_000, keep: int = 1500) -> float:
    """CPU ns per reading of one series' appends and trims with ``policy`` as the growth."""
    saved = buffer.Buffer._make_room
    buffer.Buffer._make_room = policy
    try:
        b, ts = buffer.Buffer(), np.arange(per_add, dtype=np.int64)
        v = ts * 1.0
        t0 = time.process_time()
        for i in range(reps):
            b.add(ts + i * per_add, v)
            b.trim(i * per_add - keep, 0)
        return (time.process_time() - t0) / (reps * per_add) * 1e9
    finally:
        buffer.Buffer._make_room = saved


def write_pack(folder: Path) -> Path:
    rules = [{"id": f"mem-{m.replace('_', '-')}", "name": f"{m} 24 小时累计", "hazard": "memory",
              "metric": m, "grades": {"red": {"agg": "sum", "window": "24h", "op": ">",
                                              "value": 1e9}}} for m in METRICS]
    pack = folder / "rules"
    pack.mkdir()
    (pack / "memory.yaml").write_text(yaml.safe_dump({"rules": rules}, allow_unicode=True),
                                      encoding="utf-8")
    return pack


def envelope(names: list[str], minutes: range, values: np.ndarray) -> Columns:
    """Readings of ``names`` x METRICS for each minute of ``minutes``, by minute, then
    station, then metric."""
    per_minute = len(names) * len(METRICS)
    si = np.tile(np.repeat(np.arange(len(names), dtype="<u4"), len(METRICS)), len(minutes))
    mi = np.tile(np.arange(len(METRICS), dtype="<u4"), len(names) * len(minutes))
    ts = np.repeat(BASE_MS + np.arange(minutes.start, minutes.stop, dtype=np.int64) * MIN_MS,
                   per_minute)
    return Columns(0, 0, names, list(METRICS), si, mi, ts, values[:ts.size].astype("<f8"))


def store_figures(pipe: Pipeline) -> dict[str, float]:
    """Readings retained, and the bytes the series' buffers hold (capacity) and use."""
    bufs = pipe.engine.store._buf
    retained = sum(len(b) for b in bufs)
    capacity = sum(b.ts.nbytes + b.v.nbytes for b in bufs)
    return {"series": len(bufs), "retained": retained, "capacity_bytes": capacity,
            "live_bytes": retained * MIN_BYTES}


def child(series: int, hours: int, chunk: int, block: int, trace: bool, policy: str) -> None:
    """One size's run; prints one JSON line."""
    if policy == "doubling":
        buffer.Buffer._make_room = doubling_room
    stations = -(-series // len(METRICS))
    with tempfile.TemporaryDirectory() as folder:
        rules = load_rules(write_pack(Path(folder)))
    if trace:
        tracemalloc.start(3)
    pipe = Pipeline(rules)
    names = [f"MEM-{i:06d}" for i in range(stations)]
    values = np.random.default_rng(7).uniform(0.0, 2.0, block * len(METRICS) * chunk)
    gc.collect()
    before = heap_figures()
    rss0 = before["rss"]
    cpu0, events, readings = time.process_time(), 0, 0
    for m0 in range(0, hours * 60, chunk):
        minutes = range(m0, min(m0 + chunk, hours * 60))
        for s0 in range(0, stations, block):
            cols = envelope(names[s0:s0 + block], minutes, values)
            events += len(pipe.handle(cols, int(cols.ts[-1])).events)
            readings += len(cols)
    cpu = time.process_time() - cpu0
    gc.collect()
    after = heap_figures()
    ctypes.CDLL(None).malloc_trim(0)
    trimmed = heap_figures()
    out = {"policy": policy, "series": series, "stations": stations, "hours": hours, "readings": readings,
           "events": events, "evaluated": pipe.engine.stats.evaluated, "cpu_s": cpu,
           "rss_before": rss0, "rss_after": after["rss"], "rss_trimmed": trimmed["rss"],
           "heap_in_use_before": before["in_use"], "heap_in_use": trimmed["in_use"],
           "heap_free": trimmed["free"], "mmapped": trimmed["mmapped"],
           **store_figures(pipe)}
    if trace:
        snap = tracemalloc.take_snapshot()
        out["traced_mb"] = sum(s.size for s in snap.statistics("filename")) / MB
        out["top"] = [f"{s.size / MB:8.1f} MB  {s.count:9d} blocks  {s.traceback[0]}"
                      for s in snap.statistics("lineno")[:12]]
    print(json.dumps(out))


def run_size(series: int, args: argparse.Namespace, policy: str = "current") -> dict:
    cmd = [sys.executable, __file__, "--child", str(series), "--hours", str(args.hours),
           "--chunk-minutes", str(args.chunk_minutes), "--block", str(args.block),
           "--policy", policy]
    out = subprocess.run(cmd + (["--tracemalloc"] if args.tracemalloc else []), check=True,
                         capture_output=True, text=True, env={**os.environ})
    return json.loads(out.stdout.strip().splitlines()[-1])


def report(r: dict) -> None:
    grown = (r["rss_trimmed"] - r["rss_before"]) * MB
    print(f"\n[{r['policy']}] {r['series']:,} series ({r['stations']:,} stations x {len(METRICS)}), "
          f"{r['hours']} h: "
          f"{r['readings']:,} readings in {r['cpu_s']:.0f} CPU s "
          f"({r['readings'] / r['cpu_s']:,.0f}/s), {r['events']} events")
    print(f"  rss_mb before {r['rss_before']:.0f}, after {r['rss_after']:.0f}, after malloc_trim "
          f"{r['rss_trimmed']:.0f} (glibc heap in use {r['heap_in_use']:.0f}, mmapped "
          f"{r['mmapped']:.0f})")
    print(f"  retained readings {r['retained']:,} ({r['retained'] / r['series']:.0f} per series); "
          f"minimum {r['live_bytes'] / MB:.0f} MB at {MIN_BYTES} B each")
    print(f"  buffers' numpy capacity {r['capacity_bytes'] / MB:.0f} MB "
          f"({r['capacity_bytes'] / r['retained']:.1f} B per retained reading); the rest of the "
          f"growth {(grown - r['capacity_bytes']) / MB:.0f} MB "
          f"({(grown - r['capacity_bytes']) / r['series']:.0f} B per series)")
    if "heap_free" in r:
        objects = (r["heap_in_use"] - r["heap_in_use_before"]) * MB - r["capacity_bytes"]
        print(f"  of the rest: other objects in use {objects / MB:.0f} MB "
              f"({objects / r['series']:.0f} B per series); free inside glibc's heap "
              f"{r['heap_free']:.0f} MB (holes left by freed chunk arrays)")
    print(f"  bytes_per_retained_reading (RSS growth): {grown / r['retained']:.1f} "
          f"(minimum {MIN_BYTES}: x{grown / r['retained'] / MIN_BYTES:.2f})")
    if "top" in r:
        print(f"  tracemalloc: {r['traced_mb']:.0f} MB traced; top sites:")
        for line in r["top"]:
            print(f"    {line}")


def fit(results: list[dict]) -> None:
    """RSS after the fill = a + b * series, least squares over the sizes."""
    xs = [r["series"] for r in results]
    ys = [r["rss_trimmed"] for r in results]
    per_reading = statistics.median(r["retained"] / r["series"] for r in results)
    if len(xs) > 1:
        b, a = statistics.linear_regression(xs, ys)
    else:  # one size: the line through its RSS before the fill
        a = results[0]["rss_before"]
        b = (ys[0] - a) / xs[0]
    print(f"\nfit over {len(xs)} sizes: rss_mb = {a:.0f} + {b * 1e4:.1f} per 10,000 series "
          f"({b * MB:,.0f} B per series, {per_reading:.0f} readings each: "
          f"{b * MB / per_reading:.1f} B per retained reading against {MIN_BYTES} B minimum)")
    print(f"fit: rss_mb_at_100000_series {a + b * 1e5:.0f}; the minimum for the readings alone "
          f"{1e5 * per_reading * MIN_BYTES / MB:.0f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--series", default="10000,25000,50000",
                    help="comma list of station-metric counts, each run in its own process")
    ap.add_argument("--hours", type=int, default=30,
                    help="event hours fed: windows keep 25 h, buffers settle after 28 h")
    ap.add_argument("--chunk-minutes", type=int, default=120, help="minutes per envelope")
    ap.add_argument("--block", type=int, default=2500, help="stations per envelope")
    ap.add_argument("--tracemalloc", action="store_true", help="top Python allocation sites")
    ap.add_argument("--compare-doubling", action="store_true",
                    help="also run the smallest size with the former doubling growth policy")
    ap.add_argument("--child", type=int, default=0)
    ap.add_argument("--policy", choices=("current", "doubling"), default="current")
    args = ap.parse_args()
    if args.child:
        child(args.child, args.hours, args.chunk_minutes, args.block, args.tracemalloc, args.policy)
        return
    print(f"memory: pack sum(m, 24h) > 1e9 on {', '.join(METRICS)}; {args.hours} h at 1 reading/min; "
          f"envelopes of {args.chunk_minutes} min x {args.block} stations; free "
          f"{psutil.virtual_memory().available / MB:,.0f} MB; load {os.getloadavg()[0]:.1f}",
          flush=True)
    results = []
    for n in (int(x) for x in args.series.split(",")):
        results.append(run_size(n, args))
        report(results[-1])
    fit(results)
    if args.compare_doubling:
        base = run_size(results[0]["series"], args, "doubling")
        report(base)
        cur = results[0]
        grown = {r["policy"]: r["rss_trimmed"] - r["rss_before"] for r in (cur, base)}
        print(f"\n[doubling vs current] {cur['series']:,} series: buffers "
              f"{base['capacity_bytes'] / MB:.0f} vs {cur['capacity_bytes'] / MB:.0f} MB, RSS growth "
              f"{grown['doubling']:.0f} vs {grown['current']:.0f} MB (current / doubling "
              f"{grown['current'] / grown['doubling']:.2f}); fill CPU {base['cpu_s']:.1f} vs "
              f"{cur['cpu_s']:.1f} s")
        for per_add in (1, 40):  # alternated, medians of 5: the moves' copying cost alone
            runs = [(buffer_cost(doubling_room, per_add), buffer_cost(buffer.Buffer._make_room, per_add))
                    for _ in range(5)]
            d, c = (statistics.median(x) for x in zip(*runs, strict=True))
            print(f"[doubling vs current] one series keeping 1,500 readings, {per_add} appended at a "
                  f"time: {d:.0f} vs {c:.0f} CPU ns per reading (current / doubling {c / d:.2f})")


if __name__ == "__main__":
    main()
