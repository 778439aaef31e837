"""The rule engine's CPU per reading after 1 h, 24 h and 10 days of event-time history.

    .venv/bin/python bench/history_cost.py                  # 100 stations, 3 runs
    .venv/bin/python bench/history_cost.py --stations 200 --runs 5 --profile

Issue 17, target 2: a worker's cost per reading must not grow with the history it
keeps. The same envelopes (the last ``--measure-min`` minutes of the dataset, one
envelope per minute holding every station's reading of that minute, as the
gateway batches a live feed) are processed by a fresh ``Engine`` with every rule
pack under rules/, after 1 h, 24 h and 10 days of event-time history per station
fed to it in large chunks first (accelerated: no clock, no broker). Only the
measured envelopes are timed, in CPU time (``time.process_time``), one envelope
at a time as the worker calls ``Engine.process``.

The data is the synthetic city of bench/backtest.py (rain gauges with storm
cells, rivers, reservoirs, weather stations feeding the 241 h fire-danger rule,
dust collectors, gas detectors; one reading per station-minute): the real data
under the shared data folder has no station kind for most packs (hourly Beijing
weather, 12 French river gauges), so it would leave most rules idle.

Printed figures (``name: value``), medians over ``--runs``:

* ``cpu_us_per_reading_<h>``: engine CPU microseconds per measured reading after
  history ``h`` (1h, 24h, 10d); per run the median of ``--reps`` repetitions, each on a
  copy of the engine (restored from its checkpoint), the three histories interleaved so
  they share the machine's load;
* ``ratio_<h>_vs_1h``: that figure over the 1 h one of the same repetition
  (target: every ratio within 0.8-1.2);
* ``retained_readings_<h>``: readings the engine retains when the measurement starts.

Before and after the series-store change of issue 17 (100 stations, ``--runs 3``, 5
interleaved repetitions each, all packs, 60 one-minute envelopes of 100 readings; the
2-core machine shared with other jobs, so compare the ratios more than the µs). Before:
every envelope re-merged and re-sorted the retained history of each series it touched,
built prefix sums and sparse tables over all of it, and copied it back. After: append-only
buffers per series, windows computed on the slice the rules' windows reach, max/min of a
few windows reduced directly, equal nodes of a rule computed once.

    history   before µs/reading  ratio   after µs/reading  ratio
    1 h             188.4        1.00          127.5        1.00
    24 h            213.7        1.14          127.6        0.99
    10 d            244.3        1.45          140.4        1.08
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from backtest import make_dataset  # noqa: E402  (bench/ is not a package)

from yujing.readings_csv import Readings, read_readings  # noqa: E402
from yujing.rules.engine import Engine  # noqa: E402
from yujing.rules.loader import load_rules  # noqa: E402
from yujing.stations import load_registry  # noqa: E402

MINUTE = 60_000
HISTORIES = {"1h": 60, "24h": 24 * 60, "10d": 10 * 24 * 60}  # minutes
HISTORY_CHUNK = 100_000  # readings per chunk while the history is fed


def log(msg: str) -> None:
    print(f"# {msg}", file=sys.stderr, flush=True)


def envelopes(data: Readings, t0: int, t1: int, per: int) -> list[tuple]:
    """Columns of readings in [t0, t1), one envelope per ``per`` ms of event time."""
    out = []
    for a in range(t0, t1, per):
        lo, hi = np.searchsorted(data.ts, [a, a + per])
        if hi > lo:
            out.append((data.stations, data.si[lo:hi], data.metrics, data.mi[lo:hi],
                        data.ts[lo:hi], data.val[lo:hi]))
    return out


def with_history(data: Readings, rules, registry, history_min: int, t_measure: int) -> Engine:
    """A fresh engine fed ``history_min`` minutes of readings before ``t_measure``."""
    engine = Engine(rules, registry=registry)
    lo, hi = np.searchsorted(data.ts, [t_measure - history_min * MINUTE, t_measure])
    for a in range(int(lo), int(hi), HISTORY_CHUNK):
        b = min(a + HISTORY_CHUNK, int(hi))
        engine.process(data.stations, data.si[a:b], data.metrics, data.mi[a:b], data.ts[a:b],
                       data.val[a:b])
    return engine


def measure_cpu(engine: Engine, measure: list[tuple], rules, registry,
                prof: cProfile.Profile | None = None) -> float:
    """CPU seconds of the measured envelopes, one ``process`` call each, on a copy of the
    engine restored from its checkpoint (the same history serves every repetition)."""
    snap = engine.snapshot()
    engine = Engine(rules, registry=registry)
    engine.restore(snap)
    if prof is not None:
        prof.enable()
    c0 = time.process_time()
    for env in measure:
        engine.process(*env)
    cpu = time.process_time() - c0
    if prof is not None:
        prof.disable()
    return cpu


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--stations", type=int, default=100)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--reps", type=int, default=5, help="interleaved repetitions per run")
    ap.add_argument("--measure-min", type=int, default=60, help="minutes of measured envelopes")
    ap.add_argument("--envelope-s", type=int, default=60, help="event time per envelope")
    ap.add_argument("--profile", action="store_true", help="cProfile the 10 d measurement")
    args = ap.parse_args()

    days = 11 + args.measure_min // 1440
    csv_path, reg_path = make_dataset(args.stations, days)
    data = read_readings(csv_path)
    rules, registry = load_rules(ROOT / "rules"), load_registry(reg_path)
    t_measure = int(data.ts[-1]) + MINUTE - args.measure_min * MINUTE
    measure = envelopes(data, t_measure, t_measure + args.measure_min * MINUTE,
                        args.envelope_s * 1000)
    n = sum(int(e[4].size) for e in measure)
    print(f"dataset: {csv_path.relative_to(ROOT)}")
    print(f"stations: {len(data.stations)}")
    print(f"rules: {len(rules)}")
    print(f"measured_envelopes: {len(measure)}")
    print(f"measured_readings: {n}")
    per_run: dict[str, list[float]] = {h: [] for h in HISTORIES}
    ratios: dict[str, list[float]] = {h: [] for h in HISTORIES}
    retained: dict[str, int] = {}
    for run in range(args.runs):
        engines = {h: with_history(data, rules, registry, m, t_measure) for h, m in HISTORIES.items()}
        retained = {h: sum(int(a.size) for a in e.series_ts) for h, e in engines.items()}
        reps: dict[str, list[float]] = {h: [] for h in HISTORIES}
        for _ in range(args.reps):  # interleaved: the three see the same load from other jobs
            for h, e in engines.items():
                reps[h].append(measure_cpu(e, measure, rules, registry) / n * 1e6)
        for h in HISTORIES:
            per_run[h].append(statistics.median(reps[h]))
            ratios[h].append(statistics.median(a / b for a, b in zip(reps[h], reps["1h"])))
        log(f"run {run + 1}: " + ", ".join(f"{h} {per_run[h][-1]:.1f}" for h in HISTORIES)
            + " µs/reading")
    for h in HISTORIES:
        print(f"cpu_us_per_reading_{h}: {statistics.median(per_run[h]):.1f}")
    for h in HISTORIES:
        print(f"ratio_{h}_vs_1h: {statistics.median(ratios[h]):.2f}")
    for h in HISTORIES:
        print(f"retained_readings_{h}: {retained[h]}")
    print("target_ratio: within 0.80-1.20")
    if args.profile:
        prof = cProfile.Profile()
        measure_cpu(with_history(data, rules, registry, HISTORIES["10d"], t_measure), measure,
                    rules, registry, prof)
        buf = io.StringIO()
        pstats.Stats(prof, stream=buf).sort_stats("cumulative").print_stats(30)
        for line in buf.getvalue().splitlines():
            print(f"#   {line}")


if __name__ == "__main__":
    main()
