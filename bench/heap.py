"""The rule engine's memory over days of event time, against the same run with dead
objects collected every 50 envelopes.

    .venv/bin/python bench/heap.py                       # 100 stations, 72 h
    .venv/bin/python bench/heap.py --hours 240 --runs 2

Each mode runs in its own process: the rule engine and lifecycle (``Pipeline``, every pack
under rules/) take bench/soak.py's feed (its mix of gauges, cameras, dust and gas
collectors, one reading per station per event-minute) in envelopes of 40 readings, with
the event clock (no-data checks included) following the readings. Event time runs far
ahead of any wall clock, so the long windows (the forest-fire and data-quality rules reach
back 242 h) fill as a worker's do over days.

``as-is`` is how a worker runs; ``collected`` calls ``gc.collect()`` every 50 envelopes, so
nothing waits long for the cyclic collector: the baseline a worker's memory should match.
Anything kept alive by a reference cycle shows as the difference (a recursive evaluation
closure once made it 255 MB in use against 33 MB, and fragmented the heap to 555 MB RSS
over 240 h). Printed per mode: RSS and glibc's heap (``mallinfo2``: in use, free inside the
heap, in mmapped blocks) at each tenth of the run, RSS growth over the second half, CPU
seconds of the envelope loop; then the ratio of the two modes' RSS at the end.
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
from pathlib import Path

import numpy as np
import psutil
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from soak import make_feed  # the soak's feed and registry

from yujing.envelope import Columns
from yujing.pipeline import Pipeline
from yujing.rules.loader import load_rules
from yujing.stations import load_registry

MB = 1024 * 1024
BASE_MS = 1_700_000_000_000
CHUNK = 40


class MallInfo2(ctypes.Structure):
    """glibc's ``struct mallinfo2`` (2.33+)."""

    _fields_ = [(n, ctypes.c_size_t) for n in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
        "fordblks", "keepcost")]


def heap_figures() -> dict[str, float]:
    """RSS and glibc's view of its heap, in MB."""
    mallinfo2 = ctypes.CDLL(None).mallinfo2
    mallinfo2.restype = MallInfo2
    m = mallinfo2()
    return {"rss": psutil.Process().memory_info().rss / MB, "in_use": m.uordblks / MB,
            "free": m.fordblks / MB, "mmapped": m.hblkhd / MB}


def child(mode: str, stations: int, hours: int, folder: Path) -> None:
    """One mode's run; prints one JSON line."""
    feed = make_feed(stations, hours * 60)
    registry = folder / "stations.yaml"
    examples = yaml.safe_load((ROOT / "stations.yaml").read_text(encoding="utf-8"))["stations"]
    registry.write_text(yaml.safe_dump({"stations": examples + feed.registry}, allow_unicode=True),
                        encoding="utf-8")
    pipe = Pipeline(load_rules(ROOT / "rules"), load_registry(registry))
    n = feed.station.size
    marks = {int(n * k / 10) // CHUNK for k in range(1, 11)}
    samples, events = [], 0
    cpu0 = time.process_time()
    for i, lo in enumerate(range(0, n, CHUNK)):
        hi = min(n, lo + CHUNK)
        us, si = np.unique(feed.station[lo:hi], return_inverse=True)
        um, mi = np.unique(feed.metric[lo:hi], return_inverse=True)
        cols = Columns(0, 0, [feed.names[x] for x in us], [feed.metrics[x] for x in um],
                       si.astype("<u4"), mi.astype("<u4"),
                       BASE_MS + feed.minute[lo:hi].astype(np.int64) * 60_000,
                       feed.value[lo:hi].astype("<f8"))
        now = int(cols.ts[-1])
        events += len(pipe.handle(cols, now).events)
        events += len(pipe.check_nodata(now, clock="event"))
        if mode == "collected" and i % 50 == 0:
            gc.collect()
        if i in marks:
            samples.append({"hours": float(feed.minute[hi - 1]) / 60, **heap_figures()})
    print(json.dumps({"mode": mode, "readings": int(n), "events": events,
                      "cpu_s": time.process_time() - cpu0, "samples": samples}))


def run_mode(mode: str, args: argparse.Namespace) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", mode, "--stations",
                          str(args.stations), "--hours", str(args.hours), "--folder", args.folder],
                         check=True, capture_output=True, text=True, env={**os.environ})
    return json.loads(out.stdout.strip().splitlines()[-1])


def report(res: dict) -> float:
    s = res["samples"]
    print(f"\n{res['mode']}: {res['readings']:,} readings, {res['events']} events, "
          f"envelope loop {res['cpu_s']:.1f} CPU s")
    print("   event h    RSS MB  in use MB  free in heap MB  mmapped MB")
    for x in s:
        print(f"   {x['hours']:7.1f}  {x['rss']:8.1f}  {x['in_use']:9.1f}  {x['free']:15.1f}  "
              f"{x['mmapped']:10.1f}")
    growth = s[-1]["rss"] - s[len(s) // 2 - 1]["rss"]
    print(f"   RSS growth over the second half: {growth:+.1f} MB")
    return growth


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--stations", type=int, default=100)
    ap.add_argument("--hours", type=int, default=72)
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--child", choices=("as-is", "collected"))
    ap.add_argument("--folder", default="")
    args = ap.parse_args()
    if args.child:
        child(args.child, args.stations, args.hours, Path(args.folder))
        return
    with tempfile.TemporaryDirectory() as folder:
        args.folder = folder
        results: dict[str, list[dict]] = {"as-is": [], "collected": []}
        for _ in range(args.runs):
            for mode in results:
                results[mode].append(run_mode(mode, args))
    growth = {m: statistics.median(report(r) for r in rs) for m, rs in results.items()}
    cpu = {m: statistics.median(r["cpu_s"] for r in rs) for m, rs in results.items()}
    end = {m: statistics.median(r["samples"][-1]["rss"] for r in rs) for m, rs in results.items()}
    a, c = "as-is", "collected"
    print(f"\nmedians of {args.runs} run(s): RSS at the end {end[a]:.0f} MB as a worker runs vs "
          f"{end[c]:.0f} MB collected every 50 envelopes (ratio {end[a] / end[c]:.2f}); growth "
          f"over the second half {growth[a]:+.1f} vs {growth[c]:+.1f} MB; CPU {cpu[a]:.1f} vs "
          f"{cpu[c]:.1f} s")


if __name__ == "__main__":
    main()
