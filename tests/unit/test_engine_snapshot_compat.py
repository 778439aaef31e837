"""Worker checkpoints written by an older engine still restore.

tests/data/engine_snapshot_v1.bin is an engine snapshot (msgpack, zlib) written by the engine
as it stood before the rules package was split into series, interpreter and transitions
(issue 10). A worker restarted on new code restores its last checkpoint; if the snapshot
format ever changes, the reader of the old one must stay and this test must keep passing.
When the packs dropped their `message:` templates (issue 13: no channel showed them), the
fingerprints the fixture records for those 23 rules were recomputed from the packs as they
are now; the snapshot's format and state are the old engine's, byte for byte otherwise.
The scenario runs the rules the fixture holds; rules added later start empty on a restore.

The scenario is arithmetic (no random generator), so the readings after the checkpoint
are the very readings the old engine would have seen next.
"""

from __future__ import annotations

import math
import zlib
from pathlib import Path

import msgspec
import numpy as np
import pytest

from yujing.rules.compiled import compile_rule
from yujing.rules.engine import Engine
from yujing.rules.loader import load_rules
from yujing.stations import load_registry

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = ROOT / "tests" / "data" / "engine_snapshot_v1.bin"
MIN = 60_000
T0 = 1_750_000_000_000 - 1_750_000_000_000 % 3_600_000
MINUTES = 4 * 60
CUT = 150  # the checkpoint: after two and a half hours

# (low, high) of each metric: wide enough that the rule packs' thresholds are crossed
RANGES = {"rain_mm": (0.0, 4.0), "o2_pct": (15.0, 24.0), "gas_lel_pct": (0.0, 40.0),
          "gas_lelm": (0.0, 2.0), "water_level_m": (0.0, 9.0), "wind_speed_ms": (0.0, 40.0),
          "wind_gust_ms": (0.0, 50.0), "temperature_c": (10.0, 45.0),
          "humidity_pct": (5.0, 100.0), "waterlogging_depth_m": (0.0, 0.6),
          "dust_dp_pa": (0.0, 3000.0), "dust_inlet_temp_c": (20.0, 120.0)}
EVENTS = {"smoke", "fire", "spark", "vent_burst", "airlock_fault", "heartbeat"}


def value(metric: str, m: int, k: int) -> float:
    if metric in EVENTS:
        return 1.0 if (m + 11 * k) % 53 < 3 else 0.0
    lo, hi = RANGES.get(metric, (0.0, 50.0))
    wave = 0.5 + 0.5 * math.sin(m / 17 + k)
    pulse = 1.0 if ((m + 13 * k) // 40) % 3 == 0 else 0.0
    return round(lo + (hi - lo) * (0.6 * wave + 0.4 * pulse), 1)


def fixture_rules() -> set[str]:
    """The rules the old engine's checkpoint holds state for."""
    return set(msgspec.msgpack.decode(zlib.decompress(FIXTURE.read_bytes()))["rules"])


def scenario():
    # Only the rules the fixture knows: a rule added to the packs since (the forecast and
    # projection rules, issue 15) has no state in an old checkpoint and starts empty on restore,
    # so a run from the beginning cannot match it; and its metrics would change the scenario.
    known = fixture_rules()
    rules = [r for r in load_rules(ROOT / "rules") if r.id in known]
    registry = load_registry(ROOT / "stations.yaml")
    compiled = [compile_rule(r) for r in rules if r.enabled]
    series = []
    for k, st in enumerate(sorted(registry.stations)):
        metrics = set()
        for c in compiled:
            if c.eligible(st, registry.get(st)):
                metrics |= c.metrics
        series += [(st, metric, k) for metric in sorted(metrics)]
    stations = sorted({s for s, _, _ in series})
    metrics = sorted({m for _, m, _ in series})
    rows = []
    for m in range(MINUTES):
        for j, (st, metric, k) in enumerate(series):
            if (m + j) % 7 == 0 and metric != "rain_mm":
                continue  # gaps
            rows.append((stations.index(st), metrics.index(metric), T0 + m * MIN,
                         value(metric, m, k)))
    si, mi, ts, v = (np.asarray(c) for c in zip(*rows))
    return rules, registry, stations, metrics, si.astype(np.uint32), mi.astype(np.uint32), \
        ts.astype(np.int64), v.astype(np.float64)


def chunks(stations, metrics, si, mi, ts, v, lo, hi, size=977):
    for a in range(lo, hi, size):
        b = min(a + size, hi)
        yield stations, si[a:b], metrics, mi[a:b], ts[a:b], v[a:b]


def run(engine, parts):
    out = []
    for p in parts:
        found, late = engine.process(*p)
        assert late == []
        out += found
    return out


@pytest.fixture(scope="module")
def world():
    return scenario()


def test_a_checkpoint_of_the_old_engine_restores_and_continues_exactly(world):
    rules, registry, stations, metrics, si, mi, ts, v = world
    cut = int(np.searchsorted(ts, T0 + CUT * MIN))
    whole = Engine(rules, registry=registry)
    before = run(whole, chunks(stations, metrics, si, mi, ts, v, 0, cut))
    after = run(whole, chunks(stations, metrics, si, mi, ts, v, cut, ts.size))
    assert {f.rule for f in before + after} >= {"rainstorm-guangdong", "gas-combustible",
                                                 "river-level", "forest-fire-camera"}
    assert after  # the checkpoint falls in the middle of things

    old = msgspec.msgpack.decode(zlib.decompress(FIXTURE.read_bytes()))
    restored = Engine(rules, registry=registry)
    restored.restore(old)
    assert run(restored, chunks(stations, metrics, si, mi, ts, v, cut, ts.size)) == after
    assert restored.snapshot() == whole.snapshot()


def write_fixture() -> None:  # pragma: no cover - run by hand, with the engine of that time
    rules, registry, stations, metrics, si, mi, ts, v = scenario()
    cut = int(np.searchsorted(ts, T0 + CUT * MIN))
    e = Engine(rules, registry=registry)
    run(e, chunks(stations, metrics, si, mi, ts, v, 0, cut))
    FIXTURE.write_bytes(zlib.compress(msgspec.msgpack.encode(e.snapshot()), 9))


if __name__ == "__main__":  # pragma: no cover
    write_fixture()
