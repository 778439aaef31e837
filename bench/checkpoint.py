"""Checkpoint size and time of the worker's pipeline state (yujing/streams/checkpoint.py).

    .venv/bin/python bench/checkpoint.py [--series 1000] [--hours 4] [--runs 3]

Builds one partition's Pipeline with the rule packs under rules/ and a registry of
``--series`` rain gauges, feeds ``--hours`` of 1-minute rain_mm (showers: mostly 0, 0.1 mm
steps) in gateway-sized envelopes of 500 readings, then measures, median of ``--runs``:

* ``snapshot_s``: ``Pipeline.snapshot()`` (what the agent itself spends per checkpoint);
* ``encode_s``: zlib level 1 and chunking (run in a thread by the worker);
* ``raw_bytes`` / ``stored_bytes``: the document and what goes into the changelog;
* ``restore_s``: chunks → CRC check → decompress → ``Pipeline.restore`` into a fresh pipeline;
* ``replay_readings_per_s``: ``Pipeline.handle`` on the same envelopes, i.e. how fast the
  readings after a checkpoint are re-processed at a restart.

A second line uses random float values (no runs of equal values): the worst case for size.
No Kafka, no Faust.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from yujing.domain import Reading
from yujing.envelope import decode, encode_readings
from yujing.pipeline import Pipeline
from yujing.rules.loader import load_rules
from yujing.stations import load_registry
from yujing.streams.checkpoint import dict_table, encode_checkpoint, load_checkpoint

MIN = 60_000


def registry(n: int, tmp: Path):
    lines = ["stations:"] + [f"  - {{id: G{i:05d}, name: g{i}, kind: rain_gauge, town: T{i % 32}, "
                             f"expected_interval: 1m}}" for i in range(n)]
    path = tmp / "stations.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return load_registry(path)


def envelopes(n: int, hours: float, noisy: bool) -> list[bytes]:
    rng = np.random.default_rng(11)
    t0 = 1_750_000_000_000 - 1_750_000_000_000 % 3_600_000
    minutes = int(hours * 60)
    if noisy:
        vals = rng.random((minutes, n)) * 3
    else:
        wet = rng.random((minutes, n)) < 0.15
        vals = np.where(wet, np.round(rng.gamma(1.2, 0.4, (minutes, n)), 1), 0.0)
    readings = [Reading(f"G{s:05d}", "rain_mm", t0 + m * MIN, float(vals[m, s]))
                for m in range(minutes) for s in range(n)]
    return [encode_readings(readings[i:i + 500]) for i in range(0, len(readings), 500)]


def one(rules, reg, envs: list[bytes]) -> dict[str, float]:
    p = Pipeline(rules, reg)
    t = time.perf_counter()
    n = 0
    for e in envs:
        cols = decode(e)
        n += len(cols)
        p.handle(cols, 0)
    replay = n / (time.perf_counter() - t)
    t = time.perf_counter()
    raw = p.snapshot()
    snap_s = time.perf_counter() - t
    t = time.perf_counter()
    manifest, parts = encode_checkpoint(raw, 1, 0, 0)
    enc_s = time.perf_counter() - t
    table = dict_table({"0:1:m": manifest, **{f"0:1:{i}": c for i, c in enumerate(parts)}})
    t = time.perf_counter()
    _, back = load_checkpoint(table.get, 0)
    q = Pipeline(rules, reg)
    q.restore(back)
    restore_s = time.perf_counter() - t
    series = len(p.engine.series_ts)
    points = sum(a.size for a in p.engine.series_ts)
    return {"series": series, "points": points, "raw_bytes": len(raw),
            "stored_bytes": sum(map(len, parts)), "chunks": len(parts), "snapshot_s": snap_s,
            "encode_s": enc_s, "restore_s": restore_s, "replay_readings_per_s": replay}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--series", type=int, default=1000)
    ap.add_argument("--hours", type=float, default=4.0)
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()
    rules = load_rules(ROOT / "rules")
    with tempfile.TemporaryDirectory() as tmp:
        reg = registry(a.series, Path(tmp))
    for label, noisy in (("showers", False), ("random_floats", True)):
        envs = envelopes(a.series, a.hours, noisy)
        runs = [one(rules, reg, envs) for _ in range(a.runs)]
        med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
        per_1000 = 1000 / max(1, med["series"])
        print(f"[{label}] {a.series} gauges x {a.hours:g} h of 1-minute rain_mm, median of {a.runs}")
        print(f"series: {med['series']:.0f}")
        print(f"points_retained: {med['points']:.0f}")
        print(f"raw_bytes: {med['raw_bytes']:.0f}")
        print(f"stored_bytes: {med['stored_bytes']:.0f}")
        print(f"stored_bytes_per_1000_series: {med['stored_bytes'] * per_1000:.0f}")
        print(f"chunks: {med['chunks']:.0f}")
        print(f"snapshot_s: {med['snapshot_s']:.4f}")
        print(f"encode_s: {med['encode_s']:.4f}")
        print(f"restore_s: {med['restore_s']:.4f}")
        print(f"replay_readings_per_s: {med['replay_readings_per_s']:.0f}")


if __name__ == "__main__":
    main()
