"""The engine's fixed-cost work (issue 17) must not change a single finding: random
envelopes go through all default packs twice, once with the current code and once with
the functions as they were before it (``frozen_rules.py``, patched back in), and both
runs must report the same findings and the same late readings."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.unit import frozen_rules as old
from yujing.rules import buffer, interpret, lookup, points, series, transitions, windows
from yujing.rules.engine import Engine
from yujing.rules.loader import load_rules
from yujing.stations import load_registry

ROOT = Path(__file__).resolve().parents[2]
T0 = 1_750_000_000_000
MINUTE = 60_000

# what each kind of station reports, and the range its values wander over: wide enough
# that every pack's grades, pending grades, clears and quality checks are crossed
KIND_METRICS = {
    "rain_gauge": ["rain_mm"],
    "river_gauge": ["water_level_m"],
    "reservoir": ["water_level_m"],
    "waterlogging": ["waterlogging_depth_m"],
    "weather": ["wind_speed_ms", "wind_gust_ms", "temperature_c", "humidity_pct", "rain_mm"],
    "camera": ["smoke", "fire"],
    "dust_collector": ["dust_inlet_temp_c", "dust_dp_pa", "spark", "airlock_fault", "o2_pct"],
    "gas_detector": ["gas_lel_pct", "o2_pct", "h2s_mgm3", "co_mgm3", "toxic_mgm3"],
}
RANGE = {
    "rain_mm": (0, 15), "water_level_m": (-2, 30), "waterlogging_depth_m": (0, 0.8),
    "wind_speed_ms": (0, 45), "wind_gust_ms": (0, 70), "temperature_c": (-5, 50),
    "humidity_pct": (0, 100), "smoke": (0, 1), "fire": (0, 1), "dust_inlet_temp_c": (20, 140),
    "dust_dp_pa": (0, 3000), "spark": (0, 6), "airlock_fault": (0, 4), "o2_pct": (5, 22),
    "gas_lel_pct": (0, 80), "h2s_mgm3": (0, 40), "co_mgm3": (0, 40), "toxic_mgm3": (0, 40),
}
OLD = [  # (owner, name, the old function)
    (windows, "keys", old.keys), (windows.Flat, "bounds", old.bounds),
    (points, "of_readings", old.of_readings), (points, "series_read", old.series_read),
    (series.SeriesStore, "flat", old.flat),
    (buffer.Buffer, "trim", old.trim), (lookup.StationLookup, "selected", old.selected),
    (interpret.Interpreter, "_node", old._node), (interpret.Interpreter, "_trend", old._trend),
    (transitions, "held", old.held), (transitions, "sticky", old.sticky),
    (transitions, "judge", old.judge),
]


def feed(seed: int, hours: int):
    """Readings of every registry station: random walks with flat stretches (stuck
    sensors), gaps, spikes, out-of-order and repeated readings; in arrival order."""
    rng = np.random.default_rng(seed)
    registry = load_registry(ROOT / "stations.yaml")
    rows = []
    for st in registry.stations.values():
        for metric in KIND_METRICS.get(st.kind, []):
            lo, hi = RANGE[metric]
            n = hours * 12
            t = T0 + np.arange(n) * 5 * MINUTE + rng.integers(-60, 60, n) * 1000
            step = rng.normal(0, (hi - lo) / 12, n) * (rng.random(n) > 0.3)  # 30 % repeats
            v = np.clip(rng.uniform(lo, hi) + np.cumsum(step), lo, hi)
            if metric in ("smoke", "fire", "spark", "airlock_fault"):
                v = np.round(v * (rng.random(n) < 0.2))
            v = np.round(v, 2)
            keep = rng.random(n) > 0.05  # gaps
            rows += [(st.id, metric, int(a), float(b)) for a, b in zip(t[keep], v[keep])]
    rows.sort(key=lambda r: r[2] + int(rng.integers(0, 20 * MINUTE)))  # arrive out of order
    rows += [rows[int(i)] for i in rng.integers(0, len(rows), len(rows) // 50)]  # replays
    return registry, rows


def run(registry, rows, seed: int) -> tuple[list[str], list[int]]:
    """The findings (as text: NaN values compare equal) and late readings of one run."""
    rng = np.random.default_rng(seed)
    engine = Engine(load_rules(ROOT / "rules"), registry=registry)
    found, late, at = [], [], 0
    while at < len(rows):
        size = int(rng.integers(1, 90)) if rng.random() < 0.9 else int(rng.integers(200, 900))
        env = rows[at:at + size]  # mostly a worker's envelopes, some a backtest's chunks
        stations = sorted({r[0] for r in env})
        metrics = sorted({r[1] for r in env})
        si = np.array([stations.index(r[0]) for r in env], dtype=np.uint32)
        mi = np.array([metrics.index(r[1]) for r in env], dtype=np.uint32)
        ts = np.array([r[2] for r in env], dtype=np.int64)
        v = np.array([r[3] for r in env], dtype=np.float64)
        f, bad = engine.process(stations, si, metrics, mi, ts, v)
        found += [repr(x) for x in f]
        late += [at + i for i in bad]
        at += len(env)
    return found, late


@pytest.mark.parametrize("seed", [1, 2])
def test_findings_equal_the_code_before_issue_17(seed, monkeypatch):
    registry, rows = feed(seed, hours=6)
    new = run(registry, rows, seed)
    with monkeypatch.context() as m:
        for owner, name, fn in OLD:
            m.setattr(owner, name, fn)
        before = run(registry, rows, seed)
    assert new == before
    rules = {line.split("rule='")[1].split("'")[0] for line in new[0]}
    assert len(rules) >= 15, f"the feed fired too few rules to compare: {sorted(rules)}"
    assert new[1], "the feed must hold late readings"
