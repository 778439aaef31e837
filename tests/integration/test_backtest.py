"""The backtest: same transitions as streaming, and the command as an analyst runs it.

The equivalence test runs in-process (it needs no broker: Pipeline is the
worker's core); the command tests run ``yujing backtest`` as a subprocess on
small CSVs written here, and read what it wrote.
"""

from __future__ import annotations

import random
import struct
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from yujing.backtest.replay import replay
from yujing.readings_csv import BacktestInputError, read_readings
from yujing.domain import Reading
from yujing.envelope import decode, encode_readings
from yujing.pipeline import Pipeline
from yujing.stations import load_registry
from yujing.rules.loader import load_rules

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


def key(ev) -> tuple:  # noqa: ANN001
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


# ---------------------------------------------------------------- the command

RAIN_RULE = """
rules:
  - id: rain-3h
    name: rain 3h
    hazard: rainstorm
    metric: rain_mm
    grades:
      orange: {agg: sum, window: 3h, op: ">=", value: 50}
      red:    {agg: sum, window: 3h, op: ">=", value: 100}
    clear: {agg: sum, window: 3h, op: "<", value: 10}
"""
BURST_RULE = """
rules:
  - id: rain-3h
    name: rain 1h burst
    hazard: rainstorm
    metric: rain_mm
    grades:
      orange: {agg: sum, window: 1h, op: ">=", value: 30}
    clear: {agg: sum, window: 1h, op: "<", value: 1}
"""


def yujing(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "yujing", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)


