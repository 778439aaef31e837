"""Backtest throughput: readings/s through the worker's Pipeline, all packs and rainstorm only.

    .venv/bin/python bench/backtest.py                 # 1,000 stations x 7 days, 3 runs
    .venv/bin/python bench/backtest.py --stations 100 --days 2 --runs 1 --profile

The dataset is synthetic but shaped like the real feeds: one reading per
station-minute (10,080,000 readings for 1,000 stations x 7 days), rain gauges
with storm cells moving over the city, tidal rivers and reservoirs that rise
after rain, wind stations with a typhoon passage, weather stations, dust
collectors and gas detectors with a few excursions, and some stations that go
silent for hours. It is written once as a readings CSV (DESIGN's format, in
station order as a per-station export comes) with a matching station
registry, cached under bench/out/ (gitignored).

Printed figures (``name: value``), medians over ``--runs``:

* ``parse_readings_per_s``: ``read_readings`` alone (CSV → sorted columns).
* ``engine_<set>_readings_per_s``: ``replay`` alone on parsed columns (Pipeline
  handle + event-time no-data checks), the figure the issue's target is about.
* ``end_to_end_<set>_readings_per_s``: the ``yujing backtest`` command as a
  subprocess (parse, replay, CSVs, summary, plots), wall time.

``<set>`` is ``all`` (every pack under rules/) and ``rainstorm`` (rules/rainstorm.yaml
only). ``--profile`` adds a cProfile of one engine replay (top functions by own time).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
sys.path.insert(0, str(ROOT))

from yujing.backtest.replay import replay
from yujing.pipeline import Pipeline
from yujing.readings_csv import read_readings
from yujing.rules.loader import load_rules, rule_files
from yujing.stations import load_registry

START = pd.Timestamp("2025-06-01T00:00:00+08:00")  # the dragon-boat rains
MINUTE = 60_000
GENERATOR = 11  # bump when the data changes: part of the cache file names

# Station kinds as in the example registry (stations.yaml): (share of stations, metrics
# reported in turn, expected interval). One reading per station-minute: a station with
# two metrics reports each every 2 min. Metric names follow the rule packs under rules/.
KINDS = {
    "rain_gauge": (0.38, ["rain_mm"], "5m"),
    "river_gauge": (0.12, ["water_level_m"], "5m"),
    "reservoir": (0.05, ["water_level_m"], "10m"),
    "waterlogging": (0.09, ["waterlogging_depth_m"], "5m"),
    # automatic weather stations: wind (typhoon pack), and the fire-danger inputs
    "weather": (0.16, ["wind_speed_ms", "wind_gust_ms", "temperature_c", "humidity_pct",
                       "rain_mm"], "5m"),
    "camera": (0.04, ["smoke", "fire"], "5m"),
    # PLC counters (spark, airlock_fault) reported every cycle, 0 when nothing happened
    "dust_collector": (0.08, ["dust_inlet_temp_c", "dust_dp_pa", "spark", "airlock_fault",
                              "o2_pct"], "5m"),
    "gas_detector": (0.08, ["gas_lel_pct", "o2_pct", "h2s_mgm3", "co_mgm3", "toxic_mgm3"],
                     "5m"),
}

PREFIX = {"rain_gauge": "R", "river_gauge": "H", "reservoir": "K", "waterlogging": "W",
          "weather": "M", "camera": "C", "dust_collector": "D", "gas_detector": "G"}


def _thresholds(kind: str, base: float) -> dict[str, float]:
    """Per-station levels as the example registry has them, set above the station's normal."""
    if kind == "river_gauge":
        w = round(base + 0.6 + 1.0, 2)  # normal high tide + 1 m
        return {"warning_level_m": w, "blue_margin_m": 0.3, "level_5y_m": w + 0.3,
                "guaranteed_level_m": w + 0.8, "level_20y_m": w + 1.2, "level_50y_m": w + 1.5,
                "historic_max_m": w + 1.6, "rise_rate_m_per_h": 0.3, "level_min_m": -1.0,
                "level_max_m": 15.0}
    if kind == "reservoir":
        fl = round(base + 0.8, 2)
        return {"flood_limit_level_m": fl, "design_flood_level_m": fl + 1.5,
                "check_flood_level_m": fl + 2.5, "level_min_m": 0.0, "level_max_m": fl + 6}
    if kind == "waterlogging":
        return {"depth_blue_m": 0.1, "depth_yellow_m": 0.2, "depth_orange_m": 0.25,
                "depth_red_m": 0.4}
    if kind == "dust_collector":
        return {"dust_dp_baseline_pa": 1000.0, "spark_grade": 4, "airlock_fault_grade": 3,
                "vent_burst_grade": 4, "inert_o2_max_pct": 12.0}
    if kind == "gas_detector":
        return {"oel_mgm3": 10.0}
    if kind == "camera":
        return {"dual_spectrum": float(base > 20)}
    return {}


