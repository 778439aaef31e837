"""``yujing backtest`` with a projection rule: the lead time table, lead_time.csv and its
plot, from a synthetic rising river written here (a subprocess, as an analyst runs it)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[2]
T0 = pd.Timestamp("2025-06-01T00:00:00+08:00")

RULES = """
rules:
  - id: level-eta
    name: 河道水位预计超警
    hazard: flood
    grades:
      yellow: "eta(water_level_m, station.warning_level_m, 1h) <= 2h and count(water_level_m, 1h) >= 6"
    clear:
      when: "not (eta(water_level_m, station.warning_level_m, 1h) <= 2h)"
      for: 30m
"""
REGISTRY = """
stations:
  - {id: RISE, name: 上涨站, kind: river_gauge, thresholds: {warning_level_m: 6.5}}
  - {id: STOP, name: 止涨站, kind: river_gauge, thresholds: {warning_level_m: 6.5}}
"""


def test_backtest_prints_and_writes_the_lead_time_of_projection_warnings(tmp_path):
    lines = ["ts,station,metric,value"]
    for k in range(100):  # every 5 min for 8 h 15 min
        ts = (T0 + pd.Timedelta(minutes=5 * k)).isoformat()
        lines.append(f"{ts},RISE,water_level_m,{3.5 + 0.05 * k:.2f}")        # 6.5 m at 05:00
        lines.append(f"{ts},STOP,water_level_m,{min(3.5 + 0.05 * k, 5.5):.2f}")  # stops at 5.5
    (tmp_path / "r.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "r.yaml").write_text(RULES, encoding="utf-8")
    (tmp_path / "stations.yaml").write_text(REGISTRY, encoding="utf-8")
    out = tmp_path / "out"
    res = subprocess.run([sys.executable, "-m", "yujing", "backtest", "--rules",
                          str(tmp_path / "rules"), "--data", str(tmp_path / "r.csv"), "--registry",
                          str(tmp_path / "stations.yaml"), "--out", str(out)],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert "Lead time of projection and forecast" in res.stdout
    rows = pd.read_csv(out / "lead_time.csv", keep_default_na=False).set_index("station")
    assert rows.loc["RISE", "outcome"] == "crossed"
    assert rows.loc["RISE", "raised"] == "2025-06-01T03:05:00+08:00"
    assert rows.loc["RISE", "crossed"] == "2025-06-01T05:00:00+08:00"
    assert float(rows.loc["RISE", "lead_min"]) == 115
    assert rows.loc["STOP", "outcome"] == "false alarm" and rows.loc["STOP", "crossed"] == ""
    # the printed row: 2 warnings, 1 crossed, 1 false alarm, 0 undecided, median 115
    line = next(x for x in res.stdout.splitlines() if "level-eta" in x and "115" in x)
    assert [c.strip() for c in line.split("│")[2:7]] == ["2", "1", "1", "0", "115"]
    png = (out / "plots" / "lead_time.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000
