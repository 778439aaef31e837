"""The backtest command as an analyst runs it: ``yujing backtest`` as a subprocess on small
CSVs written here, and what it wrote read back. (Streaming and backtest giving identical
transitions is a pipeline test: tests/pipeline/test_backtest_replay.py.)
"""

from __future__ import annotations

import struct
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[2]
T0 = pd.Timestamp("2025-06-01T00:00:00+08:00")


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
    assert tr.loc[1, "reason_zh"] == "过去3小时累计雨量50.0毫米，达到橙色标准（≥50毫米）"
    assert tr.loc[1, "reason_en"] == "3 h rain total 50.0 mm, reaching the orange threshold (≥ 50 mm)"
    assert tr[tr.station == "S2"]["incident"].nunique() == 1  # raise, upgrade, clear: one incident

    summ = pd.read_csv(out / "summary.csv", keep_default_na=False)
    row = summ.set_index("rule").loc["rain-3h"]
    assert (row["incidents"], row["stations"], row["peak_orange"], row["peak_red"]) == (2, 2, 1, 1)
    assert row["hours_in_warning"] == pytest.approx(3.0 + 3.5)  # S1 00:40-03:40, S2 00:20-03:50
    assert (row["first_alert"], row["first_alert_station"]) == ("2025-06-01T00:20:00+08:00", "S2")
    assert row["first_red"] == "2025-06-01T00:40:00+08:00"
    assert "rain-3h" in res.stdout and "incidents" in res.stdout  # the printed table
    assert row["first_alert_reason_zh"].endswith("达到橙色标准（≥50毫米）")
    assert "达到橙色标准" in res.stdout  # the first alert's reason, in words

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
