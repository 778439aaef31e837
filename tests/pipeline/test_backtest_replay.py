"""The backtest gives the same transitions as streaming: the replay of a CSV and the
worker's way (envelopes of random sizes, decoded, with timer-driven no-data checks) both
run the worker's core, Pipeline, in this process, with no broker."""

from __future__ import annotations

import random
from collections import defaultdict
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from yujing.backtest.replay import replay
from yujing.domain import Reading
from yujing.envelope import decode, encode_readings
from yujing.pipeline import Pipeline
from yujing.readings_csv import read_readings
from yujing.rules.loader import load_rules
from yujing.stations import load_registry

ROOT = Path(__file__).resolve().parents[2]
T0 = pd.Timestamp("2025-06-01T00:00:00+08:00")
MIN = 60_000

# A pack that uses the rule language's moving parts: hold times (for:), a held clear,
# a station registry field, a rate, a kind selector and downgrades.
TEST_PACK = """
rules:
  - id: rain-burst
    name: rain burst
    hazard: rainstorm
    grades:
      yellow: "sum(rain_mm, 1h) >= 20"
      orange: {when: "sum(rain_mm, 1h) >= 35", for: 10m}
      red: "sum(rain_mm, 3h) >= 60"
    clear: {when: "sum(rain_mm, 1h) < 5", for: 20m}
  - id: river-level
    name: river level
    hazard: flood
    select: {kind: river_gauge}
    downgrade: true
    grades:
      blue: "last(water_level_m) >= station.warning_level_m"
      orange: "last(water_level_m) >= station.warning_level_m and rate(water_level_m, 1h) > 0.3"
    clear: "last(water_level_m) < station.warning_level_m - 0.2"
"""


def make_readings(seed: int = 3, hours: int = 20) -> tuple[pd.DataFrame, dict]:
    """Rain gauges with storms, tidal river gauges, gaps, and one station that never reports."""
    rng = np.random.default_rng(seed)
    minutes = np.arange(hours * 60)
    frames, stations = [], []
    for i in range(8):
        sid = f"RG{i:02d}"
        rain = np.where(rng.random(minutes.size) < 0.05, 0.2, 0.0)
        for _ in range(2):
            c, w, peak = rng.uniform(60, hours * 60 - 60), rng.uniform(30, 150), rng.uniform(0.3, 1.4)
            rain += peak * np.clip(1 - np.abs(minutes - c) / w, 0, None)
        keep = np.ones(minutes.size, bool)
        if i % 3 == 0:  # an outage of 40..200 minutes
            a = int(rng.integers(100, hours * 60 - 300))
            keep[a:a + int(rng.integers(40, 200))] = False
        frames.append(pd.DataFrame({"minute": minutes[keep], "station": sid,
                                    "metric": "rain_mm", "value": np.round(rain[keep], 1)}))
        stations.append({"id": sid, "name": sid, "kind": "rain_gauge", "expected_interval": "5m"})
    for i in range(4):
        sid = f"RV{i:02d}"
        level = (3 + 0.5 * np.sin(2 * np.pi * minutes / 745 + i)
                 + 1.6 * np.clip(1 - np.abs(minutes - 500 - 120 * i) / 240, 0, None))
        every = minutes[::2]  # every 2 minutes
        frames.append(pd.DataFrame({"minute": every, "station": sid, "metric": "water_level_m",
                                    "value": np.round(level[::2], 3)}))
        stations.append({"id": sid, "name": sid, "kind": "river_gauge", "expected_interval": "5m",
                         "thresholds": {"warning_level_m": 3.8}})
    stations.append({"id": "RG-SILENT", "name": "never reports", "kind": "rain_gauge",
                     "expected_interval": "5m"})
    df = pd.concat(frames, ignore_index=True)  # station order, as a per-station export
    df["ts"] = (T0 + pd.to_timedelta(df["minute"], unit="min")).map(lambda t: t.isoformat())
    return df[["ts", "station", "metric", "value"]], {"stations": stations}