TAGS = {"weather": ["forest", "coast"], "river_gauge": ["rate_of_rise"], "camera": ["forest"],
        "dust_collector": ["inerted"], "gas_detector": ["toxic_oel"]}


def log(msg: str) -> None:
    print(f"# {msg}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------ dataset

def _storm_field(rng: np.random.Generator, minutes: int, n: int) -> np.ndarray:
    """Rain rate (mm/min) per (station, minute): moving cells over a drizzle background."""
    rate = np.zeros((n, minutes), dtype=np.float32)
    t = np.arange(minutes, dtype=np.float32)
    pos = rng.uniform(0, 1, n).astype(np.float32)  # station position along the storm track
    for k in range(max(2, minutes // 1440)):  # about one storm system a day
        t0 = rng.uniform(0, minutes)
        speed = rng.uniform(0.2, 0.6) / 60  # track fraction per minute
        dur = rng.uniform(60, 300)
        peak = min(2.0, rng.lognormal(np.log(0.35), 0.8))  # mostly moderate ...
        if k == 1:
            peak, dur = 1.6, 240.0  # ... and one cloudburst (a rainband): red warnings
        hit = rng.uniform(0, 1, n) < rng.uniform(0.15, 0.5)  # stations the cell passes over
        centre = t0 + pos / speed * 0.05
        shape = np.clip(1 - np.abs(t[None, :] - centre[:, None]) / (dur / 2), 0, None)
        rate += (hit[:, None] * peak * rng.uniform(0.5, 1.3, n)[:, None] * shape).astype(
            np.float32)
    drizzle = rng.random((n, minutes), dtype=np.float32) < 0.03
    rate += drizzle * 0.1
    return rate


def _values(kind: str, metric: str, rng: np.random.Generator, rain: np.ndarray,
            t_min: np.ndarray, base: np.ndarray) -> np.ndarray:
    """Values for n stations x m readings (t_min: minute of each reading, shape (m,)).

    ``base`` is each station's normal level (water level metrics), shape (n,).
    """
    n, m = rain.shape[0], t_min.size
    hours = t_min / 60
    wet = np.cumsum(rain, axis=1)[:, t_min]  # rain so far drives rivers and waterlogging
    recent = wet - np.concatenate((np.zeros((n, 1)), wet[:, :-1]), axis=1)
    noise = rng.normal(0, 1, (n, m))
    if metric == "rain_mm":
        return np.round(rain[:, t_min], 1)
    if metric == "water_level_m":
        tide = 0.6 * np.sin(2 * np.pi * hours / 12.42 + rng.uniform(0, 6.3, n)[:, None])
        base = base[:, None]
        resp = pd.DataFrame(recent.T).ewm(halflife=240).mean().to_numpy().T * 8
        lag = 0.3 * resp if kind == "reservoir" else resp * rng.uniform(0.5, 2, n)[:, None]
        return np.round(base + tide * (kind == "river_gauge") + lag + 0.01 * noise, 3)
    if metric == "waterlogging_depth_m":
        depth = pd.DataFrame(recent.T).ewm(halflife=30).mean().to_numpy().T * 0.6
        return np.round(np.clip(depth - 0.05 + 0.003 * noise, 0, None), 3)
    if metric in ("wind_speed_ms", "wind_gust_ms"):
        typhoon = 22 * np.exp(-((hours - 100) / 10) ** 2)  # a passage on day 5
        exposure = rng.uniform(0.4, 1.2, n)[:, None]
        v = np.clip(3 + 1.5 * np.sin(2 * np.pi * hours / 24) + exposure * typhoon
                    + 0.8 * noise, 0, None)
        return np.round(v * (1.5 if metric == "wind_gust_ms" else 1.0), 1)
    if metric == "temperature_c":
        return np.round(29 + 4 * np.sin(2 * np.pi * (hours - 9) / 24) + 0.3 * noise, 1)
    if metric == "humidity_pct":
        return np.round(np.clip(80 - 12 * np.sin(2 * np.pi * (hours - 9) / 24)
                                + 2 * noise, 20, 100), 1)
    if metric == "dust_inlet_temp_c":
        v = 50 + 3 * noise
        spikes = rng.random((n, m)) < 0.0004
        return np.round(v + spikes * rng.uniform(15, 40, (n, m)), 1)
    if metric == "dust_dp_pa":
        return np.round(1000 + 50 * np.sin(hours / 24)[None, :] + 20 * noise, 0)
    if metric == "gas_lel_pct":
        leak = np.zeros((n, m))
        for i in rng.choice(n, size=max(1, n // 10), replace=False):
            at = rng.integers(0, m - 60)
            leak[i, at:at + 60] = rng.uniform(10, 60) * np.hanning(60)
        return np.round(np.clip(0.5 + 0.3 * noise + leak, 0, 100), 2)
    if metric in ("smoke", "fire", "spark", "airlock_fault"):  # rare events, in short bursts
        rate = {"smoke": 3e-4, "fire": 1e-4}.get(metric, 5e-5)
        start = rng.random((n, m)) < rate
        return np.minimum(1, start + np.roll(start, 1, axis=1) + np.roll(start, 2, axis=1))
    if metric == "o2_pct":
        inert = 9 + 0.3 * noise + (rng.random((n, m)) < 2e-4) * 5  # inerted collectors
        air = 20.9 + 0.05 * noise - (rng.random((n, m)) < 1e-4) * 2
        return np.round(np.where((kind == "dust_collector"), inert, air), 2)
    if metric.endswith("_mgm3"):
        leak = np.zeros((n, m))
        for i in rng.choice(n, size=max(1, n // 8), replace=False):
            at = rng.integers(0, m - 30)
            leak[i, at:at + 30] = rng.uniform(5, 40) * np.hanning(30)
        return np.round(np.clip(rng.lognormal(-0.5, 0.5, (n, m)) + leak, 0, None), 2)
    raise ValueError(f"no generator for metric {metric!r}: add one to bench/backtest.py")


def make_dataset(stations: int, days: int, seed: int = 7) -> tuple[Path, Path]:
    """The cached readings CSV and station registry (generated on first use)."""
    OUT.mkdir(parents=True, exist_ok=True)
    csv_path = OUT / f"readings-{stations}x{days}d-s{seed}-g{GENERATOR}.csv"
    reg_path = OUT / f"stations-{stations}-s{seed}-g{GENERATOR}.yaml"
    if csv_path.exists() and reg_path.exists():
        return csv_path, reg_path
    log(f"generating {stations} stations x {days} days into {csv_path} (once)")
    rng = np.random.default_rng(seed)
    minutes = days * 1440
    stamps = pd.date_range(START, periods=minutes, freq="min").strftime("%Y-%m-%dT%H:%M:%S+08:00")
    counts = {k: int(round(share * stations)) for k, (share, _, _) in KINDS.items()}
    counts["rain_gauge"] += stations - sum(counts.values())
    registry, tmp = [], csv_path.with_suffix(".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write("ts,station,metric,value\n")
        for kind, n in counts.items():
            if n <= 0:
                continue
            _, metrics, interval = KINDS[kind]
            ids = [f"DG-{PREFIX[kind]}{i:04d}" for i in range(n)]
            rain = _storm_field(rng, minutes, n)
            base = rng.uniform(1.0, 4.0, n) if kind == "river_gauge" else rng.uniform(10, 30, n)
            silent = rng.random(n) < 0.02  # a few stations go quiet for 1-6 h
            for j, metric in enumerate(metrics):
                t_min = np.arange(j, minutes, len(metrics))
                vals = _values(kind, metric, rng, rain, t_min, base)
                for i, sid in enumerate(ids):
                    keep = np.ones(t_min.size, dtype=bool)
                    if silent[i]:
                        a = rng.integers(0, t_min.size)
                        keep[a:a + int(rng.integers(60, 360)) // len(metrics)] = False
                    df = pd.DataFrame({"ts": stamps[t_min[keep]], "station": sid,
                                       "metric": metric, "value": vals[i, keep]})
                    df.to_csv(f, header=False, index=False)
            towns = ["虎门镇", "长安镇", "厚街镇", "大朗镇", "石龙镇", "清溪镇", "塘厦镇", "麻涌镇"]
            for i, sid in enumerate(ids):
                st = {"id": sid, "name": sid, "kind": kind, "town": towns[i % len(towns)],
                      "expected_interval": interval}
                if kind in TAGS and i % 3 == 0:  # a third carry the pack-specific tag
                    st["tags"] = [TAGS[kind][0]]
                elif kind in TAGS and len(TAGS[kind]) > 1:
                    st["tags"] = TAGS[kind][1:]
                th = _thresholds(kind, float(base[i]))
                if th and kind in ("river_gauge", "reservoir", "waterlogging") and i % 3 == 1:
                    th["projection"] = 1.0  # a third opt in to the projection rules (eta, project)
                if th:
                    st["thresholds"] = th
                registry.append(st)
    tmp.rename(csv_path)
    reg_path.write_text(yaml.safe_dump({"stations": registry}, allow_unicode=True,
                                       sort_keys=False), encoding="utf-8")
    return csv_path, reg_path


# ------------------------------------------------------------------ measuring

def rule_sets(tmp: Path) -> dict[str, Path]:
    """``all``: rules/ as shipped; ``rainstorm``: a folder with only rules/rainstorm.yaml."""
    only = tmp / "rainstorm-only"
    only.mkdir(exist_ok=True)
    shutil.copy(ROOT / "rules" / "rainstorm.yaml", only / "rainstorm.yaml")
    return {"all": ROOT / "rules", "rainstorm": only}


def time_engine(rules_dir: Path, registry_path: Path, data, chunk: int) -> float:
    rules, registry = load_rules(rules_dir), load_registry(registry_path)
    pipe = Pipeline(rules, registry)
    t0 = time.perf_counter()
    res = replay([pipe], data, chunk)
    dt = time.perf_counter() - t0
    log(f"engine {rules_dir.name}: {len(data):,} readings in {dt:.1f} s, "
        f"{len(res[0].events)} transitions")
    return dt


def time_command(rules_dir: Path, csv_path: Path, registry_path: Path, chunk: int) -> float:
    with tempfile.TemporaryDirectory() as out:
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "yujing", "backtest", "--rules", str(rules_dir),
                        "--data", str(csv_path), "--registry", str(registry_path), "--out", out,
                        "--chunk-readings", str(chunk), "--quiet"], check=True, cwd=ROOT,
                       stdout=subprocess.DEVNULL)
        return time.perf_counter() - t0


def profile(rules_dir: Path, registry_path: Path, data, chunk: int, top: int = 25) -> None:
    pipe = Pipeline(load_rules(rules_dir), load_registry(registry_path))
    prof = cProfile.Profile()
    prof.enable()
    replay([pipe], data, chunk)
    prof.disable()
    buf = io.StringIO()
    pstats.Stats(prof, stream=buf).sort_stats("tottime").print_stats(top)
    print(f"# profile of one engine replay with {rules_dir} (top {top} by own time)", flush=True)
    for line in buf.getvalue().splitlines():
        print(f"#   {line}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--stations", type=int, default=1000)
    ap.add_argument("--days", type=int, default=7)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--chunk", type=int, default=200_000, help="readings per replayed chunk")
    ap.add_argument("--sets", default="all,rainstorm", help="comma-separated: all, rainstorm")
    ap.add_argument("--no-end-to-end", action="store_true", help="skip the command timing")
    ap.add_argument("--profile", action="store_true", help="cProfile one engine replay per set")
    args = ap.parse_args()

    csv_path, reg_path = make_dataset(args.stations, args.days)
    packs = [p.name for p in rule_files(ROOT / "rules")]
    print(f"dataset: {csv_path.relative_to(ROOT)}")
    print(f"rule_packs_all: {','.join(packs)}")
    parse_s = []
    data = None
    for _ in range(args.runs):
        t0 = time.perf_counter()
        data = read_readings(csv_path)
        parse_s.append(time.perf_counter() - t0)
    n = len(data)
    print(f"readings: {n}")
    print(f"stations: {len(data.stations)}")
    print(f"metrics: {','.join(data.metrics)}")
    print(f"cpu_count: {os.cpu_count()}")
    print(f"parse_s: {statistics.median(parse_s):.2f}")
    print(f"parse_readings_per_s: {n / statistics.median(parse_s):.0f}")
    with tempfile.TemporaryDirectory() as tmp:
        sets = rule_sets(Path(tmp))
        for name in args.sets.split(","):
            rules_dir = sets[name]
            eng = [time_engine(rules_dir, reg_path, data, args.chunk) for _ in range(args.runs)]
            print(f"engine_{name}_s: {statistics.median(eng):.2f}")
            print(f"engine_{name}_readings_per_s: {n / statistics.median(eng):.0f}")
            if not args.no_end_to_end:
                e2e = [time_command(rules_dir, csv_path, reg_path, args.chunk)
                       for _ in range(args.runs)]
                print(f"end_to_end_{name}_s: {statistics.median(e2e):.2f}")
                print(f"end_to_end_{name}_readings_per_s: {n / statistics.median(e2e):.0f}")
            print("target_readings_per_s: 300000")
            if args.profile:
                profile(rules_dir, reg_path, data, args.chunk)


if __name__ == "__main__":
    main()