def rain_csv(path: Path, series: dict[str, list[float]], step_min: int = 10) -> Path:
    """Readings every ``step_min`` minutes from T0 (+08:00), one list of values per station."""
    lines = ["ts,station,metric,value"]
    for station, values in series.items():
        for k, v in enumerate(values):
            ts = (T0 + pd.Timedelta(minutes=step_min * k)).isoformat()
            lines.append(f"{ts},{station},rain_mm,{v}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def rules_dir(tmp: Path, name: str, text: str) -> Path:
    d = tmp / name
    d.mkdir()
    (d / "rules.yaml").write_text(text, encoding="utf-8")
    return d


def is_png(path: Path) -> tuple[int, int]:
    raw = path.read_bytes()
    assert raw[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    assert raw[12:16] == b"IHDR"
    width, height = struct.unpack(">II", raw[16:24])
    assert raw.rstrip(b"\x00")[-8:-4] == b"IEND"
    return width, height


def test_backtest_command_writes_transitions_summary_and_plot(tmp_path):
    # S1: 10 mm every 10 min for 3 h -> 50 at 02:00 (orange, the window (t-3h, t] holds
    # the readings of 00:10..02:00 plus 00:00), 100 impossible; then dry -> clear.
    # S2: 20 mm every 10 min for 1 h 40 -> orange then red, then dry -> clear.
    # S3: never above 1 mm: no warning.
    csv = rain_csv(tmp_path / "r.csv", {
        "S1": [10.0] * 5 + [0.0] * 30,
        "S2": [20.0] * 6 + [0.0] * 29,
        "S3": [0.5] * 35,
    })
    out = tmp_path / "out"
    res = yujing("backtest", "--rules", str(rules_dir(tmp_path, "a", RAIN_RULE)), "--data",
                 str(csv), "--out", str(out))
    assert res.returncode == 0, res.stderr

    tr = pd.read_csv(out / "transitions.csv", keep_default_na=False)
    got = tr[["ts", "station", "rule", "kind", "grade"]].values.tolist()
    assert got == sorted(got, key=lambda r: r[0])
    assert got[:3] == [
        ["2025-06-01T00:20:00+08:00", "S2", "rain-3h", "raised", "orange"],
        ["2025-06-01T00:40:00+08:00", "S1", "rain-3h", "raised", "orange"],
        ["2025-06-01T00:40:00+08:00", "S2", "rain-3h", "upgraded", "red"],
    ]
    clears = {r[1]: r[0] for r in got if r[3] == "cleared"}
    # the last wet reading leaves the 3 h window (t-3h, t] at +3 h: S1's at 00:40, S2's at 00:50
    assert clears == {"S1": "2025-06-01T03:40:00+08:00", "S2": "2025-06-01T03:50:00+08:00"}
    assert set(tr.columns) >= {"ts", "station", "rule", "grade", "kind", "value", "reason",
                               "incident"}
    assert tr.loc[1, "value"] == 50 and "sum" in tr.loc[1, "reason"]
    assert tr[tr.station == "S2"]["incident"].nunique() == 1  # raise, upgrade, clear: one incident

    summ = pd.read_csv(out / "summary.csv", keep_default_na=False)
    row = summ.set_index("rule").loc["rain-3h"]
    assert (row["incidents"], row["stations"], row["peak_orange"], row["peak_red"]) == (2, 2, 1, 1)
    assert row["hours_in_warning"] == pytest.approx(3.0 + 3.5)  # S1 00:40-03:40, S2 00:20-03:50
    assert (row["first_alert"], row["first_alert_station"]) == ("2025-06-01T00:20:00+08:00", "S2")
    assert row["first_red"] == "2025-06-01T00:40:00+08:00"
    assert "rain-3h" in res.stdout and "incidents" in res.stdout  # the printed table

    pngs = sorted((out / "plots").glob("*.png"))
    assert [p.name for p in pngs] == ["S1.png", "S2.png"]  # warned stations only
    w, h = is_png(pngs[0])
    assert w > 400 and h > 200


def test_backtest_compare_reports_added_lost_and_shifted(tmp_path):
    # A: 50 mm in 3 h. B: 30 mm in 1 h.
    #  SLOW:  6 mm / 10 min for 3 h (36 mm/h): A at 02:10? no -- 6 x 9 = 54 >= 50 at 01:20;
    #         B: 6 x 5 = 30 at 00:40 -> both warn, B 40 min earlier (shifted, -40).
    #  DRIZZLE: 3 mm / 10 min for 3 h: A 3 x 17 = 51 at 02:40; B never (18 mm/h) -> lost.
    #  BURST: 16 mm twice then dry: A 32 < 50 never; B 32 >= 30 at 00:10 -> added.
    csv = rain_csv(tmp_path / "r.csv", {
        "SLOW": [6.0] * 18 + [0.0] * 24,
        "DRIZZLE": [3.0] * 18 + [0.0] * 24,
        "BURST": [16.0] * 2 + [0.0] * 40,
    })
    a, b = rules_dir(tmp_path, "a", RAIN_RULE), rules_dir(tmp_path, "b", BURST_RULE)
    out = tmp_path / "out"
    res = yujing("backtest", "--rules", str(a), "--compare", str(b), "--data", str(csv),
                 "--out", str(out), "--quiet")
    assert res.returncode == 0, res.stderr
    cmp = pd.read_csv(out / "compare.csv", keep_default_na=False).set_index("station")
    assert cmp.loc["SLOW", "change"] == "shifted"
    assert float(cmp.loc["SLOW", "shift_min"]) == -40.0
    assert (cmp.loc["SLOW", "a_start"], cmp.loc["SLOW", "b_start"]) == (
        "2025-06-01T01:20:00+08:00", "2025-06-01T00:40:00+08:00")
    assert cmp.loc["DRIZZLE", "change"] == "lost"
    assert cmp.loc["BURST", "change"] == "added"
    assert cmp.loc["BURST", "b_start"] == "2025-06-01T00:10:00+08:00"
    assert len(cmp) == 3
    assert (out / "compare" / "transitions.csv").is_file()  # B's own transitions
    out_text = " ".join(res.stdout.split())
    assert "added" in out_text and "lost" in out_text and "shifted" in out_text
    assert "-40" in out_text  # the median shift of the shifted, printed


def test_backtest_names_bad_rows_with_their_lines(tmp_path):
    csv = tmp_path / "bad.csv"
    csv.write_text("ts,station,metric,value\n"
                   "2025-06-01T00:00:00+08:00,S1,rain_mm,1\n"
                   "2025-06-01T00:10:00+08:00,S1,rain_mm,abc\n"
                   "2025-06-01T00:20:00+08:00,S1,rain_mm,2\n"
                   "2025-06-01 00:30:00,S1,rain_mm,2\n"
                   "2025-06-01T00:40:00+08:00,,rain_mm,2\n", encoding="utf-8")
    res = yujing("backtest", "--rules", str(rules_dir(tmp_path, "a", RAIN_RULE)), "--data",
                 str(csv), "--out", str(tmp_path / "out"))
    assert res.returncode == 2
    assert f"{csv}: 3 bad row(s)" in res.stderr
    assert f"{csv}:3: value 'abc' is not a number" in res.stderr
    assert f"{csv}:5: ts '2025-06-01 00:30:00' has no UTC offset" in res.stderr
    assert f"{csv}:6: station is empty" in res.stderr
    assert "Traceback" not in res.stderr
    assert not (tmp_path / "out" / "transitions.csv").exists()


def test_backtest_names_a_row_with_too_many_fields(tmp_path):
    csv = tmp_path / "bad.csv"
    csv.write_text("ts,station,metric,value\n"
                   "2025-06-01T00:00:00+08:00,S1,rain_mm,1\n"
                   "2025-06-01T00:10:00+08:00,S1,rain_mm,1,5\n", encoding="utf-8")
    with pytest.raises(BacktestInputError, match=r"bad\.csv:3: 5 fields where the header has 4"):
        read_readings(csv)


def test_backtest_rejects_a_file_without_the_columns(tmp_path):
    csv = tmp_path / "bad.csv"
    csv.write_text("time,station,value\n2025-06-01T00:00:00+08:00,S1,1\n", encoding="utf-8")
    with pytest.raises(BacktestInputError, match=r"bad\.csv:1: header .* lacks ts, metric"):
        read_readings(csv)


def test_read_readings_sorts_by_event_time_across_offsets(tmp_path):
    csv = tmp_path / "r.csv"
    csv.write_text("ts,station,metric,value\n"
                   "2025-06-01T08:10:00+08:00,B,rain_mm,2\n"
                   "2025-06-01T00:00:00Z,A,rain_mm,1\n"  # = 08:00+08:00, earlier
                   "2025-06-01T08:10:00+08:00,A,water_level_m,3.5\n", encoding="utf-8")
    data = read_readings(csv)
    assert [data.stations[i] for i in data.si] == ["A", "B", "A"]
    assert [data.metrics[i] for i in data.mi] == ["rain_mm", "rain_mm", "water_level_m"]
    assert data.ts.tolist() == [1748736000000, 1748736600000, 1748736600000]
    assert data.val.tolist() == [1.0, 2.0, 3.5]