def write_case(tmp: Path, df: pd.DataFrame, registry: dict) -> tuple[Path, Path, Path]:
    csv = tmp / "readings.csv"
    df.to_csv(csv, index=False)
    reg = tmp / "stations.yaml"
    reg.write_text(yaml.safe_dump(registry, allow_unicode=True), encoding="utf-8")
    rules = tmp / "rules"
    rules.mkdir()
    (rules / "pack.yaml").write_text(TEST_PACK, encoding="utf-8")
    return csv, reg, rules


def key(ev) -> tuple:
    return (ev.ts, ev.station, ev.rule, getattr(ev.kind, "value", ev.kind), int(ev.grade))


def stream(rules_dir: Path, reg: Path, df: pd.DataFrame, seed: int) -> list:
    """As the worker sees it: envelopes of random size, decoded, with timer-driven checks."""
    rnd = random.Random(seed)
    ts = pd.to_datetime(df["ts"], format="ISO8601", utc=True).dt.as_unit("ms").astype("int64")
    rows = sorted(zip(ts.tolist(), range(len(df))), key=lambda x: x[0])  # arrival in time order
    readings = [Reading(df["station"].iat[i], df["metric"].iat[i], t, float(df["value"].iat[i]))
                for t, i in rows]
    pipe = Pipeline(load_rules(rules_dir), load_registry(reg))
    events: list = []
    i = 0
    while i < len(readings):
        n = rnd.choice((1, 2, 7, 50, 123, 500))
        cols = decode(encode_readings(readings[i:i + n], partition=0, recv_ms=0))
        i += n
        events += pipe.handle(cols, now_ms=0).events
        if rnd.random() < 0.3:  # the no-data timer fires now and then, between envelopes
            events += pipe.check_nodata(0, clock="event")
    events += pipe.check_nodata(0, clock="event")
    return events


@pytest.mark.parametrize("pack", ["test-pack", "shipped"])
def test_streaming_and_backtest_give_identical_transitions(tmp_path, pack):
    df, registry = make_readings()
    csv, reg, rules = write_case(tmp_path, df, registry)
    if pack == "shipped":
        rules = ROOT / "rules"
    data = read_readings(csv)
    (bt,) = replay([Pipeline(load_rules(rules), load_registry(reg))], data, chunk=1_000_000)
    streamed = stream(rules, reg, df, seed=11)

    assert sorted(map(key, bt.events)) == sorted(map(key, streamed))
    # and each warning's own timeline in the same order (what the lifecycle saw)
    per_key_bt, per_key_st = defaultdict(list), defaultdict(list)
    for ev in bt.events:
        per_key_bt[ev.key].append(key(ev))
    for ev in streamed:
        per_key_st[ev.key].append(key(ev))
    assert per_key_bt == per_key_st

    kinds = {(e.rule, getattr(e.kind, "value", e.kind)) for e in bt.events}
    # the case is not vacuous: outages start and end, a silent station is found
    assert {("nodata", "raised"), ("nodata", "cleared")} <= kinds
    assert any(e.station == "RG-SILENT" and e.rule == "nodata" for e in bt.events)
    if pack == "test-pack":
        assert {("rain-burst", "raised"), ("rain-burst", "cleared"),
                ("river-level", "raised")} <= kinds
        assert any(e.rule == "rain-burst" and int(e.grade) == 4 for e in bt.events)


def test_transitions_do_not_depend_on_chunk_size(tmp_path):
    df, registry = make_readings(seed=5)
    csv, reg, rules = write_case(tmp_path, df, registry)
    data = read_readings(csv)
    runs = [replay([Pipeline(load_rules(rules), load_registry(reg))], data, chunk=c)[0].events
            for c in (1_000_000, 977, 13)]
    assert len(runs[0]) > 10
    assert sorted(map(key, runs[0])) == sorted(map(key, runs[1])) == sorted(map(key, runs[2]))
