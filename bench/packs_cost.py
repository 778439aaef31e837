"""The rule engine's CPU per reading with each default pack alone and with all packs, on
bench/soak.py's station mix, at two depths of event history.

    .venv/bin/python bench/packs_cost.py                         # 100 stations, 24 h and 250 h
    .venv/bin/python bench/packs_cost.py --runs 3 --base OTHER   # OTHER: a copy of another commit

Each measurement runs in its own process. The feed (the soak's gauges, cameras, dust and
gas collectors, one reading per station per event-minute) first fills the series up to the
depth (not timed, in large envelopes, so the warm-up is quick), then ``--minutes`` more of
event time go through ``Pipeline.handle`` in envelopes of 40 readings (``--envelope``), the no-data check
after each, as a worker runs. Printed: readings per CPU second for each pack and for all
packs. The baseline in the same run is the code under ``--base`` (the same measurement,
alternated with this tree's run by run); without it, the rain-only pack (rainstorm) is the
reference the other figures are divided by. The forest-fire rule keeps 241 h of rain
(days_since), so the deep run is where history per station is large.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BASE_MS = 1_700_000_000_000
FILL_CHUNK = 4000


def child(code: Path, pack: str, stations: int, hours: int, minutes: int, folder: Path,
          envelope_size: int, profile: str = "") -> None:
    """One measurement with the engine of ``code``; prints one JSON line. With ``profile``
    the timed loop (only) runs under cProfile, its statistics written to that file."""
    sys.path.insert(0, str(ROOT / "bench"))
    import numpy as np
    import yaml
    from soak import make_feed

    # soak.py puts this tree first on the path and imports yujing from it: drop those
    # modules, so the engine measured is the one under ``code`` (the baseline too)
    for name in [m for m in sys.modules if m == "yujing" or m.startswith("yujing.")]:
        del sys.modules[name]
    sys.path.insert(0, str(code))
    import yujing
    from yujing.envelope import Columns
    from yujing.pipeline import Pipeline
    from yujing.rules.loader import load_rules_located
    from yujing.stations import load_registry

    feed = make_feed(stations, (hours * 60) + minutes)
    registry = folder / "stations.yaml"
    examples = yaml.safe_load((ROOT / "stations.yaml").read_text(encoding="utf-8"))["stations"]
    registry.write_text(yaml.safe_dump({"stations": examples + feed.registry}, allow_unicode=True),
                        encoding="utf-8")
    rules = [r for r, o in load_rules_located(ROOT / "rules")
             if pack == "all" or Path(o.file).stem == pack]
    pipe = Pipeline(rules, load_registry(registry))

    def envelope(lo: int, hi: int) -> int:
        us, si = np.unique(feed.station[lo:hi], return_inverse=True)
        um, mi = np.unique(feed.metric[lo:hi], return_inverse=True)
        cols = Columns(0, 0, [feed.names[x] for x in us], [feed.metrics[x] for x in um],
                       si.astype("<u4"), mi.astype("<u4"),
                       BASE_MS + feed.minute[lo:hi].astype(np.int64) * 60_000,
                       feed.value[lo:hi].astype("<f8"))
        now = int(cols.ts[-1])
        return len(pipe.handle(cols, now).events) + len(pipe.check_nodata(now, clock="event"))

    start = int(np.searchsorted(feed.minute, hours * 60))
    for lo in range(0, start, FILL_CHUNK):
        envelope(lo, min(start, lo + FILL_CHUNK))
    n = feed.station.size
    events = 0
    prof = cProfile.Profile() if profile else None
    cpu0 = time.process_time()
    if prof:
        prof.enable()
    for lo in range(start, n, envelope_size):
        events += envelope(lo, min(n, lo + envelope_size))
    if prof:
        prof.disable()
        prof.dump_stats(profile)
    cpu = time.process_time() - cpu0
    print(json.dumps({"readings": int(n - start), "events": events, "cpu_s": cpu,
                      "code": str(Path(yujing.__file__).resolve().parent.parent)}))


def measure(code: Path, pack: str, hours: int, args: argparse.Namespace, folder: str) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", pack, "--code", str(code),
                          "--stations", str(args.stations), "--hours", str(hours),
                          "--minutes", str(args.minutes), "--folder", folder,
                          "--envelope", str(args.envelope)],
                         check=True, capture_output=True, text=True, env={**os.environ})
    got = json.loads(out.stdout.strip().splitlines()[-1])
    if Path(got["code"]) != code.resolve():
        raise SystemExit(f"measured the engine in {got['code']}, not {code}")
    return got


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--stations", type=int, default=100)
    ap.add_argument("--depths", default="24,250", help="hours of event history before timing")
    ap.add_argument("--minutes", type=int, default=30, help="event minutes timed")
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--envelope", type=int, default=40, help="readings per timed envelope")
    ap.add_argument("--packs", default="", help="comma-separated pack names; all of them if empty")
    ap.add_argument("--base", default="", help="a copy of another commit: the baseline")
    ap.add_argument("--child")
    ap.add_argument("--code", default=str(ROOT))
    ap.add_argument("--hours", type=int, default=24)
    ap.add_argument("--folder", default="")
    ap.add_argument("--profile", default="", help="with --child: cProfile the timed loop to this file")
    args = ap.parse_args()
    if args.child:
        child(Path(args.code), args.child, args.stations, args.hours, args.minutes, Path(args.folder),
              args.envelope, args.profile)
        return
    packs = args.packs.split(",") if args.packs else sorted(
        p.stem for p in (ROOT / "rules").glob("*.yaml") if not p.stem.endswith(".test"))
    if "all" not in packs:
        packs.append("all")
    codes = {"this": ROOT, **({"base": Path(args.base)} if args.base else {})}
    rates: dict[tuple[str, str, int], list[float]] = {}
    events: dict[tuple[str, str, int], int] = {}
    with tempfile.TemporaryDirectory() as folder:
        for hours in (int(h) for h in args.depths.split(",")):
            for pack in packs:
                for _ in range(args.runs):
                    for name, code in codes.items():  # alternated: A B A B
                        r = measure(code, pack, hours, args, folder)
                        rates.setdefault((name, pack, hours), []).append(r["readings"] / r["cpu_s"])
                        events[(name, pack, hours)] = r["events"]
    print(f"{args.stations} stations, {args.minutes} event minutes timed, envelopes of {args.envelope}; "
          f"median readings per CPU s of {args.runs} run(s)")
    head = "  depth h  pack               this/s"
    print(head + ("     base/s  this/base  events (this, base)" if args.base else
                  "  vs rainstorm  events"))
    for hours in (int(h) for h in args.depths.split(",")):
        for pack in packs:
            this = statistics.median(rates[("this", pack, hours)])
            line = f"  {hours:7d}  {pack:16s} {this:8.0f}"
            if args.base:
                base = statistics.median(rates[("base", pack, hours)])
                line += (f"  {base:9.0f}  {this / base:9.2f}  "
                         f"{events[('this', pack, hours)]}, {events[('base', pack, hours)]}")
            elif "rainstorm" in packs:
                ref = statistics.median(rates[("this", "rainstorm", hours)])
                line += f"  {this / ref:12.2f}  {events[('this', pack, hours)]}"
            print(line)


if __name__ == "__main__":
    main()
